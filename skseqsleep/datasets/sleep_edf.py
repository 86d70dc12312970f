"""Loading Sleep-EDF Expanded (sleep-cassette SC and sleep-telemetry ST) into 30-s epochs.

REFERENCE §1: 30-s epochs at 100 Hz, R&K -> AASM labels (S3 and S4 -> N3), movement and
unscored epochs excluded and reported, in-bed part only (shipped table; alternatives
``in_bed="wake-margin"`` and ``in_bed=None``).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._constants import DEFAULT_FS, EXCLUDED
from ._common import (
    as_integers,
    as_selection,
    check_epochs_kept,
    check_fs,
    check_selection,
    count_reasons,
    coverage_notes,
    cut_epochs,
    samples_per_epoch,
    stage_summary,
)
from ._edf import read_psg
from ._hypnogram import ExclusionReport, check_stage_texts, read_hypnogram
from ._inbed import trim_in_bed

#: The channel loaded when neither ``channels`` nor ``channel`` is given (REFERENCE §1).
DEFAULT_CHANNEL = "EEG Fpz-Cz"

__all__ = ["KNOWN_MISSING_NIGHTS", "find_sleep_edf_files", "load_sleep_edf"]

#: Nights absent from Sleep-EDF Expanded for subjects that have only one night
#: (sleep-cassette): subject -> missing night. Asking for them skips them with a report entry.
KNOWN_MISSING_NIGHTS = {"SC": {13: 2, 36: 1, 52: 1}}

_PREFIX = {"SC": "SC4", "ST": "ST7"}
_PSG_RE = re.compile(r"^(SC4|ST7)(\d\d)(\d)[A-Za-z0-9]{2}-PSG\.edf$")
_HYP_RE = re.compile(r"^(SC4|ST7)(\d\d)(\d)[A-Za-z0-9]{2}-Hypnogram\.edf$")


@lru_cache(maxsize=1)
def _st_nights() -> dict[int, dict[str, int]]:
    text = resources.files("skseqsleep.datasets").joinpath("data/sleep_edf_st_nights.csv")
    with text.open("r", encoding="ascii") as fh:
        return {int(r["subject"]): {"placebo": int(r["placebo_night"]),
                                    "temazepam": int(r["temazepam_night"])}
                for r in csv.DictReader(fh)}


def find_sleep_edf_files(path) -> dict[tuple[str, int, int], dict[str, Path]]:
    """Index the Sleep-EDF files under a folder (any depth).

    Works on the PhysioNet layout (``sleep-cassette/``, ``sleep-telemetry/``) and on a flat
    folder. PSG files are ``SC4ssNE0-PSG.edf`` / ``ST7ssNJ0-PSG.edf``; hypnograms
    ``SC4ssN?-Hypnogram.edf`` where the last letter varies (matched by the ``SC4ssN`` prefix).

    Returns
    -------
    files : dict
        ``(study, subject, night) -> {"psg": Path, "hypnogram": Path}`` (either may be missing).

    Examples
    --------
    >>> from skseqsleep.datasets.sleep_edf import find_sleep_edf_files
    >>> find_sleep_edf_files("~/data/sleep-edfx")[("SC", 0, 1)]  # doctest: +SKIP
    {'psg': PosixPath('.../sleep-cassette/SC4001E0-PSG.edf'), 'hypnogram': ...}
    """
    root = Path(os.fspath(path)).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"Sleep-EDF folder not found: {root}")
    found: dict[tuple[str, int, int], dict[str, Path]] = {}
    seen: set[str] = set()
    # followlinks: data kept on another disk is often linked in (root/sleep-cassette ->
    # /disk2/...); a folder reached twice (a link loop, or two links to it) is walked once
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        for name in sorted(filenames):
            for kind, regex in (("psg", _PSG_RE), ("hypnogram", _HYP_RE)):
                m = regex.match(name)
                if not m:
                    continue
                study = "SC" if m.group(1) == "SC4" else "ST"
                key = (study, int(m.group(2)), int(m.group(3)))
                entry = found.setdefault(key, {})
                if kind in entry:
                    raise ValueError(
                        f"two {kind} files for {m.group(1)}{m.group(2)}{m.group(3)} under "
                        f"{root}: {entry[kind]} and {Path(dirpath) / name}; keep one"
                    )
                entry[kind] = Path(dirpath) / name
    return found


def _nights_for(study: str, subject: int, nights: str | list[int]) -> list[int]:
    if isinstance(nights, str):
        if study != "ST":
            raise ValueError(
                f"nights={nights!r} is only meaningful for the ST study (placebo / temazepam "
                "nights); for SC give night numbers, e.g. nights=(1, 2)"
            )
        if nights not in ("placebo", "temazepam"):
            raise ValueError(f"nights must be 1, 2, (1, 2), 'placebo' or 'temazepam', "
                             f"got {nights!r}")
        table = _st_nights()
        if subject not in table:
            raise ValueError(f"ST subject {subject} is not in Sleep-EDF's ST-subjects table "
                             f"(subjects {sorted(table)})")
        return [table[subject][nights]]
    return nights   # night numbers: checked once by _check_night_numbers


def _check_night_numbers(nights: list[int]) -> None:
    bad = [n for n in nights if n not in (1, 2)]
    if bad or not nights:
        raise ValueError(f"nights must be 1 and/or 2 (or 'placebo'/'temazepam' for ST), got "
                         f"{nights}")
    check_selection(nights, "nights")


def recording_epochs(psg_path, hypnogram_path, channels, *, fs: float = DEFAULT_FS,
                     in_bed=None, recording: str | None = None,
                     wake_margin_minutes: float = 30.0,
                     allow_upsampling: bool = False, stage_texts=None) -> Bunch:
    """The labelled 30-s epochs of one recording: a PSG file and its EDF+ or text hypnogram.

    The body of :func:`load_sleep_edf` and :func:`load_edf_recordings` for one night: the
    channels are read (:func:`~skseqsleep.datasets.read_psg`), the hypnogram is placed on the
    PSG's clock (:func:`~skseqsleep.datasets.read_hypnogram`, start times with their
    fraction of a second), trimmed (:func:`~skseqsleep.datasets.trim_in_bed`), and every
    kept scored epoch is cut at its onset. Returns a Bunch with ``X`` (n_epochs, n_channels,
    n_samples) float32, ``y``, ``onsets`` (s from the PSG's first sample), ``ch_names``,
    ``excluded`` and ``trimmed`` (reason -> epochs) and ``notes``.
    """
    psg = read_psg(psg_path, channels, fs=fs, allow_upsampling=allow_upsampling)
    hyp = read_hypnogram(hypnogram_path, stage_texts=stage_texts)
    sel = trim_in_bed(hyp, in_bed, recording=recording, psg_start=psg.start_time,
                      psg_duration=psg.duration, wake_margin_minutes=wake_margin_minutes)
    keep = sel.keep & (hyp.stages != EXCLUDED)
    excluded = count_reasons(hyp.texts[sel.keep & (hyp.stages == EXCLUDED)])
    fs = float(psg.fs)
    epoch_len = samples_per_epoch(fs)
    starts = np.round((sel.offset + hyp.onsets[keep]) * fs).astype(np.int64)
    if len(starts) and starts[-1] + epoch_len > psg.signals.shape[1]:  # pragma: no cover
        raise ValueError(f"epoch beyond the end of {psg_path}")
    return Bunch(X=cut_epochs(psg.signals, starts, epoch_len), y=hyp.stages[keep],
                 onsets=starts / fs, ch_names=list(psg.ch_names), excluded=excluded,
                 trimmed=sel.dropped,
                 notes=psg.notes + coverage_notes(hyp, sel.offset, psg.duration,
                                                  hyp.onsets[keep]))


class _Recordings:
    """The epochs of the recordings read so far, with their report (for the two loaders)."""

    def __init__(self, verbose: int = 0) -> None:
        self.parts: list[tuple[str, object, Bunch]] = []
        self.report = ExclusionReport()
        self.verbose = verbose

    def add(self, recording: str, subject, rec: Bunch) -> None:
        self.parts.append((recording, subject, rec))
        self.report.add(recording, kept=len(rec.y), excluded=rec.excluded,
                        trimmed=rec.trimmed, notes=rec.notes)
        if self.verbose:
            print(f"{recording}: {len(rec.y)} epochs kept, excluded {rec.excluded}, "
                  f"trimmed {rec.trimmed}")

    def arrays(self, group_dtype) -> Bunch:
        """``X`` (2-D for one channel), ``y``, ``groups``, ``recordings``, ``onsets``,
        ``ch_names`` (of the first recording)."""
        X = np.concatenate([r.X for _, _, r in self.parts])
        return Bunch(
            X=X[:, 0] if X.shape[1] == 1 else X,
            y=np.concatenate([r.y for _, _, r in self.parts]).astype(np.int64),
            groups=np.concatenate([np.full(len(r.y), g, dtype=object)
                                   for _, g, r in self.parts]).astype(group_dtype),
            recordings=np.concatenate([np.full(len(r.y), n, dtype=object)
                                       for n, _, r in self.parts]).astype(str),
            onsets=np.concatenate([r.onsets for _, _, r in self.parts]).astype(np.float64),
            ch_names=self.parts[0][2].ch_names)


def load_sleep_edf(
    path,
    subjects,
    nights=(1, 2),
    channels=None,
    in_bed="table",
    fs: float = DEFAULT_FS,
    study: str = "SC",
    *,
    channel: str | None = None,
    wake_margin_minutes: float = 30.0,
    allow_upsampling: bool = False,
    verbose: int = 0,
) -> Bunch:
    """Load Sleep-EDF Expanded recordings as labelled 30-s epochs.

    Parameters
    ----------
    path : str or path-like
        Folder holding the files: the PhysioNet layout (``sleep-cassette/``,
        ``sleep-telemetry/``) or a flat folder; searched at any depth.
    subjects : int or iterable of int
        Subject numbers, e.g. ``range(20)`` for Sleep-EDF-SC-20 (files ``SC40xx``-``SC41xx``).
        For ST, the numbers of ``ST-subjects.xls`` (1-24, without 3 and 23).
    nights : int, iterable of int or {"placebo", "temazepam"}, default=(1, 2)
        Nights per subject. For ST, "placebo"/"temazepam" pick each subject's night from the
        official ST-subjects table (shipped as facts). A missing night is an error, except
        the nights known to be absent from Sleep-EDF (SC subjects 13, 36, 52 have one night,
        :data:`KNOWN_MISSING_NIGHTS`): those are skipped and listed in ``report.skipped``.
    channels : str, list or dict, default=None
        As in :func:`~skseqsleep.datasets.read_psg` (e.g. ``"EOG horizontal"``, or
        ``["EEG Fpz-Cz", "EOG horizontal"]``). ``None``: ``"EEG Fpz-Cz"`` (the EEG channel of
        REFERENCE §1), or ``channel`` when that is given.
    in_bed : {"table", "wake-margin", None}, default="table"
        Which part of each night to keep, see :func:`~skseqsleep.datasets.trim_in_bed`.
        The table covers SC subjects 0-19 and the 22 ST placebo nights; other recordings need
        ``"wake-margin"`` or ``None`` (explicit choice, the error says so).
    fs : float, default=100
        Sampling rate of ``X`` (polyphase resampling when the file differs).
    study : {"SC", "ST"}, default="SC"
        Sleep-cassette or sleep-telemetry.
    channel : str, optional
        Alias of ``channels`` for one channel (``channel="EOG horizontal"``); giving both
        with different values is an error (including ``channels="EEG Fpz-Cz"`` with another
        ``channel``).
    wake_margin_minutes : float, default=30
        Margin of the ``"wake-margin"`` rule.
    allow_upsampling : bool, default=False
        Allow channels recorded below ``fs``.
    verbose : int, default=0
        Print one line per recording when > 0.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X`` float32 ``(n_epochs, n_samples)`` for one channel or ``(n_epochs, n_channels,
        n_samples)`` for several, in µV; ``y`` int64 stages 0..4 (W, N1, N2, N3, REM);
        ``groups`` int subject numbers; ``recordings`` str ids (``"SC4001E0"``); ``onsets``
        float64, start of each epoch in seconds from the start of its PSG file (gaps where
        epochs were excluded; see :func:`~skseqsleep.plotting.plot_hypnogram`); ``fs``;
        ``ch_names``; ``report`` (:class:`ExclusionReport`: kept, excluded and trimmed epochs
        per recording and reason, skipped nights; notes on gaps between annotations among
        the kept epochs, whose neighbours are adjacent in ``X``, and on signal of at least
        one epoch before or after the hypnogram); ``description``.

    Raises
    ------
    FileNotFoundError
        Missing folder, PSG or hypnogram (the message says what was found).
    ValueError
        Empty selection of subjects; no epoch kept at all (the message names each recording
        and why its epochs were excluded or trimmed); hypnogram longer than the PSG or shorter
        than its in-bed part; recording not in the in-bed table with ``in_bed="table"``; and the
        errors of :func:`read_psg` / :func:`read_hypnogram`; a subject or night number
        that is not a whole number.
    TypeError
        ``subjects`` or ``nights`` (other than "placebo"/"temazepam") given as a string or
        a bool instead of integers.

    Examples
    --------
    >>> from skseqsleep.datasets import load_sleep_edf
    >>> data = load_sleep_edf("~/data/sleep-edfx", subjects=range(20))  # doctest: +SKIP
    >>> data.X.shape, data.fs  # doctest: +SKIP
    ((38150, 3000), 100.0)
    >>> print(data.report)  # doctest: +SKIP
    """
    if study not in _PREFIX:
        raise ValueError(f"study must be 'SC' or 'ST', got {study!r}")
    if channel is not None:
        if channels is not None and channels != channel:
            raise ValueError(f"give channel={channel!r} or channels={channels!r}, not both")
        channels = channel
    elif channels is None:
        channels = DEFAULT_CHANNEL
    subjects = as_selection(subjects, "subjects", " subject, e.g. range(20)")
    if not isinstance(nights, str):     # once, not per subject (a generator is used up), and
        nights = as_integers(nights, "nights")          # before the folder is walked
        _check_night_numbers(nights)
    fs = check_fs(fs)
    samples_per_epoch(fs)       # whole samples per 30-s epoch, or a clear error, before the walk
    files = find_sleep_edf_files(path)
    prefix = _PREFIX[study]
    loaded = _Recordings(verbose)
    report = loaded.report
    for subject in subjects:
        for night in _nights_for(study, subject, nights):
            key = (study, subject, night)
            name = f"{prefix}{subject:02d}{night}"
            entry = files.get(key, {})
            if "psg" not in entry and "hypnogram" not in entry:
                if KNOWN_MISSING_NIGHTS.get(study, {}).get(subject) == night:
                    report.skipped[name] = (f"night {night} of subject {subject} does not "
                                            "exist in Sleep-EDF Expanded")
                    continue
                have = sorted(f"{_PREFIX[s]}{sub:02d}{n}" for s, sub, n in files
                              if s == study and sub == subject)
                raise FileNotFoundError(
                    f"no files for {name} (subject {subject}, night {night}) under {path}; "
                    f"found for this subject: {have or 'nothing'}"
                )
            for kind, pattern in (("psg", "-PSG.edf"), ("hypnogram", "*-Hypnogram.edf")):
                if kind not in entry:
                    raise FileNotFoundError(
                        f"the {kind} file of {name} ({name}??{pattern}) is missing under "
                        f"{path}; found {[str(p) for p in entry.values()]}"
                    )
            recording = entry["psg"].name[: -len("-PSG.edf")]
            rec = recording_epochs(entry["psg"], entry["hypnogram"], channels, fs=fs,
                                   in_bed=in_bed, recording=recording,
                                   wake_margin_minutes=wake_margin_minutes,
                                   allow_upsampling=allow_upsampling)
            loaded.add(recording, subject, rec)
    if not loaded.parts:
        raise ValueError(f"no recording loaded for subjects {subjects} and nights {nights}: "
                         f"{dict(report.skipped)}")
    check_epochs_kept(report, f"Sleep-EDF {study} subjects {subjects}, nights {nights}, "
                              f"in_bed={in_bed!r}")
    data = loaded.arrays(np.int64)
    description = (
        f"Sleep-EDF Expanded {study}: {len(report)} recordings of "
        f"{len(set(data.groups.tolist()))} "
        f"subject(s), {len(data.y)} 30-s epochs at {fs:g} Hz, channels {data.ch_names}; "
        f"in_bed={in_bed!r}; " + stage_summary(data.y, report)
        + (f"; skipped {sorted(report.skipped)}" if report.skipped else "")
    )
    return Bunch(**data, fs=fs, report=report, description=description)


def _file_pair(pair, what: str) -> tuple[Path, Path]:
    """``(psg, hypnogram)`` as expanded paths, or a ValueError that starts with ``what``."""
    if isinstance(pair, (str, bytes, os.PathLike)) or len(pair) != 2:
        raise ValueError(f"{what} a (psg, hypnogram) pair of paths; got {pair!r}")
    return tuple(Path(os.fspath(p)).expanduser() for p in pair)


def load_edf_recordings(recordings, channels, *, subjects=None, in_bed=None,
                        fs: float = DEFAULT_FS, wake_margin_minutes: float = 30.0,
                        allow_upsampling: bool = False, stage_texts=None,
                        verbose: int = 0) -> Bunch:
    """Load your own recordings (a PSG EDF/EDF+ file and an EDF+ or text hypnogram each) as
    labelled 30-s epochs, in the Bunch every loader returns.

    For a cohort that is not Sleep-EDF, DREAMS or MASS: each recording is read as
    :func:`load_sleep_edf` reads a Sleep-EDF night (:func:`~skseqsleep.datasets.read_psg`
    for the channels, :func:`~skseqsleep.datasets.read_hypnogram` for the stages, placed by
    the two files' start times; movement and unscored epochs excluded and counted), without
    Sleep-EDF's file naming and in-bed table.

    Parameters
    ----------
    recordings : mapping or sequence
        ``{recording id: (psg path, hypnogram path)}``, or a sequence of ``(psg path,
        hypnogram path)`` pairs, whose recording ids are then the PSG file names without
        ``.edf`` (they must differ). The hypnogram is an EDF+ file of stage annotations:
        by default as Sleep-EDF's and MASS's (``"Sleep stage W"``, ``"Sleep stage 1"`` ...
        ``"Sleep stage 4"``, ``"Sleep stage R"``, ``"Sleep stage ?"``, ``"Movement time"``;
        R&K S3 and S4 are N3), their AASM counterparts (``"Sleep stage N1"``, ``"Sleep stage
        N2"``, ``"Sleep stage N3"``) or the bare AASM labels; any other vocabulary through
        ``stage_texts``. A hypnogram file ending in
        ``.txt``, ``.csv`` or ``.tsv`` is a text hypnogram instead: one stage label per line
        (``W``, ``N1``, ``N2``, ``N3``, ``R``/``REM``, ``?``), one line per 30-s epoch from
        the PSG's first sample (:func:`~skseqsleep.datasets.read_hypnogram`).
    channels : str, list or dict
        As in :func:`~skseqsleep.datasets.read_psg`: the same channel(s) are read from every
        recording, e.g. ``"EEG Fpz-Cz"`` or ``{"C4-A1": ("EEG C4", "EEG A1")}``.
    subjects : mapping, optional
        ``{recording id: subject}``, for recordings that share a subject (several nights);
        every recording must be named. Default: each recording is its own subject.
    in_bed : {None, "wake-margin"}, default=None
        Every scored epoch (``None``), or from ``wake_margin_minutes`` before the first to
        after the last sleep epoch (see :func:`~skseqsleep.datasets.trim_in_bed`).
    fs, wake_margin_minutes, allow_upsampling, verbose
        As in :func:`load_sleep_edf`.
    stage_texts : mapping or None, default=None
        ``{annotation text: stage}`` of your hypnograms' vocabulary, e.g. ``{"W": "W", "N1":
        "N1", "N2": "N2", "N3": "N3", "R": "REM", "?": None}`` (``None``: no usable stage,
        excluded and counted); see :func:`~skseqsleep.datasets.read_hypnogram`.

    Returns
    -------
    data : sklearn.utils.Bunch
        As :func:`load_sleep_edf`'s: ``X`` float32 (µV), ``y`` int64 stages 0..4, ``groups``
        (the subjects),
        ``recordings`` (str ids), ``onsets`` (s from the start of each PSG file), ``fs``,
        ``ch_names``, ``report`` (kept, excluded and trimmed epochs per recording) and
        ``description``.

    Raises
    ------
    FileNotFoundError
        A PSG or hypnogram file that does not exist.
    ValueError
        An empty or malformed ``recordings``, repeated recording ids, ``subjects`` missing a
        recording or naming an unknown one, ``in_bed="table"`` (Sleep-EDF's own table), no
        epoch kept at all, and the errors of :func:`read_psg` / :func:`read_hypnogram` (a
        missing channel, a hypnogram longer than its PSG, ...), each naming the file.

    Examples
    --------
    >>> from skseqsleep.datasets import load_edf_recordings
    >>> data = load_edf_recordings({"p01-n1": ("p01_night1.edf", "p01_night1_hyp.edf"),
    ...                             "p01-n2": ("p01_night2.edf", "p01_night2_hyp.edf")},
    ...                            "EEG Fpz-Cz",
    ...                            subjects={"p01-n1": "p01", "p01-n2": "p01"})  # doctest: +SKIP
    """
    if isinstance(recordings, Mapping):
        items = [(str(rec_id), _file_pair(pair, f"recording {rec_id!r}: expected"))
                 for rec_id, pair in recordings.items()]
    elif isinstance(recordings, (str, bytes, os.PathLike)) or not isinstance(
            recordings, Iterable):
        raise TypeError("recordings must be a mapping {recording id: (psg, hypnogram)} or a "
                        f"sequence of (psg, hypnogram) pairs; got {type(recordings).__name__}")
    else:
        items = []
        for pair in recordings:
            psg, hyp = _file_pair(pair, "each recording must be")
            items.append((psg.name[:-4] if psg.name.lower().endswith(".edf") else psg.name,
                          (psg, hyp)))
    if not items:
        raise ValueError("recordings is empty: give at least one (psg, hypnogram) pair")
    ids = [rec_id for rec_id, _ in items]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"recording ids must differ; {repeated} name several recordings "
                         "(give a mapping {recording id: (psg, hypnogram)})")
    if in_bed not in (None, "wake-margin"):
        raise ValueError(f"in_bed must be None or 'wake-margin' for your own recordings (the "
                         f"'table' of lights-off times is Sleep-EDF's); got {in_bed!r}")
    if subjects is None:
        subject_of = {i: i for i in ids}
    else:
        if not isinstance(subjects, Mapping):
            raise TypeError(f"subjects must be a mapping {{recording id: subject}}; got "
                            f"{type(subjects).__name__}")
        subject_of = {str(k): v for k, v in subjects.items()}
        missing = [i for i in ids if i not in subject_of]
        unknown = sorted(set(subject_of) - set(ids))
        if missing or unknown:
            raise ValueError(f"subjects must name the subject of every recording and nothing "
                             f"else; missing {missing}, unknown {unknown}")
    fs = check_fs(fs)
    stage_texts = check_stage_texts(stage_texts)   # a bad vocabulary before any file is read
    all_str = all(isinstance(v, str) for v in subject_of.values())
    if not (all_str or all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                           for v in subject_of.values())):
        kinds = sorted({type(v).__name__ for v in subject_of.values()})
        raise ValueError(f"subjects must be all str or all int (one kind of id, or two "
                         f"subjects could compare equal); found {kinds}")
    for rec_id, files in items:          # every file, before any is read
        for kind, p in zip(("PSG", "hypnogram"), files):
            if not p.is_file():
                raise FileNotFoundError(f"recording {rec_id!r}: the {kind} file {p} does not "
                                        "exist")
    loaded = _Recordings(verbose)
    for rec_id, (psg_path, hyp_path) in items:
        loaded.add(rec_id, subject_of[rec_id], recording_epochs(
            psg_path, hyp_path, channels, fs=fs, in_bed=in_bed, recording=rec_id,
            wake_margin_minutes=wake_margin_minutes, allow_upsampling=allow_upsampling,
            stage_texts=stage_texts))
    check_epochs_kept(loaded.report, f"recordings {ids}, in_bed={in_bed!r}")
    data = loaded.arrays(str if all_str else np.int64)
    description = (f"{len(loaded.report)} EDF recording(s) of "
                   f"{len(set(data.groups.tolist()))} subject(s), {len(data.y)} 30-s epochs "
                   f"at {fs:g} Hz, channels {data.ch_names}; in_bed={in_bed!r}; "
                   + stage_summary(data.y, loaded.report))
    return Bunch(**data, fs=fs, report=loaded.report, description=description)
