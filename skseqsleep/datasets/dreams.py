"""Reading the DREAMS Sleep Spindles excerpts (30-min single-channel EEG, text files).

Each excerpt ``excerptN.txt`` holds a header line with the derivation (``[C3-A1]`` or
``[CZ-A1]``) then one sample per line in µV; ``Hypnogram_excerptN.txt`` holds a
``[Hypnogram]`` header then 360 R&K stages at **5-s** resolution (5=W, 4=REM, 3=S1, 2=S2,
1=S3, 0=S4, negative = unscored/movement).

Documented rules of this reader:

- **Sampling rate.** The excerpts last 1800 s; the rate is ``n_samples / 1800`` rounded to
  the nearest known DREAMS rate (50, 100, 200 Hz). Extra trailing samples beyond
  ``rate * 1800`` (excerpt 6 has 140) are dropped and reported; a rate more than 1 % away
  from every known rate, or fewer samples than ``rate * 1800``, is an error.
- **Epochs.** A 30-s epoch is 6 consecutive 5-s values. After mapping to the five AASM classes
  (REFERENCE §1: S3 and S4 -> N3), the epoch is kept only if its 6 values agree; epochs with
  mixed stages or with an unscored/movement value are excluded and reported.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._constants import DEFAULT_FS, EPOCH_SECONDS, EXCLUDED
from ._common import (
    as_selection,
    check_epochs_kept,
    check_fs,
    check_not_upsampled,
    count_reasons,
    samples_per_epoch,
    stage_summary,
)
from ._edf import resample
from ._hypnogram import ExclusionReport

__all__ = ["DREAMS_RATES", "load_dreams", "read_dreams_excerpt"]

#: Sampling rates found in the DREAMS Sleep Spindles excerpts (Hz).
DREAMS_RATES = (50.0, 100.0, 200.0)
#: Length of every excerpt (s).
EXCERPT_SECONDS = 1800
#: Resolution of the DREAMS hypnograms (s).
HYPNOGRAM_SECONDS = 5
#: DREAMS 5-s code -> stage label (0..4).
DREAMS_TO_STAGE = {5: 0, 4: 4, 3: 1, 2: 2, 1: 3, 0: 3}

_PER_EPOCH = EPOCH_SECONDS // HYPNOGRAM_SECONDS


def _read_text_column(path: str, what: str) -> tuple[str, np.ndarray]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"DREAMS {what} file not found: {path}")
    with open(path, encoding="latin-1") as fh:
        header = fh.readline().strip()
        body = fh.read().split()
    m = re.fullmatch(r"\[(.+)\]", header)
    if not m:
        raise ValueError(f"{path}: expected a header line like '[C3-A1]' or '[Hypnogram]', "
                         f"found {header[:40]!r}")
    try:
        values = np.array(body, dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"{path}: non-numeric value in the {what} ({exc})") from exc
    if values.size == 0:
        raise ValueError(f"{path}: the {what} has no values")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"{path}: the {what} has {bad.size} non-finite value(s) (NaN/inf), "
                         f"first at value {bad[0] + 1}")
    return m.group(1).strip(), values


def _nominal_rate(n_samples: int, path: str) -> float:
    raw = n_samples / EXCERPT_SECONDS
    rate = min(DREAMS_RATES, key=lambda r: abs(r - raw))
    if abs(raw - rate) > 0.01 * rate:
        raise ValueError(
            f"{path}: {n_samples} samples over {EXCERPT_SECONDS} s is {raw:g} Hz, not one of "
            f"the DREAMS rates {DREAMS_RATES}"
        )
    if n_samples < rate * EXCERPT_SECONDS:
        raise ValueError(
            f"{path}: {n_samples} samples, fewer than {rate:g} Hz x {EXCERPT_SECONDS} s = "
            f"{int(rate * EXCERPT_SECONDS)}: truncated file?"
        )
    return rate


def read_dreams_excerpt(signal_path, hypnogram_path, fs: float = DEFAULT_FS,
                        allow_upsampling: bool = False) -> Bunch:
    """Read one DREAMS excerpt and its 5-s hypnogram, as 30-s epochs.

    Parameters
    ----------
    signal_path : str or path-like
        ``excerptN.txt``.
    hypnogram_path : str or path-like
        ``Hypnogram_excerptN.txt``.
    fs : float, default=100
        Rate of the returned signal (polyphase resampling).
    allow_upsampling : bool, default=False
        An excerpt recorded below ``fs`` (excerpt 3: 50 Hz) is an error unless True.

    Returns
    -------
    excerpt : sklearn.utils.Bunch
        ``signals`` float64 (1, 1800 * fs) in µV; ``fs``; ``original_fs`` (the nominal rate,
        see the module notes); ``ch_names`` ([derivation from the header line]);
        ``stages`` int64 (60,) per 30-s epoch (``EXCLUDED`` for mixed/unscored epochs);
        ``reasons`` array of str (60,), "" for kept epochs; ``hypnogram_5s`` int64 (360,);
        ``n_extra_samples`` (trailing samples dropped); ``notes``; ``path``.

    Examples
    --------
    >>> from skseqsleep.datasets import read_dreams_excerpt
    >>> ex = read_dreams_excerpt("excerpt1.txt", "Hypnogram_excerpt1.txt")  # doctest: +SKIP
    >>> ex.signals.shape, ex.original_fs  # doctest: +SKIP
    ((1, 180000), 100.0)
    """
    signal_path, hypnogram_path = os.fspath(signal_path), os.fspath(hypnogram_path)
    fs = check_fs(fs)
    derivation, x = _read_text_column(signal_path, "signal")
    return _excerpt_from_signal(derivation, x, signal_path, hypnogram_path, fs,
                                allow_upsampling)


def _excerpt_from_signal(derivation, x, signal_path, hypnogram_path, fs, allow_upsampling):
    """The rest of :func:`read_dreams_excerpt` once the signal file has been read."""
    rate = _nominal_rate(len(x), signal_path)
    check_not_upsampled(signal_path, rate, fs, allow_upsampling)
    n_keep = int(rate * EXCERPT_SECONDS)
    notes = []
    n_extra = len(x) - n_keep
    if n_extra:
        notes.append(f"{n_extra} trailing samples beyond {EXCERPT_SECONDS} s at {rate:g} Hz "
                     "dropped")
    x = resample(x[:n_keep], rate, fs)
    n_out = round(fs * EXCERPT_SECONDS)
    x = x[:n_out]

    title, hyp = _read_text_column(hypnogram_path, "hypnogram")
    if title.lower() != "hypnogram":
        raise ValueError(f"{hypnogram_path}: expected the header '[Hypnogram]', found "
                         f"'[{title}]'")
    n_hyp = EXCERPT_SECONDS // HYPNOGRAM_SECONDS
    if len(hyp) != n_hyp:
        raise ValueError(f"{hypnogram_path}: expected {n_hyp} 5-s values (1800 s), found "
                         f"{len(hyp)}")
    if np.any(hyp != np.round(hyp)):
        raise ValueError(f"{hypnogram_path}: hypnogram values must be integers")
    hyp = hyp.astype(np.int64)
    unknown = sorted(set(hyp[hyp >= 0].tolist()) - set(DREAMS_TO_STAGE))
    if unknown:
        raise ValueError(f"{hypnogram_path}: unknown stage code(s) {unknown}; expected 5=W, "
                         "4=REM, 3=S1, 2=S2, 1=S3, 0=S4, negative=unscored/movement")
    mapped = np.array([DREAMS_TO_STAGE.get(v, EXCLUDED) for v in hyp], dtype=np.int64)
    groups = mapped.reshape(-1, _PER_EPOCH)
    stages = groups[:, 0].copy()
    reasons = np.full(len(stages), "", dtype=object)
    unscored = (groups == EXCLUDED).any(axis=1)
    mixed = ~unscored & (groups != groups[:, :1]).any(axis=1)
    stages[unscored | mixed] = EXCLUDED
    reasons[unscored] = "unscored/movement 5-s value"
    reasons[mixed] = "mixed stages within the 30-s epoch"
    return Bunch(signals=x[None, :], fs=fs, original_fs=rate, ch_names=[derivation],
                 stages=stages, reasons=reasons.astype(str), hypnogram_5s=hyp,
                 n_extra_samples=n_extra, notes=notes, path=signal_path)


def load_dreams(folder, excerpts=None, fs: float = DEFAULT_FS, *,
                allow_upsampling: bool = False) -> Bunch:
    """Load DREAMS Sleep Spindles excerpts as labelled 30-s epochs.

    Parameters
    ----------
    folder : str or path-like
        Folder with ``excerptN.txt`` and ``Hypnogram_excerptN.txt``.
    excerpts : iterable of int, optional
        Excerpt numbers. Default: every excerpt in the folder recorded at ``fs`` or above;
        the others (excerpt 3 at 50 Hz when ``fs=100``) are skipped and listed in
        ``report.skipped`` (unless ``allow_upsampling``). Naming an excerpt below ``fs``
        explicitly is an error unless ``allow_upsampling=True``.
    fs : float, default=100
    allow_upsampling : bool, default=False

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` float32 (n_epochs, 30 * fs) in µV, ``y``, ``groups`` and ``recordings`` (both
        ``"excerptN"``, one subject per excerpt), ``onsets`` (float64, start of each epoch in
        seconds from the start of its excerpt; gaps where mixed or unscored epochs were
        left out), ``fs``, ``ch_names`` (the derivation of the
        header lines; when the selected excerpts differ, e.g. C3-A1 and CZ-A1, their names
        joined by "/"), ``derivations`` (recording -> derivation), ``report`` (mixed/unscored
        epochs per excerpt, skipped excerpts, dropped samples) and ``description``.

    Raises
    ------
    TypeError
        ``excerpts`` given as a string or a bool instead of integers.
    ValueError
        An excerpt number that is not a whole number; no excerpt loaded, or no epoch kept at
        all (every epoch mixed or unscored; the
        message names each excerpt and its exclusions).

    Warns
    -----
    UserWarning
        For each excerpt that kept 0 epochs while others kept some.

    Examples
    --------
    >>> from skseqsleep.datasets import load_dreams
    >>> data = load_dreams("DREAMS/")  # doctest: +SKIP
    >>> print(data.report)  # doctest: +SKIP
    """
    root = Path(os.fspath(folder)).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"DREAMS folder not found: {root}")
    available = sorted(int(m.group(1)) for p in root.iterdir()
                       if (m := re.fullmatch(r"excerpt(\d+)\.txt", p.name)))
    explicit = excerpts is not None
    if explicit:
        excerpts = as_selection(excerpts, "excerpts", " excerpt, or None for all")
        missing = [e for e in excerpts if e not in available]
        if missing:
            raise FileNotFoundError(f"DREAMS excerpt(s) {missing} not found in {root}; "
                                    f"found {available}")
    else:
        excerpts = available
        if not excerpts:
            raise FileNotFoundError(f"no excerptN.txt file in {root}")
    fs = check_fs(fs)
    report = ExclusionReport()
    xs, ys, recs, onsets, derivations = [], [], [], [], {}
    n_per = samples_per_epoch(fs)   # whole samples per 30-s epoch, or a clear error
    for e in excerpts:
        name = f"excerpt{e}"
        sig, hyp = root / f"{name}.txt", root / f"Hypnogram_{name}.txt"
        derivation, x = _read_text_column(str(sig), "signal")     # read once
        if not explicit and not allow_upsampling:
            rate = _nominal_rate(len(x), str(sig))
            if rate < fs:
                report.skipped[name] = (f"recorded at {rate:g} Hz, below fs={fs:g} Hz "
                                        "(pass allow_upsampling=True to include it)")
                continue
        ex = _excerpt_from_signal(derivation, x, str(sig), str(hyp), fs, allow_upsampling)
        keep = ex.stages != EXCLUDED
        epochs = ex.signals[0].reshape(-1, n_per)[: len(ex.stages)]
        xs.append(epochs[keep].astype(np.float32))
        ys.append(ex.stages[keep])
        recs.append(np.full(int(keep.sum()), name, dtype=object))
        onsets.append(np.flatnonzero(keep) * float(EPOCH_SECONDS))
        derivations[name] = ex.ch_names[0]
        report.add(name, kept=int(keep.sum()), excluded=count_reasons(ex.reasons[~keep]),
                   notes=ex.notes + [f"recorded at {ex.original_fs:g} Hz"])
    if not xs:
        raise ValueError(f"no DREAMS excerpt loaded from {root}: {report.skipped}")
    check_epochs_kept(report, f"DREAMS excerpts {list(excerpts)} of {root}")
    recordings = np.concatenate(recs).astype(str)
    y = np.concatenate(ys).astype(np.int64)
    names = sorted(set(derivations.values()))
    description = (
        f"DREAMS Sleep Spindles: {len(report)} excerpts ({', '.join(report)}), {len(y)} 30-s "
        f"epochs at {fs:g} Hz, derivations {derivations}; " + stage_summary(y, report)
        + (f"; skipped {report.skipped}" if report.skipped else "")
        + ". Licence CC BY-NC-ND 3.0 (University of Mons)."
    )
    return Bunch(X=np.concatenate(xs), y=y, groups=recordings.copy(), recordings=recordings,
                 onsets=np.concatenate(onsets), fs=fs, ch_names=["/".join(names)], derivations=derivations,
                 report=report, description=description)
