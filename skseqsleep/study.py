"""The deep transfer-learning study of Phan et al. (TBME 2020) as one function.

:func:`run_study` pretrains (or loads) a source model, then, for every target channel and every
finetuning strategy (REFERENCE §4: direct transfer, softmax, softmax + ARNN, softmax + SeqRNN,
entire network) and the from-scratch baseline, runs leave-one-subject-out cross-validation with
an inner subject-wise validation split, pools the predictions of all folds and computes the
metrics of REFERENCE §6 (accuracy, Cohen's kappa, macro F1, macro sensitivity, macro
specificity). The command line ``skseqsleep study`` (:mod:`skseqsleep.cli`) is a thin layer over
it.

Every (channel, strategy, fold) result is stored in ``output_dir`` as soon as it is finished
(written to a temporary file, then renamed), so that a killed run restarted with the same
arguments skips finished work and ends with the same table. The arguments that change results
are fingerprinted in ``output_dir/study.json``; different arguments in the same folder raise
:class:`StudyArgumentsError` once it holds a finished fold result (a folder without one is
taken over, see :meth:`ResultStore.claim`). One run at a time uses a folder
(:meth:`ResultStore.acquire`).

Folds run through :mod:`joblib` (``n_jobs``), or on a Dask cluster through joblib's ``dask``
backend (``scheduler``). Each fold's ``random_state`` is derived from ``(random_state, fold)``
only, so results do not depend on execution order or on the worker that ran the fold.
"""

from __future__ import annotations

import csv
import errno
import glob
import hashlib
import io
import json
import os
import platform
import sys
import time
import warnings
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from skseqsleep._constants import STAGES
from skseqsleep._files import atomic_write
from skseqsleep.datasets._common import as_integers
from skseqsleep.model_selection import _METRICS as METRICS
from skseqsleep.model_selection import sleep_metrics

__all__ = [
    "STRATEGIES",
    "Strategy",
    "StudyArgumentsError",
    "StudyInputError",
    "StudyResult",
    "parse_data_spec",
    "pooled_metrics",
    "read_recordings_csv",
    "run_study",
    "sleepedf_sc20_folds",
]

#: Part of every study's fingerprint. 2: the spectrogram standardisation is fitted on the
#: training subjects only, without the inner-validation subjects (REFERENCE §2); version-1
#: fold results (standardisation fitted on every non-test subject) are not pooled with them.
#: 3: dropout masks are drawn with TensorFlow 1's rule (``skseqsleep.nn.cells.Dropout``),
#: which changes every seeded training run; version-2 fold results are not pooled with them.
#: 4: GRU cells run their recurrence compiled on the CPU (``skseqsleep.nn._gru_ext``), which
#: changes seeded GRU runs at float-rounding level; a GRU study on the CPU also records the
#: backend (``gru_cpu``) among its arguments, so a folder written with the other one is not
#: resumed.
STORE_VERSION = 4

# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Strategy:
    """One row of the study table.

    Attributes
    ----------
    key : str
        Short name used on the command line and in file names.
    label : str
        Row label of the table (the paper's wording).
    trainable_parts : tuple of str or "all"
        Passed to :class:`~skseqsleep.SeqSleepClassifier` (``()`` = direct transfer).
    pretrained : bool
        Whether the network starts from the source model (False: trained from scratch).
    """

    key: str
    label: str
    trainable_parts: Any
    pretrained: bool = True


#: The strategies, in the order of the paper's tables (REFERENCE §6).
STRATEGIES: dict[str, Strategy] = {s.key: s for s in (
    Strategy("all", "finetune entire network", "all"),
    Strategy("softmax+arnn", "finetune softmax + ARNN", ("softmax", "arnn")),
    Strategy("softmax+seqrnn", "finetune softmax + SeqRNN", ("softmax", "seqrnn")),
    Strategy("softmax", "finetune softmax", ("softmax",)),
    Strategy("direct", "direct transfer", ()),
    Strategy("scratch", "SeqSleepNet from scratch", "all", pretrained=False),
)}

_METRIC_HEADERS = {"accuracy": "acc (%)", "kappa": "kappa", "macro_f1": "MF1 (%)",
                   "macro_sensitivity": "sens (%)", "macro_specificity": "spec (%)"}


class StudyInputError(ValueError):
    """Wrong study arguments or unusable data (wrong path, unknown channel...)."""


class StudyArgumentsError(StudyInputError):
    """The output folder holds a study run with different arguments."""


# --------------------------------------------------------------------------------------------
# Data specifications
# --------------------------------------------------------------------------------------------

_SOURCE_KINDS = ("simulated", "mass", "checkpoint", "model")
_TARGET_KINDS = ("simulated", "sleep-edf", "dreams", "recordings")


def parse_data_spec(spec: str, role: str) -> tuple[str, str | None]:
    """Split ``"kind:PATH"`` (or ``"simulated"``) into ``(kind, path)``.

    Parameters
    ----------
    spec : str
        ``"simulated"``, or a kind and a path separated by the first colon.
    role : {"source", "target"}
        Which kinds are allowed: source ``simulated``, ``mass:PATH``, ``checkpoint:PATH``,
        ``model:PATH``; target ``simulated``, ``sleep-edf:PATH``, ``dreams:PATH``,
        ``recordings:CSV`` (your own recordings, see :func:`read_recordings_csv`).

    Returns
    -------
    kind : str
    path : str or None
        The path with ``~`` expanded (None for ``simulated``).

    Examples
    --------
    >>> from skseqsleep.study import parse_data_spec
    >>> parse_data_spec("sleep-edf:/data/sleep-edfx", "target")
    ('sleep-edf', '/data/sleep-edfx')
    >>> parse_data_spec("simulated", "source")
    ('simulated', None)
    """
    kinds = _SOURCE_KINDS if role == "source" else _TARGET_KINDS
    examples = ", ".join("simulated" if k == "simulated" else f"{k}:PATH" for k in kinds)
    if not isinstance(spec, str) or not spec:
        raise StudyInputError(f"--{role} must be one of {examples}; got {spec!r}")
    kind, sep, path = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in kinds:
        raise StudyInputError(f"unknown --{role} {spec!r}: expected one of {examples}")
    if kind == "simulated":
        if sep and path:
            raise StudyInputError(f"--{role} simulated takes no path; got {spec!r}")
        return kind, None
    if not path:
        raise StudyInputError(f"--{role} {kind} needs a path: {kind}:PATH; got {spec!r}")
    return kind, os.path.expanduser(path)


def sleepedf_sc20_folds() -> list[dict]:
    """The published 20-fold split of Sleep-EDF-SC-20 (REFERENCE §6).

    Returns
    -------
    folds : list of dict
        For fold k = 1..20 (in order): ``{"fold": k, "test": subject, "valid": [4 subjects],
        "train": [15 subjects]}`` with Sleep-EDF subject numbers 0..19 (the shipped table's
        1-based ``subject_index`` minus one).

    Examples
    --------
    >>> from skseqsleep.study import sleepedf_sc20_folds
    >>> folds = sleepedf_sc20_folds()
    >>> len(folds), folds[0]["test"], len(folds[0]["valid"]), len(folds[0]["train"])
    (20, 0, 4, 15)
    """
    text = resources.files("skseqsleep.datasets").joinpath(
        "data", "sleepedf_sc20_folds.csv").read_text()
    folds: dict[int, dict] = {}
    for row in csv.DictReader(io.StringIO(text)):
        k = int(row["fold"])
        f = folds.setdefault(k, {"fold": k, "test": None, "valid": [], "train": []})
        subject = int(row["subject_index"]) - 1
        if row["role"] == "test":
            f["test"] = subject
        else:
            f[row["role"]].append(subject)
    return [folds[k] for k in sorted(folds)]


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def pooled_metrics(y_true, y_pred) -> dict[str, float]:
    """Accuracy, Cohen's kappa, macro F1, macro sensitivity and macro specificity.

    Computed once on all epochs given (the pooled predictions of all folds, REFERENCE §6) by
    :func:`skseqsleep.model_selection.sleep_metrics`; macro means run over the stages that
    occur in ``y_true`` or ``y_pred``.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_epochs,)

    Returns
    -------
    metrics : dict
        Keys ``accuracy``, ``kappa``, ``macro_f1``, ``macro_sensitivity``,
        ``macro_specificity`` (fractions, not percentages).

    Examples
    --------
    >>> from skseqsleep.study import pooled_metrics
    >>> m = pooled_metrics([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])
    >>> m["accuracy"], m["kappa"]
    (1.0, 1.0)
    """
    m = sleep_metrics(y_true, y_pred)
    return {k: float(m[k]) for k in METRICS}


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------

#: Settings of the default, simulated study (a few minutes on 2 CPU cores). ``None`` values
#: in :data:`PAPER_SETTINGS` leave the classifier's defaults, which follow the paper
#: (REFERENCE §4: 10 training epochs, validation every 10 steps, patience 50, batch 32,
#: Adam 1e-4, L = 20).
SIMULATED_SETTINGS: dict[str, Any] = {
    "sim_source_subjects": 8,
    "sim_target_subjects": 5,
    "sim_nights": 1,
    "sim_epochs_per_night": 120,
    "pretrain_max_epochs": 4,
    "max_epochs": 3,
    "validate_every": 5,
    "patience": 50,
    "batch_size": 32,
    "lr": 1e-3,
    "seq_len": 10,
    "n_valid_subjects": 1,
    "cell": None,
    "n_filters": 16,
    "rnn_hidden": 32,
    "attention_size": 32,
}

PAPER_SETTINGS: dict[str, Any] = {
    "sim_source_subjects": 8,
    "sim_target_subjects": 5,
    "sim_nights": 1,
    "sim_epochs_per_night": 120,
    "pretrain_max_epochs": 10,
    "max_epochs": None,
    "validate_every": None,
    "patience": None,
    "batch_size": None,
    "lr": None,
    "seq_len": None,
    "n_valid_subjects": None,
    "cell": None,
    "n_filters": None,
    "rnn_hidden": None,
    "attention_size": None,
}

_SETTING_TYPES = {"sim_source_subjects": int, "sim_target_subjects": int, "sim_nights": int,
                  "sim_epochs_per_night": int, "pretrain_max_epochs": int, "max_epochs": int,
                  "validate_every": int, "patience": int, "batch_size": int, "lr": float,
                  "seq_len": int, "n_valid_subjects": int, "cell": str, "n_filters": int,
                  "rnn_hidden": int, "attention_size": int}


def _resolve_settings(target_kind: str, settings: Mapping[str, Any] | None) -> dict[str, Any]:
    base = dict(SIMULATED_SETTINGS if target_kind == "simulated" else PAPER_SETTINGS)
    for key, value in (settings or {}).items():
        if key not in _SETTING_TYPES:
            raise StudyInputError(f"unknown study setting {key!r}; known settings: "
                                  f"{', '.join(sorted(_SETTING_TYPES))}")
        if value is None:
            continue
        base[key] = _check_setting(key, value)
    return base


def _check_setting(key: str, value: Any) -> Any:
    """``value`` converted to the type of setting ``key``; bools, non-integral numbers for an
    integer setting, non-finite or non-positive numbers are refused, naming the key."""
    kind = _SETTING_TYPES[key]
    if kind is str:
        if not isinstance(value, str) or not value.strip():
            raise StudyInputError(f"setting {key} must be a non-empty string; got {value!r}")
        return value.strip()
    if isinstance(value, (bool, np.bool_)):
        raise StudyInputError(f"setting {key} must be a positive {kind.__name__}; got the "
                              f"boolean {value!r}")
    if isinstance(value, (int, np.integer)) and int(value) > 0:
        return kind(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StudyInputError(f"setting {key} must be a positive {kind.__name__}; got "
                              f"{value!r}") from None
    if not np.isfinite(number) or number <= 0:
        raise StudyInputError(f"setting {key} must be a positive {kind.__name__}; got {value!r}")
    if kind is int:
        if number != int(number):
            raise StudyInputError(f"setting {key} must be a positive integer; got {value!r} "
                                  "(not a whole number)")
        return int(number)
    return number


# --------------------------------------------------------------------------------------------
# Result store
# --------------------------------------------------------------------------------------------


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: fh.write(data))     # the umask's permissions, not 0600


def _atomic_write_text(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode("utf-8"))


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() or c in "-." else "_" for c in text.strip())
    return out.strip("_") or "channel"


def _flatten(d: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def fingerprint(arguments: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the result-affecting arguments."""
    blob = json.dumps(arguments, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


class ResultStore:
    """The study's output folder: manifest, cached source model, one file per fold result.

    Layout::

        output_dir/study.json                     arguments + fingerprint
        output_dir/.study.lock                    held by the run using the folder
        output_dir/source_model.pt                pretrained source model (when pretrained here)
        output_dir/source_model.previous.pt       an earlier run's, kept at a takeover
        output_dir/source_model.previous-<k>.pt   those kept at later takeovers (k = 2, 3, ...)
        output_dir/folds/<channel>/<strategy>/fold_<kk>.npz  one finished fold (fold_01.npz)
    """

    #: The lock file a run holds (:meth:`acquire`) while it uses the folder.
    LOCK_NAME = ".study.lock"

    def __init__(self, output_dir: str | os.PathLike):
        self.root = Path(output_dir).expanduser()
        self._lock_file = None
        self._unlockable = False   # flock failed for another reason than a holder: warned once

    # one run at a time ---------------------------------------------------------------------
    def acquire(self) -> None:
        """Hold the folder for this run: an exclusive ``flock`` on ``output_dir/.study.lock``.

        A second run on the same folder (another process, or another store object here) gets
        a :class:`StudyArgumentsError` naming the holder, instead of taking over the folder of
        a run that is still pretraining or overwriting its manifest. The lock belongs to the
        open file, so the operating system releases it when the run ends in any way, a
        ``SIGKILL`` included: a killed run's folder can be resumed at once. The file itself
        stays (an empty-looking folder with only it counts as empty). A folder that is not
        empty and holds no study is refused before anything is written in it. Where ``fcntl``
        does not exist (Windows), or the file system cannot lock (``flock`` fails for another
        reason than a holder, e.g. ``ENOLCK`` on some network file systems), no lock is taken
        (with a warning in the second case).
        """
        if self._lock_file is not None or self._unlockable:
            return
        self._check_not_foreign()
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            f = open(self.root / self.LOCK_NAME, "a+")  # noqa: SIM115 - held until release()
        except OSError as exc:
            raise StudyArgumentsError(f"cannot use the output folder {self.root}: "
                                      f"{type(exc).__name__}: {exc}; choose a folder this "
                                      "user can write to") from None
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                f.close()
                self._unlockable = True
                warnings.warn(f"cannot lock the output folder {self.root} ({exc}): this run "
                              "goes on without the one-run-per-folder lock; do not start "
                              "another run on this folder until it ends", UserWarning,
                              stacklevel=2)
                return
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise StudyArgumentsError(
                f"the output folder {self.root} is in use by another study run ({holder}); "
                "wait for it to end or choose another --output-dir") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {platform.node() or 'this machine'}, since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.flush()
        self._lock_file = f

    def release(self) -> None:
        """Let go of the folder (:meth:`acquire`); nothing when it is not held."""
        f, self._lock_file = self._lock_file, None
        if f is not None:
            f.close()

    def _check_not_foreign(self) -> None:
        """A file, or a folder that is not empty and holds no study, is not this package's to
        use. A ``study.json`` that this package did not write (see :meth:`_read_manifest`)
        holds no study."""
        if self.root.exists() and not self.root.is_dir():
            raise StudyArgumentsError(f"the output folder {self.root} is a file; choose a "
                                      "folder for --output-dir")
        if not self.root.is_dir():
            return
        if self.manifest_path.exists():
            self._read_manifest()       # raises unless this package wrote it
        elif any(p.name != self.LOCK_NAME for p in self.root.iterdir()):
            raise StudyArgumentsError(
                f"the output folder {self.root} is not empty and holds no study.json; "
                "choose an empty or new --output-dir")

    #: The keys of the manifest that :meth:`claim` writes.
    MANIFEST_KEYS = ("fingerprint", "store_version", "arguments")

    def _read_manifest(self) -> dict:
        """The manifest ``study.json``, checked to be one that :meth:`claim` wrote (a JSON
        object with a string ``fingerprint``, an integer ``store_version`` and an
        ``arguments`` object); any other file of that name is the user's and is refused."""
        try:
            old = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise StudyArgumentsError(
                f"{self.manifest_path} exists but is not a readable study manifest "
                f"({exc}); choose another --output-dir") from None
        if not (isinstance(old, dict) and isinstance(old.get("fingerprint"), str)
                and isinstance(old.get("store_version"), int)
                and not isinstance(old.get("store_version"), bool)
                and isinstance(old.get("arguments"), dict)):
            found = (f"the keys {sorted(old)}" if isinstance(old, dict)
                     else f"a JSON {type(old).__name__}")
            raise StudyArgumentsError(
                f"the output folder {self.root} holds a study.json that skseqsleep study did "
                f"not write (expected an object with the keys "
                f"{', '.join(self.MANIFEST_KEYS)}; found {found}); it is not taken over: "
                "choose an empty or new --output-dir")
        return old

    # manifest --------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / "study.json"

    def fold_files(self) -> list[Path]:
        """The stored fold results (``folds/**/fold_*.npz``)."""
        folds = self.root / "folds"
        return sorted(folds.rglob("fold_*.npz")) if folds.is_dir() else []

    def claim(self, arguments: Mapping[str, Any], log=None, *, dry_run: bool = False) -> bool:
        """Write the manifest, or check that the existing one has the same arguments.

        A folder whose manifest has different arguments is refused
        (:class:`StudyArgumentsError`) when it holds at least one finished fold result. When
        it holds none (a run that failed before finishing a fold), it is taken over: its
        manifest is replaced and its cached ``source_model.pt``, pretrained with the other
        arguments, is kept as ``source_model.previous.pt``, or, when that name is taken by the
        model kept at an earlier takeover, ``source_model.previous-2.pt``, ``-3``, ... (a kept
        model is never overwritten; the takeover is refused when the cache is this run's
        ``model:`` source); ``log`` (a callable, optional) is told the name. A run holds the
        folder (:meth:`acquire`) before claiming it, so a run still in progress is never taken
        over.

        Returns True when the folder already held this study (a resumed run). With
        ``dry_run=True`` the same checks are made (and the same errors raised) but nothing is
        written, moved or logged: :func:`run_study` asks it before loading or pretraining a
        source.
        """
        fp = fingerprint(arguments)
        if self.manifest_path.exists():
            old = self._read_manifest()
            if old.get("fingerprint") == fp:
                return True
            old_args = _flatten(old.get("arguments", {}))
            new_args = _flatten(json.loads(json.dumps(dict(arguments), default=str)))
            diff = sorted(k for k in set(old_args) | set(new_args)
                          if old_args.get(k) != new_args.get(k))
            details = "; ".join(f"{k}: {old_args.get(k)!r} there, {new_args.get(k)!r} now"
                                for k in diff) or "store format changed"
            old_source = str(old_args.get("source", ""))
            if ("source_sha256" in arguments and "source_sha256" not in old.get("arguments", {})
                    and old_source.startswith(("model:", "checkpoint:"))):
                details += ("; that run was written before the source file's SHA-256 was "
                            "recorded, so it cannot be resumed")
            stored = self.fold_files()
            if stored:
                if old_args.get("store_version") != new_args.get("store_version"):
                    advice = (f"Its results were written by another version of skseqsleep "
                              f"(results store version {old_args.get('store_version')!r}, "
                              f"this one writes {STORE_VERSION}) and cannot be resumed: use "
                              "another --output-dir (or delete that folder) to run the study "
                              "again.")
                elif diff == ["target_sha256"]:
                    advice = ("The target data changed since that folder was written (a "
                              "recording added, removed or changed), so its fold results were "
                              "trained and tested on other data: use another --output-dir.")
                else:
                    advice = ("Use another --output-dir to run this study, or repeat the "
                              "earlier arguments to resume that one.")
                raise StudyArgumentsError(
                    f"the output folder {self.root} holds a study run with different "
                    f"arguments ({details}) and {len(stored)} finished fold result(s). "
                    + advice)
            cache = self.root / "source_model.pt"
            kept = None
            if cache.exists():
                source = str(arguments.get("source", ""))
                kind, _, path = source.partition(":")
                if kind == "model" and path and os.path.exists(path) and os.path.samefile(
                        path, cache):
                    raise StudyArgumentsError(
                        f"the output folder {self.root} holds a study run with different "
                        f"arguments ({details}) and no finished fold result, and its cached "
                        f"source model {cache} is this run's --source: copy it elsewhere and "
                        "use that copy, or use another --output-dir")
            if dry_run:
                return False
            if cache.exists():
                # never deleted: it may be hours of pretraining; it is kept under a name that
                # no file has (an earlier takeover's model is not overwritten), and this run
                # pretrains (or loads) its own source
                kept = self._free_previous_name()
                os.replace(cache, kept)
            if log is not None:
                log(f"the output folder {self.root} held a study run with different "
                    f"arguments ({details}) but no finished fold result: taking it over"
                    + (f" (its cached source model is kept as {kept})" if kept else ""))
        else:
            self._check_not_foreign()
            if dry_run:
                return False
        _atomic_write_text(self.manifest_path, json.dumps(
            {"fingerprint": fp, "store_version": STORE_VERSION, "arguments": dict(arguments)},
            indent=2, sort_keys=True, default=str) + "\n")
        return False

    def _free_previous_name(self) -> Path:
        """``source_model.previous.pt``, or ``source_model.previous-<k>.pt`` with the smallest
        k >= 2 that no file has: where :meth:`claim` keeps a cached source model."""
        path = self.root / "source_model.previous.pt"
        k = 2
        while os.path.lexists(path):
            path = self.root / f"source_model.previous-{k}.pt"
            k += 1
        return path

    # fold results ----------------------------------------------------------------------
    def fold_path(self, channel: str, strategy: str, fold: int) -> Path:
        return self.root / "folds" / _slug(channel) / _slug(strategy) / f"fold_{fold:02d}.npz"

    def save_fold(self, channel: str, strategy: str, fold: int, result: Mapping) -> Path:
        meta = {k: v for k, v in result.items()
                if k not in ("y_true", "y_pred", "recordings")}
        buf = io.BytesIO()
        np.savez(buf, y_true=np.asarray(result["y_true"], dtype=np.int64),
                 y_pred=np.asarray(result["y_pred"], dtype=np.int64),
                 recordings=np.asarray(result["recordings"], dtype=str),
                 meta=np.asarray(json.dumps(meta, default=_json_default)))
        path = self.fold_path(channel, strategy, fold)
        _atomic_write_bytes(path, buf.getvalue())
        return path

    def load_fold(self, channel: str, strategy: str, fold: int) -> dict | None:
        """The stored result of one fold, or None when there is none.

        Raises
        ------
        StudyInputError
            When the file exists but cannot be read (truncated, emptied, not written by
            :meth:`save_fold`); the message names it and says to delete it, so that the next
            run recomputes that fold.
        """
        path = self.fold_path(channel, strategy, fold)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                out = json.loads(str(z["meta"]))
                out.update(y_true=z["y_true"], y_pred=z["y_pred"],
                           recordings=z["recordings"])
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise StudyInputError(
                f"the stored fold result {path} cannot be read ({type(exc).__name__}: "
                f"{exc}); delete it and run the same command again to recompute that "
                "fold") from None
        if not isinstance(out, dict):
            raise StudyInputError(f"the stored fold result {path} is not a fold result; "
                                  "delete it and run the same command again to recompute it")
        return out


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class TableRow:
    """Pooled metrics of one strategy on one target channel."""

    channel: str
    strategy: str
    label: str
    accuracy: float
    kappa: float
    macro_f1: float
    macro_sensitivity: float
    macro_specificity: float
    n_epochs: int
    n_folds: int


@dataclass
class StudyResult:
    """The study table and everything it was computed from.

    Attributes
    ----------
    rows : list of TableRow
        One row per (channel, strategy), channels in the order studied, strategies in the
        paper's order.
    per_fold : list of dict
        Metrics of every (channel, strategy, fold).
    confusion : dict
        ``{(channel, strategy): 5x5 int array}`` pooled over folds.
    curves : dict
        ``{(channel, strategy): [validation history of each fold]}``.
    predictions : dict
        ``{(channel, strategy): {"y_true", "y_pred", "recordings"}}`` pooled over folds.
    provenance : dict
        Source, target, settings, machine.
    output_dir : str or None
    """

    rows: list[TableRow]
    per_fold: list[dict] = field(default_factory=list)
    confusion: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)
    predictions: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    output_dir: str | None = None

    @property
    def channels(self) -> list[str]:
        seen: list[str] = []
        for r in self.rows:
            if r.channel not in seen:
                seen.append(r.channel)
        return seen

    def row(self, channel: str, strategy: str) -> TableRow:
        """The row of one channel and strategy key (e.g. ``"softmax+arnn"``)."""
        for r in self.rows:
            if r.channel == channel and r.strategy == strategy:
                return r
        raise KeyError(f"no row for channel {channel!r} and strategy {strategy!r}")

    def metrics_array(self) -> np.ndarray:
        """``(n_rows, 5)`` array of the metrics (fractions), rows as in :attr:`rows`."""
        return np.array([[getattr(r, m) for m in METRICS] for r in self.rows])

    @staticmethod
    def _cells(r: TableRow) -> list[str]:
        return [f"{100 * r.accuracy:.1f}", f"{r.kappa:.3f}", f"{100 * r.macro_f1:.1f}",
                f"{100 * r.macro_sensitivity:.1f}", f"{100 * r.macro_specificity:.1f}"]

    def to_markdown(self) -> str:
        """The table as markdown, one block per target channel."""
        out = []
        for ch in self.channels:
            rows = [r for r in self.rows if r.channel == ch]
            out.append(f"### Target channel: {ch} ({rows[0].n_folds} folds, "
                       f"{rows[0].n_epochs} test epochs)\n")
            out.append("| strategy | " + " | ".join(_METRIC_HEADERS[m] for m in METRICS) + " |")
            out.append("|---|" + "---:|" * len(METRICS))
            for r in rows:
                out.append(f"| {r.label} | " + " | ".join(self._cells(r)) + " |")
            out.append("")
        return "\n".join(out)

    def to_text(self) -> str:
        """The table as fixed-width text (what the command line prints)."""
        heads = [_METRIC_HEADERS[m] for m in METRICS]
        width = max([len(s.label) for s in STRATEGIES.values()] + [8])
        out = []
        for ch in self.channels:
            rows = [r for r in self.rows if r.channel == ch]
            out.append(f"Target channel: {ch} ({rows[0].n_folds} folds, "
                       f"{rows[0].n_epochs} test epochs)")
            out.append(f"  {'strategy':<{width}}  " + "  ".join(f"{h:>8}" for h in heads))
            for r in rows:
                out.append(f"  {r.label:<{width}}  "
                           + "  ".join(f"{c:>8}" for c in self._cells(r)))
            out.append("")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.to_text()

    def write_csv(self, path) -> None:
        """Write the table (metrics as fractions) to a CSV file."""
        cols = ["channel", "strategy", "label", *METRICS, "n_epochs", "n_folds"]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow({c: getattr(r, c) for c in cols})
        _atomic_write_text(Path(path), buf.getvalue())


# --------------------------------------------------------------------------------------------
# Data loading (adapters over skseqsleep.datasets)
# --------------------------------------------------------------------------------------------

#: Channel profile of the simulated source cohort (like MASS C4-A1, REFERENCE §1).
SIMULATED_SOURCE_CHANNEL = "C4-A1-like"
#: Channel profiles of the simulated target cohort (like Sleep-EDF Fpz-Cz and EOG).
SIMULATED_TARGET_CHANNELS = ("Fpz-Cz-like", "EOG-like")
SLEEP_EDF_CHANNELS = ("EEG Fpz-Cz", "EOG horizontal")


def _split_channels(data, channels: Sequence[str] | None, what: str):
    """Yield ``(channel, X_channel)`` for the requested channels of a loaded Bunch."""
    names = list(data.ch_names)
    X = np.asarray(data.X)
    if X.ndim == 2:
        X = X[:, None, :]
    wanted = list(channels) if channels else names
    for ch in wanted:
        if ch not in names:
            raise StudyInputError(f"unknown channel {ch!r} for the {what}; it has "
                                  f"{', '.join(repr(n) for n in names)}")
        yield ch, np.ascontiguousarray(X[:, names.index(ch), :], dtype=np.float32)


def _simulate(n_subjects, nights, n_epochs, channels, random_state):
    from skseqsleep.datasets import make_sleep_cohort

    return make_sleep_cohort(n_subjects, n_nights=nights, channels=list(channels),
                             n_epochs=n_epochs, random_state=random_state)


def read_recordings_csv(path) -> tuple[dict[str, tuple[Path, Path]], dict[str, str]]:
    """Read the list of your own recordings for ``--target recordings:CSV``.

    The file is a CSV table with a header and the columns ``recording``, ``subject``,
    ``psg`` and ``hypnogram`` (one row per recording: its id, its subject, its PSG EDF file
    and its EDF+ or text hypnogram; relative paths are relative to the CSV file's folder). The
    recordings are read with :func:`skseqsleep.datasets.load_edf_recordings`.

    Returns
    -------
    recordings : dict
        ``{recording: (psg path, hypnogram path)}``.
    subjects : dict
        ``{recording: subject}``.

    Examples
    --------
    A file such as::

        recording,subject,psg,hypnogram
        p01-n1,p01,p01_night1.edf,p01_night1_hypnogram.edf
        p02-n1,p02,p02_night1.edf,p02_night1_hypnogram.edf
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"the recordings list {path} does not exist (a CSV file with "
                                "the columns recording, subject, psg, hypnogram)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = ("recording", "subject", "psg", "hypnogram")
    header = list(rows[0]) if rows else []
    if not rows or any(c not in header for c in columns):
        raise ValueError(f"{path} must be a CSV table with a header row and the columns "
                         f"{', '.join(columns)} and one row per recording; found the columns "
                         f"{header} and {len(rows)} row(s)")
    recordings, subjects = {}, {}
    for n, row in enumerate(rows, start=2):
        values = {c: (row.get(c) or "").strip() for c in columns}
        empty = [c for c in columns if not values[c]]
        if empty:
            raise ValueError(f"{path}, line {n}: empty {', '.join(empty)}")
        rec = values["recording"]
        if rec in recordings:
            raise ValueError(f"{path}, line {n}: recording {rec!r} is listed twice")
        recordings[rec] = tuple(path.parent / Path(values[c]).expanduser()
                                for c in ("psg", "hypnogram"))
        subjects[rec] = values["subject"]
    return recordings, subjects


def _load_target(kind, path, channels, subjects, fetch, settings, random_state, verbose=0,
                 fetch_url=None, stage_texts=None):
    """Return a list of ``(channel, Bunch-with-1-channel)`` blocks."""
    from sklearn.utils import Bunch

    if kind == "simulated":
        data = _simulate(settings["sim_target_subjects"], settings["sim_nights"],
                         settings["sim_epochs_per_night"], SIMULATED_TARGET_CHANNELS,
                         random_state + 1)
        what = "simulated target cohort"
        description = getattr(data, "description", "simulated target cohort")
    else:
        p = Path(path)
        if kind == "sleep-edf" and fetch:
            from skseqsleep.datasets import fetch_sleep_edf

            try:
                kw = {"base_url": fetch_url} if fetch_url else {}
                fetch_sleep_edf(subjects if subjects is not None else range(20),
                                data_home=p, verbose=bool(verbose), **kw)
            except (OSError, ValueError) as exc:
                raise StudyInputError(f"cannot download Sleep-EDF into {p}: {exc}") from exc
        if kind == "recordings":     # run_study made sure channels are given
            from skseqsleep.datasets import load_edf_recordings

            try:
                recs, subjects_of = read_recordings_csv(p)
                data = load_edf_recordings(recs, list(channels), subjects=subjects_of,
                                           stage_texts=stage_texts,
                                           verbose=int(bool(verbose)))
            except (OSError, KeyError, TypeError, ValueError) as exc:
                raise StudyInputError(f"cannot load the recordings listed in {p}: "
                                      f"{exc}") from exc
            channels = list(data.ch_names)
        else:
            if not p.is_dir():
                raise StudyInputError(f"the {kind} data folder {p} does not exist"
                                      + (" (add --fetch to download Sleep-EDF there)"
                                         if kind == "sleep-edf" else ""))
            try:
                if kind == "sleep-edf":
                    from skseqsleep.datasets import load_sleep_edf

                    data = load_sleep_edf(p, subjects=subjects if subjects is not None
                                          else range(20),
                                          channels=list(channels or SLEEP_EDF_CHANNELS))
                else:
                    from skseqsleep.datasets import load_dreams

                    data = load_dreams(p)
            except (FileNotFoundError, KeyError, ValueError) as exc:
                raise StudyInputError(f"cannot load the {kind} target from {p}: "
                                      f"{exc}") from exc
        what = f"{kind} target at {p}"
        description = getattr(data, "description", what)
    blocks = []
    for ch, X in _split_channels(data, channels, what):
        # the hypnogram figure draws real recordings at their epochs' times (excluded epochs
        # are gaps); a simulated night thinned from 8 h (epochs minutes apart) is drawn as the
        # consecutive sequence the network sees, or it would be a row of 30-s dashes
        onsets = None if kind == "simulated" else getattr(data, "onsets", None)
        blocks.append((ch, Bunch(X=X, y=np.asarray(data.y, dtype=np.int64),
                                 groups=np.asarray(data.groups),
                                 recordings=np.asarray(data.recordings).astype(str),
                                 onsets=None if onsets is None else np.asarray(onsets, float),
                                 fs=float(data.fs), description=description)))
    return blocks


# --------------------------------------------------------------------------------------------
# Estimators (adapters over SpectrogramTransformer / SeqSleepClassifier / model_selection)
# --------------------------------------------------------------------------------------------


#: Study settings given to every classifier as the parameter of the same name.
_CLASSIFIER_SETTINGS = ("validate_every", "patience", "batch_size", "lr", "seq_len", "cell")

#: Classifier parameters that :func:`_classifier` sets itself for every fit, with what sets
#: them instead of ``--set`` / ``classifier_params``.
_STUDY_PARAMS = {
    "warm_start_from": "--source (every pretrained strategy starts from the source model)",
    "trainable_parts": "--strategies (each strategy trains its own parts)",
    "train_split": ("--n-valid-subjects (the study holds out validation subjects in every "
                    "fold; Sleep-EDF-SC-20 uses the published split)"),
    "random_state": "--random-state (every fold's seed is derived from it)",
    "verbose": "--quiet (the study's progress; the classifiers run with verbose=0)",
    "max_epochs": "--max-epochs (finetuning) and --pretrain-max-epochs (the source model)",
}


def _refused_classifier_params() -> dict[str, str]:
    """``{classifier parameter: the option to use instead}`` for the parameters that the
    study sets itself (:func:`_classifier`): ``--set`` / ``classifier_params`` may not give
    them, or they would override the study's value while ``study.json`` and the provenance
    record the study's."""
    refused = {key: f"--{key.replace('_', '-')}" for key in _CLASSIFIER_SETTINGS}
    refused.update(_STUDY_PARAMS)
    refused["optimizer__lr"] = "--lr"        # skorch routes it over lr
    return refused


def _classifier(settings, seed, *, warm_start_from=None, trainable_parts="all",
                train_split=None, max_epochs=None, extra=None):
    from skseqsleep import SeqSleepClassifier

    kw = {}
    for key in _CLASSIFIER_SETTINGS:
        if settings.get(key) is not None:
            kw[key] = settings[key]
    for key, param in _ARCH_PARAMS.items():
        if settings.get(key) is not None:
            kw[param] = settings[key]
    kw.update(extra or {})
    own = {"warm_start_from": warm_start_from, "trainable_parts": trainable_parts,
           "train_split": train_split, "random_state": seed, "verbose": 0}
    if max_epochs is not None:
        own["max_epochs"] = max_epochs
    kw.update(own)      # the study's own values win (each is in _STUDY_PARAMS: refused in extra)
    return SeqSleepClassifier(**kw)


#: Network settings read from a source model so that every fold builds the same network.
_ARCH_PARAMS = {"n_filters": "module__n_filters", "rnn_hidden": "module__rnn_hidden",
                "attention_size": "module__attention_size"}


def _arch_from_source(config: Mapping[str, Any], settings: dict, explicit: set,
                      extra: dict, source: str = "the source model") -> tuple[dict, dict]:
    """Settings and classifier parameters that make the target network fit the source.

    The cell and the sizes (and L, unless given in ``explicit``) are taken from ``config``.
    A setting given explicitly (its name in ``explicit``, or a ``module__*`` parameter in
    ``extra``) that differs from the source's raises :class:`StudyInputError` naming both
    values; so does an explicit L other than the source's for a BN-LSTM source, whose batch
    normalisation statistics are stored per sequence step.
    """
    settings = dict(settings)
    extra = dict(extra)
    conflicts = []
    cell = config.get("cell", settings.get("cell"))
    if "cell" in explicit and cell is not None and settings.get("cell") != cell:
        conflicts.append(f"cell: the study sets {settings.get('cell')!r} (--cell), "
                         f"the source has {cell!r}")
    settings["cell"] = cell
    if config.get("seq_len") is not None:
        src_len = int(config["seq_len"])
        if "seq_len" not in explicit:
            settings["seq_len"] = src_len
        elif cell == "bnlstm" and int(settings["seq_len"]) != src_len:
            conflicts.append(f"seq_len: the study sets {settings['seq_len']} (--seq-len), "
                             f"the source needs L={src_len} (its BN-LSTM keeps batch-norm "
                             "statistics per sequence step)")
    for key, param in _ARCH_PARAMS.items():
        if key not in config:
            continue
        given = [(f"--{key.replace('_', '-')}", settings.get(key))] if key in explicit else []
        if param in extra:
            given.append((f"--set {param}", extra[param]))
        for option, value in given:
            if value != config[key]:
                conflicts.append(f"{key}: the study sets {value!r} ({option}), the source "
                                 f"has {config[key]!r}")
        settings[key] = config[key]
        extra.pop(param, None)
    if conflicts:
        raise StudyInputError(
            f"the network settings differ from those of {source}, whose architecture every "
            "strategy uses: " + "; ".join(conflicts) + ". Leave these options out (they "
            "then follow the source) or use another source.")
    return settings, extra


def _check_network(settings: dict, extra: dict, fs: float, X, source_state=None,
                   source: str = "the source model") -> None:
    """Build the network of the folds on the meta device (no weights, no training) and, when
    ``source_state`` is given, load the source's weights into it, so that wrong classifier
    parameters, an unknown cell or a source that does not fit the target end with a
    :class:`StudyInputError` before any work is done."""

    import torch

    from skseqsleep import SeqSleepClassifier, SpectrogramTransformer
    from skseqsleep.classifier import _architecture_differences

    clf = _classifier(settings, 0, extra=extra, max_epochs=settings.get("max_epochs"))
    # skorch's check of parameter names, which knows the module, criterion and optimizer
    # prefixes only once a net is initialised: module__*, criterion__* and optimizer__* are
    # checked below by building the network, the loss and the optimiser
    built = ("module__", "criterion__", "optimizer__")
    try:
        SeqSleepClassifier(**{k: v for k, v in extra.items()
                              if not k.startswith(built)})._validate_params()
    except (TypeError, ValueError) as exc:
        raise StudyInputError(f"unknown classifier parameter in --set / classifier_params: "
                              f"{exc}") from None
    # the checks fit makes before any work (train_sampler, l2_lambda, ..., the device), so
    # that a wrong value ends here and not in the first fold, after study.json is written
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # the folds' fits warn, once per fit
            clf._check_fit_settings()
    except (TypeError, ValueError) as exc:
        raise StudyInputError(f"a classifier parameter in --set / classifier_params is not "
                              f"valid: {exc}") from None
    for name in ("criterion", "optimizer"):
        value = getattr(clf, name)
        if not callable(value):
            example = "torch.optim.SGD" if name == "optimizer" else "torch.nn.NLLLoss"
            raise StudyInputError(
                f"--set {name} / classifier_params[{name!r}] must be a class such as "
                f"{example}; got {value!r} (--set gives Python literals, not classes: set "
                f"it with run_study(classifier_params={{{name!r}: ...}}) in Python)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shape = SpectrogramTransformer(fs=fs).fit_transform(X[:1]).shape[1:]
    clf.n_channels_, clf.n_frames_, clf.n_freq_bins_ = (int(v) for v in shape)
    try:
        config = clf._module_config(None if source_state is None else source_state["config"])
        with torch.device("meta"):
            net = clf._module_class()(**config)
    except (TypeError, ValueError) as exc:
        raise StudyInputError(f"the network settings are not valid: {exc}") from None
    try:  # the loss and the optimiser, as skorch builds them (on the weightless network)
        with torch.device("meta"):
            clf.criterion(**clf.get_params_for("criterion"))
            groups, kwargs = clf.get_params_for_optimizer("optimizer", net.named_parameters())
            clf.optimizer(*groups, **kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        raise StudyInputError(f"the loss or optimiser parameters in --set / "
                              f"classifier_params are not valid: {type(exc).__name__}: "
                              f"{exc}") from None
    if source_state is None:
        return
    src = source_state["config"]
    diffs = _architecture_differences(src, config)   # the classifier's warm-start check
    if diffs:
        what = {"n_channels": "input channels", "n_freq_bins": "frequency bins",
                "n_frames": "time frames", "n_classes": "classes", "seq_len": "L"}
        details = []
        for k in diffs:
            text = f"{k} ({what.get(k, k)}): {source} needs {src[k]!r}, the study has {config[k]!r}"
            if k == "n_channels":
                text += " (each target channel is studied on its own, as a 1-channel input)"
            details.append(text)
        raise StudyInputError(f"{source} does not fit this study: " + "; ".join(details))
    state = {k: torch.as_tensor(v) for k, v in source_state["state_dict"].items()}
    try:
        net.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise StudyInputError(f"the weights of {source} do not fit the network: "
                              f"{exc}") from None


def _train_split(valid_subjects, n_valid, seed):
    from skseqsleep.model_selection import GroupHoldout, PredefinedGroupSplit

    if valid_subjects is not None:
        return PredefinedGroupSplit(valid_subjects)
    return GroupHoldout(n_valid_groups=n_valid, random_state=seed)


def fold_seed(random_state: int, fold: int) -> int:
    """The random_state of one fold: a function of ``(random_state, fold)`` only."""
    return int(np.random.SeedSequence([int(random_state), int(fold)]).generate_state(1)[0]
               % (2**31 - 1))


def _run_fold_task(task: dict, X, y, groups, recordings, fs, source_model, settings,
                   extra_params, torch_threads):
    """Fit and evaluate one (channel, strategy, fold); runs in a joblib/Dask worker, with
    ``torch_threads`` torch threads (restored afterwards: with ``n_jobs=1`` the worker is the
    caller's process)."""
    if task.get("gru_cpu") is not None:
        here = _gru_cpu_backend("gru", extra_params)
        if here is not None and here != task["gru_cpu"]:
            # folds pooled into one table must run one GRU implementation (seeded results
            # differ between them at float-rounding level)
            raise RuntimeError(
                f"this worker ({platform.node() or 'unknown host'}) runs GRU cells with the "
                f"{here!r} recurrence, but the study was started with {task['gru_cpu']!r} "
                "(skseqsleep.nn.gru_backend): set SKSEQSLEEP_GRU to the same value "
                "(compiled, or torch) on every worker")
    return _with_threads(torch_threads, _fit_fold, task, X, y, groups, recordings, fs,
                         source_model, settings, extra_params)


def _gru_on_cpu(cell, extra_params) -> bool:
    """Whether the folds run GRU cells (``cell`` None: the classifier's default, GRU) on the
    CPU (the classifier's ``device``, default ``"auto"``, resolved in this process), where
    the GRU recurrence is compiled or ``torch.nn.GRU`` (:func:`skseqsleep.nn.gru_backend`)."""
    from skseqsleep.classifier import resolve_device

    return ((cell or "gru") == "gru"
            and resolve_device((extra_params or {}).get("device", "auto")) == "cpu")


def _gru_cpu_backend(cell, extra_params) -> str | None:
    """:func:`skseqsleep.nn.gru_backend` on the CPU when the folds run GRU cells there
    (:func:`_gru_on_cpu`), else None: what a study records and its workers must match."""
    if not _gru_on_cpu(cell, extra_params):
        return None
    from skseqsleep.nn._gru_ext import gru_backend

    return gru_backend("cpu")


def _fold_classifier(task, settings, extra_params, source_model=None):
    """The classifier of one (channel, strategy, fold) task (also the probe of
    :func:`_check_training_windows` before the folder is claimed)."""
    strategy = STRATEGIES[task["strategy"]]
    seed = task["seed"]
    return _classifier(settings, seed,
                       warm_start_from=source_model if strategy.pretrained else None,
                       trainable_parts=strategy.trainable_parts,
                       train_split=_train_split(task["valid_subjects"],
                                                settings.get("n_valid_subjects"), seed),
                       max_epochs=settings.get("max_epochs"), extra=extra_params)


def _target_sha256(blocks) -> str:
    """SHA-256 of the loaded target: every channel's signals, stages, subjects and recordings
    (part of the study's fingerprint)."""
    digest = hashlib.sha256()
    for channel, data in blocks:
        digest.update(f"channel {channel}\n".encode())
        for name in ("X", "y", "groups", "recordings"):
            a = np.asarray(getattr(data, name))
            digest.update(f"{name} {a.dtype.kind} {a.shape}\n".encode())
            if a.dtype.kind in "OUS":
                digest.update("\x00".join(map(str, a.ravel().tolist())).encode())
            else:
                digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def _standardised(transformer, X, groups, split):
    """Spectrograms of ``X`` standardised with statistics of its *training* subjects only.

    REFERENCE §2: the mean and standard deviation come from the training epochs; validation
    and test data use the training statistics. ``split`` is the classifier's ``train_split``
    (seeded, so it holds out the same subjects when the classifier applies it to the same
    groups); the subjects it holds out for validation are left out of the transformer's fit.
    Before store version 2 the transformer was fitted on every non-test subject.
    """
    _, valid = next(split.split(X, groups=groups))
    train = np.ones(len(X), dtype=bool)
    train[valid] = False
    # one STFT per epoch: the training rows through fit_transform, the others through
    # transform (equal, bit for bit, to fit on the training rows then transform of all)
    train_spectra = transformer.fit_transform(X[train])
    out = np.empty((len(X), *train_spectra.shape[1:]), dtype=train_spectra.dtype)
    out[train] = train_spectra
    if valid.size:
        out[~train] = transformer.transform(X[~train])
    return out


def _fit_fold(task, X, y, groups, recordings, fs, source_model, settings, extra_params):
    """The body of :func:`_run_fold_task`, run with its torch thread count."""
    from skseqsleep import SpectrogramTransformer

    t0 = time.perf_counter()
    test_mask = np.isin(groups, [task["test_subject"]])
    train_mask = ~test_mask
    clf = _fold_classifier(task, settings, extra_params, source_model)
    transformer = SpectrogramTransformer(fs=fs)
    Xtr = _standardised(transformer, X[train_mask], groups[train_mask], clf.train_split)
    Xte = transformer.transform(X[test_mask])
    clf.fit(Xtr, y[train_mask], groups=groups[train_mask], recordings=recordings[train_mask])
    y_pred = clf.predict(Xte, recordings=recordings[test_mask])
    history = [dict(h) for h in getattr(clf, "validation_history_", [])]
    return {**task, "y_true": y[test_mask], "y_pred": np.asarray(y_pred),
            "recordings": recordings[test_mask], "history": history,
            "seconds": time.perf_counter() - t0,
            "worker": f"{platform.node()}:{os.getpid()}"}


# --------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------


def _is_sc20(target_kind: str, subjects) -> bool:
    """Whether the target is Sleep-EDF-SC-20 (subjects 0-19), whose folds are published."""
    return target_kind == "sleep-edf" and list(subjects) == list(range(20))


def _n_valid_subjects(target_kind: str, groups, n_valid: int | None) -> int:
    """Validation subjects per fold: ``n_valid`` as given, else the default for the number of
    subjects. Given for Sleep-EDF-SC-20 it is refused: its published split decides."""
    uniq = np.unique(groups).tolist()
    if n_valid is not None and _is_sc20(target_kind, uniq):
        raise StudyInputError(
            f"n_valid_subjects={n_valid} cannot apply to Sleep-EDF-SC-20: its folds use the "
            "published split (4 validation subjects per fold, REFERENCE §6); leave "
            "--n-valid-subjects out, or choose other --subjects to draw validation subjects "
            "at random")
    return _default_n_valid(len(uniq)) if n_valid is None else n_valid


def _outer_folds(groups, target_kind, n_valid):
    """``[(fold, test_subject, valid_subjects or None)]`` for leave-one-subject-out."""
    uniq = np.unique(groups).tolist()      # sorted, each subject once
    if len(uniq) < 3:
        raise StudyInputError(f"leave-one-subject-out with an inner validation subject needs "
                              f"at least 3 subjects; the target has {len(uniq)}: {uniq}")
    if _is_sc20(target_kind, uniq):
        return [(f["fold"], f["test"], list(f["valid"])) for f in sleepedf_sc20_folds()]
    if n_valid is not None and n_valid > len(uniq) - 2:
        raise StudyInputError(f"n_valid_subjects={n_valid} leaves no training subject: the "
                              f"target has {len(uniq)} subjects (1 test + valid + >=1 train)")
    return [(k + 1, s, None) for k, s in enumerate(uniq)]


def _check_stored_fold(stored: Mapping, path: Path, root: Path, fold: int, test_subject,
                       data) -> None:
    """Refuse a stored fold result that was not computed on the current fold of the target.

    The fingerprint covers the arguments and the target's content (``target_sha256``), so a
    resumed study has the same folds; what remains is a fold file copied or moved by hand:
    its recorded test subject must be the fold's. Every fold result written by
    :func:`run_study` records it.
    """
    if "test_subject" not in stored:
        raise StudyInputError(
            f"the stored fold result {path} does not record its test subject, which every "
            "fold result written by skseqsleep study does; delete it and run the same "
            "command again to recompute that fold")
    old = stored["test_subject"]
    if not (old == test_subject or str(old) == str(test_subject)):
        n_old = int(np.asarray(stored["y_true"]).size)
        n_now = int(np.isin(data.groups, [test_subject]).sum())
        raise StudyInputError(
            f"the stored result of fold {fold} ({path}) tested subject {old!r} ({n_old} "
            f"epochs), but fold {fold} of the target now tests subject {test_subject!r} "
            f"({n_now} epochs): the target data changed since the output folder {root} was "
            "written (a subject added or removed renumbers the folds), so its fold results "
            "cannot be pooled with the current data; use a new --output-dir")


def _default_n_valid(n_subjects: int) -> int:
    # 4 of the 19 non-test subjects in the paper (REFERENCE §6), at least 1
    return max(1, round((n_subjects - 1) * 4 / 19))


class _Progress:
    def __init__(self, verbose: int):
        self.verbose = verbose
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        if self.verbose:
            print(f"[skseqsleep study {time.perf_counter() - self.t0:7.1f}s] {msg}",
                  file=sys.stderr, flush=True)


def _machine() -> dict:
    from skseqsleep import __version__

    info = {"skseqsleep": __version__, "node": platform.node(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:  # not Linux
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover - torch is a hard dependency
        info["torch"] = None
    return info


def _with_threads(n_threads, func, *args):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        return func(*args)
    finally:
        torch.set_num_threads(before)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_saved_model(path: Path) -> bool:
    from skseqsleep.classifier import _read_model_file

    try:
        _read_model_file(path)
    except (OSError, ValueError, KeyError):
        return False
    return True


def _external_source(kind: str, path: str) -> tuple[dict, dict[str, str]]:
    """Read a ``checkpoint:`` or ``model:`` source.

    Returns
    -------
    state : dict
        ``{"config", "state_dict", "classes"}``, as ``warm_start_from`` reads it.
    sha256 : dict
        ``{file name: SHA-256}`` of the files read: the model file, or the checkpoint's
        ``.index`` and ``.data-*`` files (part of the study's fingerprint).
    """
    from skseqsleep.classifier import _read_model_file
    from skseqsleep.pretrained import is_tf_checkpoint
    from skseqsleep.pretrained.tensorbundle import resolve_checkpoint_prefix

    p = Path(path)
    if kind == "checkpoint":
        if p.is_file() and p.suffix != ".index" and not Path(f"{p}.index").is_file() \
                and _is_saved_model(p):
            raise StudyInputError(
                f"--source checkpoint:{p} is a model saved by "
                "SeqSleepClassifier.save_model, not a TensorFlow checkpoint: use "
                f"--source model:{p}")
        try:
            prefix = resolve_checkpoint_prefix(p)
            state = _read_model_file(prefix)      # as warm_start_from reads it
        except (OSError, ValueError, KeyError) as exc:
            raise StudyInputError(f"cannot read the TensorFlow checkpoint {p}: {exc}") from None
        files = [Path(f"{prefix}.index"),
                 *sorted(prefix.parent.glob(f"{glob.escape(prefix.name)}.data-*"))]
    else:
        if is_tf_checkpoint(p):
            raise StudyInputError(f"--source model:{p} is a TensorFlow checkpoint, not a "
                                  f"model saved by SeqSleepClassifier.save_model: use "
                                  f"--source checkpoint:{p}")
        if not p.is_file():
            raise StudyInputError(f"--source model:{p} is not a file: expected the file "
                                  "written by SeqSleepClassifier.save_model (e.g. the "
                                  "source_model.pt of an earlier study)")
        try:
            state = _read_model_file(p)
        except (OSError, ValueError, KeyError) as exc:
            raise StudyInputError(f"cannot load the model {p}: {exc}") from None
        files = [p]
    return state, {f.name: _sha256(f) for f in files}


def _load_mass_source(path: str):
    from skseqsleep.datasets import load_mass

    try:
        return load_mass(path)
    except (FileNotFoundError, NotADirectoryError, KeyError, ValueError) as exc:
        raise StudyInputError(f"cannot load MASS from {path}: {exc}") from exc


def _source_what(kind: str, path: str | None) -> str:
    return "simulated source cohort" if kind == "simulated" else f"MASS at {path}"


def _source_data(kind, path, settings, random_state, log):
    """The recordings a ``simulated`` or ``mass:`` source model is pretrained on."""
    if kind == "simulated":
        return _simulate(settings["sim_source_subjects"], settings["sim_nights"],
                         settings["sim_epochs_per_night"], (SIMULATED_SOURCE_CHANNEL,),
                         random_state)
    log(f"loading the source (MASS at {path})")
    return _load_mass_source(path)


def _pretrain_classifier(settings, extra_params, random_state, n_subjects):
    """The classifier that pretrains the source model (also the probe of
    :func:`_check_training_windows` before the folder is claimed)."""
    seed = fold_seed(random_state, 0)
    return _classifier(settings, seed, trainable_parts="all",
                       train_split=_train_split(None, _default_n_valid(n_subjects), seed),
                       max_epochs=settings["pretrain_max_epochs"], extra=extra_params)


def _check_training_windows(clf, y, groups, recordings, what: str, hint: str) -> None:
    """Split the training data as ``clf.fit`` would (its ``train_split``, ``seq_len`` and
    ``batch_size``: the classifier's own :meth:`get_split_datasets`, on the recordings only,
    no spectrograms) and raise :class:`StudyInputError` when that fit would fail for want of
    training windows or subjects."""
    from skseqsleep._windows import RecordingsDataset, find_recordings

    y = np.asarray(y)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            recs = find_recordings(len(y), recordings, groups, what="X")
            dataset = RecordingsDataset(np.empty((len(y), 0), np.float32), y,
                                        np.asarray(groups), recs, int(clf.seq_len))
            clf.get_split_datasets(dataset)
    except ValueError as exc:
        raise StudyInputError(f"{what}: {exc} ({hint})") from None


def _pretrained_source(kind, path, store, settings, extra_params, random_state, log,
                       data=None):
    """The source pretrained here (``simulated`` or ``mass:``) as ``{"config", "state_dict",
    "classes"}``: read from ``output_dir/source_model.pt`` when an earlier run with the same
    arguments cached it, else pretrained and cached there.

    Loaded (or pretrained) in the main process, so that workers of a cluster need no access
    to the source files; passed to ``warm_start_from`` of every pretrained fold. ``data``: the
    source recordings (:func:`_source_data`) when already loaded or simulated.
    """
    # the same reader as SeqSleepClassifier(warm_start_from=...)
    from skseqsleep.classifier import _source_state

    cache = store.root / "source_model.pt"
    if cache.is_file():
        log(f"source model: the cached pretrained model {cache}")
        try:
            return _source_state(cache)
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise StudyInputError(
                f"the cached source model {cache} cannot be read ({exc}); delete it and run "
                "the same command again to pretrain it anew") from None
    if data is None:
        data = _source_data(kind, path, settings, random_state, log)
    what = _source_what(kind, path)
    ch, X = next(iter(_split_channels(data, None, what)))
    n_subj = len(np.unique(data.groups))
    log(f"source model: pretraining on the {what} ({ch}, {n_subj} subjects, "
        f"{len(data.y)} epochs, {settings['pretrain_max_epochs']} training epochs)")
    t0 = time.perf_counter()
    from skseqsleep import SpectrogramTransformer

    clf = _pretrain_classifier(settings, extra_params, random_state, n_subj)
    Xt = _standardised(SpectrogramTransformer(fs=float(data.fs)), X, np.asarray(data.groups),
                       clf.train_split)
    clf.fit(Xt, np.asarray(data.y), groups=np.asarray(data.groups),
            recordings=np.asarray(data.recordings).astype(str))
    cache.parent.mkdir(parents=True, exist_ok=True)
    clf.save_model(cache)       # written to a temporary file, then renamed (atomic)
    hist = clf.validation_history_
    best = max((h["valid_acc"] for h in hist), default=float("nan"))
    log(f"source model: pretrained in {time.perf_counter() - t0:.1f}s (best validation "
        f"accuracy {100 * best:.1f}%), cached in {cache}")
    return _source_state(clf)


#: Seconds allowed to connect to a Dask scheduler (``distributed.Client``'s timeout); the
#: connection is abandoned after twice this (a port that accepts TCP but never answers).
SCHEDULER_TIMEOUT = 10.0


def _check_scheduler_address(scheduler) -> None:
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise StudyInputError(f"scheduler must be a Dask scheduler address such as "
                              f"tcp://10.0.0.1:8786; got {scheduler!r}")
    try:
        from distributed.comm import parse_address
        from distributed.comm.addressing import parse_host_port
    except ImportError as exc:  # pragma: no cover
        raise StudyInputError("--scheduler needs dask.distributed: "
                              "pip install skseqsleep[distributed]") from exc
    try:
        scheme, loc = parse_address(scheduler.strip())
        if scheme != "inproc":
            host, port = parse_host_port(loc)
            if not host or not 0 < int(port) < 65536:
                raise ValueError(f"host {host!r}, port {port!r}")
    except (ValueError, TypeError) as exc:
        raise StudyInputError(f"--scheduler {scheduler!r} is not a Dask scheduler address "
                              f"(expected e.g. tcp://10.0.0.1:8786): {exc}") from None


def _connect_scheduler(address: str, log):
    """A ``distributed.Client`` of ``address``, or :class:`StudyInputError` naming it.

    ``Client(timeout=...)`` does not bound every wait (a port that accepts TCP connections
    but never answers the handshake blocks it for ever), so it is created in a daemon thread
    that is abandoned after ``2 * SCHEDULER_TIMEOUT`` seconds.
    """
    import threading

    from distributed import Client

    timeout = float(SCHEDULER_TIMEOUT)
    box: dict[str, Any] = {}
    lock = threading.Lock()

    def connect():
        try:
            client = Client(address, timeout=f"{timeout}s")
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc
            return
        with lock:
            abandoned = box.get("abandoned", False)
            if not abandoned:
                box["client"] = client
        if abandoned:  # the caller gave up: do not leave a connected client behind
            client.close()

    log(f"connecting to the Dask scheduler {address}")
    thread = threading.Thread(target=connect, name="skseqsleep-dask-connect", daemon=True)
    thread.start()
    thread.join(2 * timeout)
    with lock:
        box["abandoned"] = "client" not in box and "error" not in box
    if box["abandoned"]:
        raise StudyInputError(f"the Dask scheduler {address} did not answer within "
                              f"{2 * timeout:g} s (is it a Dask scheduler's address?)")
    if "error" in box:
        exc = box["error"]
        raise StudyInputError(f"cannot connect to the Dask scheduler {address}: "
                              f"{type(exc).__name__}: {exc}") from exc
    return box["client"]


def _as_names(value, what: str) -> list[str] | None:
    """A sequence of names as a list; a single string is one name."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    try:
        names = list(value)
    except TypeError:
        raise StudyInputError(f"{what} must be a list of strings; got {value!r}") from None
    bad = [v for v in names if not isinstance(v, str)]
    if bad:
        raise StudyInputError(f"{what} must be strings; got {bad[0]!r} in {value!r}")
    return names


def _check_int(value, what: str, *, allow_none: bool = False, positive: bool = False,
               nonzero: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise StudyInputError(f"{what} must be an integer; got {value!r}")
    value = int(value)
    if positive and value <= 0:
        raise StudyInputError(f"{what} must be a positive integer; got {value}")
    if nonzero and value == 0:
        raise StudyInputError(f"{what}=0 runs nothing; use 1, N or -1 (all cores)")
    return value


def run_study(output_dir: str | os.PathLike = "study_results", *,
              source: str = "simulated", target: str = "simulated",
              channels: Sequence[str] | None = None,
              strategies: Sequence[str] | None = None,
              subjects: Iterable[int] | None = None,
              fetch: bool = False,
              fetch_url: str | None = None,
              settings: Mapping[str, Any] | None = None,
              classifier_params: Mapping[str, Any] | None = None,
              random_state: int = 0,
              n_jobs: int | None = 1,
              scheduler: str | None = None,
              torch_threads: int | None = None,
              plot_recording: str | None = None,
              plots: bool = True,
              verbose: int = 1,
              stage_texts: Mapping[str, Any] | None = None) -> StudyResult:
    """Run the transfer-learning study and write its outputs to ``output_dir``.

    Parameters
    ----------
    output_dir : path, default="study_results"
        Results folder; re-running with the same arguments resumes (finished folds are
        skipped, once their test subject is checked to be that of the same fold; a target
        whose data changed since changes the fingerprint's ``target_sha256`` and raises
        :class:`StudyInputError`), different arguments raise :class:`StudyArgumentsError` once a fold result
        is stored (a folder without one is taken over, see :meth:`ResultStore.claim`).
        Nothing is written before all arguments and the source are checked: the classifier
        parameters as ``fit`` checks them (device, optimiser, loss, ...), ``random_state``,
        the folds, and whether every fit (each fold that trains, and the pretraining of a
        source pretrained here) gets training subjects and windows from the loaded data. An unreadable
        fold result or cached source model raises :class:`StudyInputError` naming the file:
        delete it to have it recomputed.
    source : str, default="simulated"
        ``"simulated"`` (a simulated C4-A1-like EEG cohort, pretrained here and cached),
        ``"mass:PATH"`` (MASS, via :func:`skseqsleep.datasets.load_mass`, pretrained here),
        ``"checkpoint:PATH"`` (the authors' TensorFlow checkpoint, REFERENCE §3) or
        ``"model:PATH"`` (a model written by
        :meth:`SeqSleepClassifier.save_model <skseqsleep.SeqSleepClassifier.save_model>`,
        e.g. the ``source_model.pt`` of an earlier study). The source's network settings
        (cell, sizes, and L unless ``settings["seq_len"]`` is given) are used for every
        strategy, including training from scratch; an explicit setting (``settings`` or
        ``classifier_params["module__..."]``) that differs from them raises
        :class:`StudyInputError`, as does another L than a BN-LSTM source's and a source
        that does not fit the target. The SHA-256 of a ``model:`` or ``checkpoint:``
        source's files is part of the fingerprint (not for ``mass:``, a data folder too
        large to hash).
    target : str, default="simulated"
        ``"simulated"`` (a small simulated cohort with an Fpz-Cz-like EEG and an EOG-like
        channel), ``"sleep-edf:PATH"`` or ``"dreams:PATH"``.
    channels : str or sequence of str, optional
        Target channels (a single string is one channel), each studied separately (one table block each). Default: both
        channels: ``"Fpz-Cz-like"`` and ``"EOG-like"`` for the simulated target,
        ``"EEG Fpz-Cz"`` and ``"EOG horizontal"`` for Sleep-EDF; DREAMS: its EEG channel.
    strategies : str or sequence of str, optional
        Keys of :data:`STRATEGIES` (a single string is one key); default all six, in the paper's order.
    subjects : iterable of int, optional
        Sleep-EDF subjects (default 0..19 = Sleep-EDF-SC-20, which uses the published
        20-fold split of REFERENCE §6).
    fetch : bool, default=False
        Download the Sleep-EDF files first (:func:`skseqsleep.datasets.fetch_sleep_edf`;
        files already there with the right SHA-256 are not downloaded again).
    fetch_url : str, optional
        A mirror of PhysioNet's Sleep-EDF folder for ``fetch`` (files are checked against
        the official checksums, so the mirror does not change results).
    stage_texts : mapping, optional
        For a ``recordings:CSV`` target: ``{annotation text: stage}`` of the hypnograms'
        vocabulary (:func:`skseqsleep.datasets.load_edf_recordings`); default (that of
        :func:`~skseqsleep.datasets.read_hypnogram`): the Sleep-EDF/MASS texts, their
        AASM counterparts and the bare AASM labels. Recorded among the arguments (so a
        resumed study must give the same vocabulary).
    settings : dict, optional
        Overrides of the study settings (:data:`SIMULATED_SETTINGS` for a simulated target,
        :data:`PAPER_SETTINGS` otherwise): ``max_epochs``, ``pretrain_max_epochs``,
        ``validate_every``, ``patience``, ``batch_size``, ``lr``, ``seq_len``,
        ``n_valid_subjects``, and the simulated cohort sizes ``sim_*``.
    classifier_params : dict, optional
        Further :class:`~skseqsleep.SeqSleepClassifier` parameters (e.g.
        ``{"module__rnn_hidden": 16}``, ``{"train_sampler": "shared"}``), for the source model
        and every fold. The parameters that the study sets itself (``max_epochs``, ``lr``,
        ``batch_size``, ``seq_len``, ``validate_every``, ``patience``, ``cell``,
        ``random_state``, ``verbose``, ``train_split``, ``warm_start_from``,
        ``trainable_parts``, and ``optimizer__lr``) raise :class:`StudyArgumentsError`
        naming the setting or option to use instead.
    random_state : int, default=0
        Seed of the simulation and of every fold (fold k uses :func:`fold_seed`).
    n_jobs : int, default=1
        Folds run in parallel through joblib (-1: all cores).
    scheduler : str, optional
        Address of a Dask scheduler (``"tcp://host:8786"``); folds then run on its workers
        through joblib's dask backend. It is connected before any data is loaded; no answer
        within ``2 * SCHEDULER_TIMEOUT`` seconds raises :class:`StudyInputError`.
    torch_threads : int, optional
        Threads of torch in each fold (default 1: several threads per fold are slower on a
        busy machine and can change the last bits of results; use ``n_jobs`` for more cores).
    plot_recording : str, optional
        Recording whose hypnogram (true vs predicted) is plotted; default: the first test
        recording of fold 1.
    plots : bool, default=True
        Write the PNG figures (needs matplotlib).
    verbose : int, default=1
        Progress per strategy and fold on stderr; 0 silences it.

    Returns
    -------
    result : StudyResult
        The table (``result.rows``), per-fold metrics, confusion matrices and curves.

    Examples
    --------
    >>> from skseqsleep.study import run_study
    >>> result = run_study("study_results")  # doctest: +SKIP
    >>> print(result)  # doctest: +SKIP
    """
    log = _Progress(verbose)
    t_start = time.perf_counter()
    # 1. everything that can be checked without data: before any work, nothing written
    src_kind, src_path = parse_data_spec(source, "source")
    tgt_kind, tgt_path = parse_data_spec(target, "target")
    strategies = _as_names(strategies, "strategies")
    strategies = strategies if strategies is not None else list(STRATEGIES)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise StudyInputError(f"unknown strategies {unknown or strategies}; choose from "
                              f"{', '.join(STRATEGIES)}")
    strategies = [s for s in STRATEGIES if s in strategies]  # paper order, no duplicates
    channels = _as_names(channels, "channels")
    if channels is not None:
        channels = list(dict.fromkeys(channels))
        if not channels:
            raise StudyInputError("channels is empty")
    if subjects is not None:
        try:  # the loader's own rule (datasets._common.as_integers)
            subjects = sorted(set(as_integers(subjects, "subjects")))
        except (TypeError, ValueError) as exc:
            raise StudyInputError(str(exc)) from None
        if tgt_kind != "sleep-edf":
            raise StudyInputError("subjects only applies to a sleep-edf target")
    if tgt_kind == "simulated" and channels:
        bad = [c for c in channels if c not in SIMULATED_TARGET_CHANNELS]
        if bad:
            raise StudyInputError(f"unknown channel {bad[0]!r} for the simulated target; it "
                                  f"has {', '.join(map(repr, SIMULATED_TARGET_CHANNELS))}")
    if tgt_kind == "recordings" and not channels:
        raise StudyInputError("--target recordings:CSV needs the channel(s) to read from every "
                              "PSG file: give --channel (e.g. --channel 'EEG C4-M1')")
    if tgt_kind != "sleep-edf" and fetch:
        raise StudyInputError("fetch only applies to a sleep-edf target")
    if fetch_url is not None and not fetch:
        raise StudyInputError("fetch_url (--fetch-url) is only used with fetch=True "
                              "(--fetch); add it or leave the URL out")
    if stage_texts is not None:
        if tgt_kind != "recordings":
            raise StudyInputError("stage_texts (--stage-texts) is the hypnogram vocabulary of "
                                  "a recordings:CSV target; the other targets have their own")
        from skseqsleep.datasets._hypnogram import check_stage_texts

        try:
            stage_texts = check_stage_texts(stage_texts)
        except (TypeError, ValueError) as exc:
            raise StudyInputError(str(exc)) from exc
    random_state = _check_int(random_state, "random_state")
    if random_state < 0:
        raise StudyInputError(f"random_state (--random-state) must be an integer >= 0 (it "
                              f"seeds numpy's SeedSequence); got {random_state}")
    n_jobs = _check_int(n_jobs, "n_jobs", allow_none=True, nonzero=True)
    torch_threads = _check_int(torch_threads, "torch_threads", allow_none=True,
                               positive=True)
    if scheduler is not None:
        _check_scheduler_address(scheduler)
    resolved = _resolve_settings(tgt_kind, settings)
    explicit = {k for k, v in (settings or {}).items() if v is not None}
    extra = dict(classifier_params or {})
    bad = [k for k in extra if not isinstance(k, str)]
    if bad:
        raise StudyInputError(f"classifier_params keys must be parameter names; got {bad[0]!r}")
    refused = _refused_classifier_params()
    own = [k for k in extra if k in refused]
    if own:
        raise StudyArgumentsError(
            "; ".join(f"--set {k}: use {refused[k]}" for k in own)
            + ". The study sets " + ("this parameter" if len(own) == 1 else "these parameters")
            + " itself and records its own value in study.json and provenance.json; --set "
            "(classifier_params) is for the classifier's other parameters, e.g. "
            "train_sampler=shared or module__rnn_hidden=16")
    for key, param in _ARCH_PARAMS.items():
        if key in explicit and param in extra and extra[param] != resolved[key]:
            raise StudyInputError(f"{key} is given twice with different values: "
                                  f"{resolved[key]!r} (setting {key}) and {extra[param]!r} "
                                  f"(classifier parameter {param})")
    from skseqsleep.pretrained import is_tf_checkpoint

    for path, what in ((src_path, "source"), (tgt_path, "target")):
        if path is not None and src_kind != "checkpoint" and not Path(path).exists() \
                and not (what == "target" and fetch) \
                and not (what == "source" and is_tf_checkpoint(path)):
            # (a checkpoint prefix given as model: is named as such by _external_source)
            hint = (" (add --fetch to download Sleep-EDF there)"
                    if what == "target" and tgt_kind == "sleep-edf" else "")
            raise StudyInputError(f"the {what} path {path} does not exist{hint}")
    store = ResultStore(output_dir)
    if store.manifest_path.is_file():
        # a study folder in use by another run is refused before any loading, download or
        # pretraining (acquire checks the folder first); any other folder is checked here
        # and locked when it is claimed (nothing written before)
        store.acquire()
    else:
        store._check_not_foreign()

    client = None
    try:
        if scheduler is not None:
            client = _connect_scheduler(scheduler, log)
        return _run_study(
            store, log, t_start, src_kind, src_path, tgt_kind, tgt_path, channels,
            strategies, subjects, fetch, fetch_url, resolved, explicit, extra, random_state,
            n_jobs, scheduler, torch_threads, plot_recording, plots, stage_texts)
    finally:
        store.release()
        if client is not None:
            client.close()


def _run_study(store, log, t_start, src_kind, src_path, tgt_kind, tgt_path, channels,
               strategies, subjects, fetch, fetch_url, resolved, explicit, extra,
               random_state, n_jobs, scheduler, torch_threads, plot_recording, plots,
               stage_texts=None):
    """The body of :func:`run_study`, once its arguments are checked (and its Dask client,
    when ``scheduler`` is given, connected)."""
    needs_source = any(STRATEGIES[s].pretrained for s in strategies)
    source_label = f"{src_kind}:{os.path.abspath(src_path)}" if src_path else src_kind
    target_label = f"{tgt_kind}:{os.path.abspath(tgt_path)}" if tgt_path else tgt_kind
    # 2. the data: target, then the source's files, checked against each other
    log(f"loading the target ({target_label})")
    blocks = _load_target(tgt_kind, tgt_path, channels, subjects, fetch, resolved,
                          random_state, verbose=log.verbose, fetch_url=fetch_url,
                          stage_texts=stage_texts)
    if plot_recording is not None and plot_recording not in set(blocks[0][1].recordings):
        raise StudyInputError(
            f"--plot-recording {plot_recording!r} is not a recording of the target; it has "
            f"{', '.join(sorted(set(blocks[0][1].recordings.tolist())))}")
    first = blocks[0][1]
    source_model = source_sha256 = None
    if src_kind in ("checkpoint", "model"):
        source_model, source_sha256 = _external_source(src_kind, src_path)
        what = f"the source {src_kind} {src_path}"
        resolved, extra = _arch_from_source(source_model["config"], resolved, explicit,
                                            extra, source=what)
        cfg = source_model["config"]
        log(f"source model: {src_kind} {src_path} (cell={cfg.get('cell')}, "
            f"n_channels={cfg.get('n_channels')}, n_filters={cfg.get('n_filters')}, "
            f"rnn_hidden={cfg.get('rnn_hidden')}, attention_size="
            f"{cfg.get('attention_size')}, seq_len={resolved.get('seq_len')}); every "
            "strategy uses its architecture")
        _check_network(resolved, extra, first.fs, first.X,
                       source_model if needs_source else None, source=what)
    else:
        _check_network(resolved, extra, first.fs, first.X)

    # 3. the folds, and a training split of every fold that trains (the classifier's own
    # split, on the loaded data): a fit that would fail for want of subjects or training
    # windows is refused before the folder is claimed
    from skseqsleep.classifier import _normalise_parts

    first_groups = first.groups
    n_subjects = len(np.unique(first_groups))
    n_valid = _n_valid_subjects(tgt_kind, first_groups, resolved.get("n_valid_subjects"))
    folds = _outer_folds(first_groups, tgt_kind, n_valid)
    # the settings every fold runs with (the fingerprint records ``resolved`` as given)
    fold_settings = {**resolved, "n_valid_subjects": n_valid}
    trained = [s for s in strategies if _normalise_parts(STRATEGIES[s].trainable_parts)]
    if trained:
        hint = ("see --batch-size, --seq-len and --n-valid-subjects"
                + (", and --sim-target-subjects, --sim-epochs" if tgt_kind == "simulated"
                   else ""))
        for fold, test_subject, valid in folds:
            task = {"strategy": trained[0], "valid_subjects": valid,
                    "seed": fold_seed(random_state, fold)}
            train = ~np.isin(first_groups, [test_subject])
            _check_training_windows(
                _fold_classifier(task, fold_settings, extra), first.y[train],
                first_groups[train], first.recordings[train],
                f"fold {fold} (test subject {test_subject}) cannot be trained", hint)

    arguments = {
        "source": source_label, "target": target_label,
        "channels": channels, "strategies": strategies, "subjects": subjects,
        "settings": resolved, "classifier_params": extra, "random_state": random_state,
        "store_version": STORE_VERSION,
    }
    if source_sha256 is not None:
        arguments["source_sha256"] = source_sha256
    if stage_texts is not None:
        arguments["stage_texts"] = dict(stage_texts)
    gru_cpu = _gru_cpu_backend(resolved.get("cell"), extra)
    if gru_cpu is not None:
        arguments["gru_cpu"] = gru_cpu
    # the content of the target as loaded: a folder that gained, lost or changed a recording
    # since the study was written is another study (its folds were trained on other data)
    arguments["target_sha256"] = _target_sha256(blocks)
    # 4. a source pretrained here: its recordings, checked as the folds' (a folder that
    # would be refused is refused first, before loading MASS or simulating)
    resumes = store.claim(arguments, dry_run=True)
    source_data = None
    if (needs_source and src_kind in ("simulated", "mass")
            and not (resumes and (store.root / "source_model.pt").is_file())):
        source_data = _source_data(src_kind, src_path, resolved, random_state, log)
        _check_training_windows(
            _pretrain_classifier(resolved, extra, random_state,
                                 len(np.unique(source_data.groups))),
            source_data.y, np.asarray(source_data.groups),
            np.asarray(source_data.recordings).astype(str),
            f"the source model cannot be pretrained on the {_source_what(src_kind, src_path)}",
            "see --batch-size and --seq-len"
            + (", and --sim-source-subjects, --sim-epochs" if src_kind == "simulated" else ""))

    # 5. claim the folder: only now is anything written
    store.acquire()    # (if not held yet) released by run_study when the run ends
    resumed = store.claim(arguments, log=log)
    log(("resuming" if resumed else "starting") + f" the study in {store.root} "
        f"(source {arguments['source']}, target {arguments['target']})")
    resolved = fold_settings
    log(f"target: {len(blocks)} channel(s) {[c for c, _ in blocks]}, {n_subjects} subjects, "
        f"{len(first_groups)} epochs, {len(folds)} folds x {len(strategies)} strategies")

    # tasks: a stored fold result is skipped once it is checked against the loaded target
    # (before any pretraining)
    done: dict[tuple, dict] = {}
    todo: list[tuple[int, dict]] = []
    for b, (ch, data) in enumerate(blocks):
        for strat in strategies:
            for fold, test_subject, valid in folds:
                stored = store.load_fold(ch, strat, fold)
                if stored is not None:
                    _check_stored_fold(stored, store.fold_path(ch, strat, fold), store.root,
                                       fold, test_subject, data)
                    done[(ch, strat, fold)] = stored
                    continue
                todo.append((b, {"channel": ch, "strategy": strat, "fold": fold,
                                 "test_subject": test_subject, "valid_subjects": valid,
                                 "seed": fold_seed(random_state, fold),
                                 "gru_cpu": arguments.get("gru_cpu")}))

    if src_kind not in ("checkpoint", "model") and needs_source:
        source_model = _with_threads(torch_threads or 1, _pretrained_source, src_kind,
                                     src_path, store, resolved, extra, random_state, log,
                                     source_data)
        resolved, extra = _arch_from_source(source_model["config"], resolved, explicit,
                                            extra)
    if not needs_source:
        source_model = None

    n_total = len(done) + len(todo)
    if done:
        log(f"{len(done)} of {n_total} fold results already stored: skipped")
    if todo:
        _execute(todo, blocks, source_model, resolved, extra, n_jobs, scheduler,
                 torch_threads, store, done, n_total, len(folds), log)

    result = _assemble(blocks, strategies, folds, done, arguments, resolved, store,
                       time.perf_counter() - t_start, resumed)
    _write_outputs(result, store, plot_recording, plots, log, blocks)
    if log.verbose:
        log(f"study finished; outputs in {store.root}")
    return result


def _execute(todo, blocks, source_model, settings, extra, n_jobs, scheduler,
             torch_threads, store, done, n_total, n_folds, log):
    from joblib import Parallel, delayed, parallel_config

    threads = torch_threads if torch_threads is not None else 1
    calls = []
    for b, task in todo:
        data = blocks[b][1]
        calls.append(delayed(_run_fold_task)(task, data.X, data.y, data.groups,
                                             data.recordings, data.fs, source_model,
                                             settings, extra, threads))
    log(f"running {len(calls)} fold fits "
        + (f"on the Dask scheduler {scheduler}" if scheduler else f"with n_jobs={n_jobs}"))

    def consume(results):
        for res in results:
            key = (res["channel"], res["strategy"], res["fold"])
            store.save_fold(*key, res)
            done[key] = res
            acc = float(np.mean(np.asarray(res["y_true"]) == np.asarray(res["y_pred"])))
            log(f"[{len(done)}/{n_total}] {res['channel']} | "
                f"{STRATEGIES[res['strategy']].label} | fold {res['fold']}/{n_folds} "
                f"(test subject {res['test_subject']}): acc {100 * acc:.1f}% "
                f"in {res['seconds']:.1f}s")

    if scheduler is not None:   # run_study connected a Dask client to it
        with parallel_config(backend="dask", wait_for_workers_timeout=60):
            consume(Parallel(return_as="generator_unordered")(calls))
    else:
        consume(Parallel(n_jobs=n_jobs, return_as="generator_unordered")(calls))


def _assemble(blocks, strategies, folds, done, arguments, settings, store, seconds, resumed):
    rows, per_fold, confusion, curves, predictions = [], [], {}, {}, {}
    for ch, data in blocks:
        for strat in strategies:
            parts = [done[(ch, strat, f)] for f, _, _ in folds]
            y_true = np.concatenate([np.asarray(p["y_true"]) for p in parts])
            y_pred = np.concatenate([np.asarray(p["y_pred"]) for p in parts])
            recs = np.concatenate([np.asarray(p["recordings"]).astype(str) for p in parts])
            full = sleep_metrics(y_true, y_pred)
            rows.append(TableRow(ch, strat, STRATEGIES[strat].label,
                                 **{k: float(full[k]) for k in METRICS},
                                 n_epochs=int(y_true.size), n_folds=len(parts)))
            confusion[(ch, strat)] = full["confusion_matrix"]
            curves[(ch, strat)] = [list(p.get("history", [])) for p in parts]
            predictions[(ch, strat)] = {"y_true": y_true, "y_pred": y_pred,
                                        "recordings": recs}
            for p in parts:
                fm = pooled_metrics(p["y_true"], p["y_pred"])
                hist = p.get("history", [])
                best = max(hist, key=lambda h: (h["valid_acc"], h["step"])) if hist else None
                per_fold.append({"channel": ch, "strategy": strat, "fold": p["fold"],
                                 "test_subject": p["test_subject"],
                                 "n_epochs": int(np.asarray(p["y_true"]).size), **fm,
                                 "n_validations": len(hist),
                                 "last_step": hist[-1]["step"] if hist else 0,
                                 "best_step": best["step"] if best else 0,
                                 "seconds": round(float(p.get("seconds", 0.0)), 3)})
    provenance = {"arguments": arguments, "settings": settings, "machine": _machine(),
                  "target_description": str(blocks[0][1].description),
                  "simulated": arguments["target"] == "simulated",
                  "seconds_this_run": round(seconds, 1), "resumed": resumed,
                  "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return StudyResult(rows=rows, per_fold=per_fold, confusion=confusion, curves=curves,
                       predictions=predictions, provenance=provenance,
                       output_dir=str(store.root))


def _write_outputs(result: StudyResult, store: ResultStore, plot_recording, plots, log,
                   blocks):
    root = store.root
    md = ["# Transfer-learning study (Phan et al., TBME 2020)", "",
          (f"Source: `{result.provenance['arguments']['source']}`; "
           f"target: `{result.provenance['arguments']['target']}`. "
           "Metrics pooled over all folds (REFERENCE §6)."), "", result.to_markdown()]
    _atomic_write_text(root / "table.md", "\n".join(md) + "\n")
    result.write_csv(root / "table.csv")
    cols = ["channel", "strategy", "fold", "test_subject", "n_epochs", *METRICS,
            "n_validations", "best_step", "last_step", "seconds"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in result.per_fold:
        w.writerow(r)
    _atomic_write_text(root / "per_fold.csv", buf.getvalue())
    for (ch, strat), cm in result.confusion.items():
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["scored\\predicted", *STAGES])
        for i, s in enumerate(STAGES):
            w.writerow([s, *cm[i].tolist()])
        _atomic_write_text(root / "confusion" / f"{_slug(ch)}__{_slug(strat)}.csv",
                           buf.getvalue())
    _atomic_write_text(root / "provenance.json",
                       json.dumps(result.provenance, indent=2, default=_json_default) + "\n")
    if plots:
        _write_plots(result, root, plot_recording, log, dict(blocks))


def _save_fig(fig, path: Path):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _atomic_write_bytes(path, buf.getvalue())


def _recording_onsets(data, rec: str, y_true) -> np.ndarray | None:
    """Onsets (s) of recording ``rec``'s epochs in the loaded target ``data``, or None when the
    target has none or its epochs of ``rec`` are not the plotted ones (``y_true``)."""
    if data is None or getattr(data, "onsets", None) is None:
        return None
    sel = data.recordings == rec
    if not np.array_equal(data.y[sel], y_true):
        return None
    return data.onsets[sel]


def _hypnogram_figure(predictions, ch: str, strats, rec: str, data=None):
    """One hypnogram panel per strategy for recording ``rec`` of channel ``ch``: scored and
    predicted stages at the epochs' times in the recording (``data.onsets`` of the loaded
    target), so that excluded epochs are gaps, not joined neighbours."""
    from matplotlib.figure import Figure

    from skseqsleep.plotting import plot_hypnogram

    fig = Figure(figsize=(10, 1.9 * len(strats)))
    axes = fig.subplots(len(strats), 1, sharex=True, squeeze=False)
    for ax, s in zip(axes[:, 0], strats):
        p = predictions[(ch, s)]
        sel = p["recordings"] == rec
        plot_hypnogram(p["y_true"][sel], p["y_pred"][sel], ax=ax,
                       onsets=_recording_onsets(data, rec, p["y_true"][sel]),
                       labels=("scored", STRATEGIES[s].label),
                       title=f"recording {rec}, target channel {ch}"
                       if ax is axes[0, 0] else None)
        if ax is not axes[-1, 0]:
            ax.set_xlabel("")
    fig.tight_layout()
    return fig


def _write_plots(result: StudyResult, root: Path, plot_recording, log, data_by_channel):
    try:  # figures without pyplot: the caller's matplotlib backend is left as it is
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover
        log("matplotlib is not installed: no figures written (pip install skseqsleep[plot])")
        return
    from skseqsleep.plotting import plot_confusion_matrix, plot_finetuning_curves

    for (ch, strat), cm in result.confusion.items():
        fig = Figure(figsize=(4.6, 4))
        ax = fig.subplots()
        plot_confusion_matrix(cm, ax=ax, title=f"{ch}: {STRATEGIES[strat].label}")
        _save_fig(fig, root / "confusion" / f"{_slug(ch)}__{_slug(strat)}.png")
    for ch in result.channels:
        strats = [s for (c, s) in result.predictions if c == ch]
        curves = {STRATEGIES[s].label: result.curves[(ch, s)] for s in strats}
        fig = Figure(figsize=(6.5, 4))
        ax = fig.subplots()
        plot_finetuning_curves(curves, ax=ax, title=f"Finetuning curves: {ch}")
        _save_fig(fig, root / f"finetuning_curves__{_slug(ch)}.png")
        first = result.predictions[(ch, strats[0])]
        rec = plot_recording if plot_recording is not None else str(first["recordings"][0])
        fig = _hypnogram_figure(result.predictions, ch, strats, rec, data_by_channel.get(ch))
        _save_fig(fig, root / f"hypnogram__{_slug(rec)}__{_slug(ch)}.png")
    log(f"figures written to {root}")
