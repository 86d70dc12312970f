"""Loading the Montreal Archive of Sleep Studies (MASS), the source domain (REFERENCE §1).

MASS is distributed on request (http://ceams-carsm.ca/mass); it cannot be downloaded by a
script. Its folder holds one sub-folder per subset, ``SS1`` ... ``SS5``, and per recording two
EDF files: ``SS{n}/01-0{n}-00{ss} PSG.edf`` (signals) and ``SS{n}/01-0{n}-00{ss} Base.edf``
(EDF+ annotations "Sleep stage W/1/2/3/4/R/?").

The preparation follows the reference (REFERENCE §1):

- EEG C4-A1: ``"EEG C4-CLE"`` (or ``"EEG C4-LER"``) minus ``"EEG A1-CLE"`` when the file has
  A1/A2 electrodes, falling back to C3-A2 = ``"EEG C3-CLE"`` minus ``"EEG A2-CLE"``; files
  referenced to linked ears without A1/A2 use ``"EEG C4-LER"`` (fallback ``"EEG C3-LER"``) as
  it is. Horizontal EOG = ``"EOG Right Horiz"`` minus ``"EOG Left Horiz"``. Labels are matched
  ignoring case, spaces and hyphens (:func:`skseqsleep.datasets._edf.match_label`).
- A channel recorded below the output rate (100 Hz) is an error.
- Band-pass 0.3-40 Hz, FIR of order 100 (101 taps, ``scipy.signal.firwin``) applied forward
  and backward (``scipy.signal.filtfilt``, zero phase) at the file's rate, then polyphase
  resampling to 100 Hz (``scipy.signal.resample_poly``). Note that 101 taps at 256 Hz cannot
  realise a 0.3-Hz edge: the transition band is several Hz wide, so the forward-backward gain
  is about 0.76 at 0 Hz, 0.86 at 2 Hz and 1.00 from 5 to 35 Hz, 0.25 at 40 Hz and below 0.02
  above 42 Hz. This is the reference's filter, kept as it is.
- Hypnogram onsets are relative to the start of the ``Base.edf`` header; when it differs from
  the PSG's start, epochs are placed by clock time.
- SS1 and SS3 are scored (AASM) in 30-s epochs; SS2, SS4 and SS5 (R&K) in 20-s epochs, each
  widened to a 30-s window from 5 s before to 5 s after it. An epoch whose window does not lie
  entirely inside the recording (the first/last one of a widened hypnogram, or an annotation
  overlapping an end of the signals) is dropped and reported, as are unscored ('?') and
  movement epochs. A scored epoch wholly outside the signals is an error: the hypnogram does
  not belong to the PSG (as Sleep-EDF's "hypnogram longer than its recording").
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from scipy.signal import filtfilt, firwin
from sklearn.utils import Bunch

from .._constants import DEFAULT_FS, EPOCH_SECONDS, EXCLUDED
from ._common import (
    check_epochs_kept,
    check_fs,
    check_selection,
    count_reasons,
    coverage_notes,
    cut_epochs,
    samples_per_epoch,
    stage_summary,
)
from ._edf import (
    derive,
    edf_start_time,
    match_label,
    open_edf,
    read_channel,
    resample,
    signal_index,
)
from ._hypnogram import _TOLERANCE_S, ExclusionReport, read_hypnogram

__all__ = ["BANDPASS_HZ", "FIR_ORDER", "SUBSET_EPOCH_SECONDS", "load_mass"]

#: Scoring epoch length (s) of each MASS subset (REFERENCE §1).
SUBSET_EPOCH_SECONDS = {"SS1": 30.0, "SS2": 20.0, "SS3": 30.0, "SS4": 20.0, "SS5": 20.0}
#: Pass band of the FIR filter applied before resampling (Hz).
BANDPASS_HZ = (0.3, 40.0)
#: Order of that FIR filter (number of taps minus one).
FIR_ORDER = 100

# channel name -> list of (kind, (plus, minus) or (label,), derivation name), tried in order;
# the first whose labels are all in the file wins (REFERENCE §1). kind "ears": only for files
# with an "EEG A1-CLE" or "EEG A2-CLE" electrode; "linked": only for files without; "any".
_A1, _A2 = "EEG A1-CLE", "EEG A2-CLE"
_RULES = {
    "C4-A1": [
        ("ears", ("EEG C4-CLE", _A1), "C4-A1"),
        ("ears", ("EEG C4-LER", _A1), "C4-A1"),
        ("ears", ("EEG C3-CLE", _A2), "C3-A2"),
        ("linked", ("EEG C4-LER",), "C4-LER"),
        ("linked", ("EEG C3-LER",), "C3-LER"),
    ],
    "EOG": [
        ("any", ("EOG Right Horiz", "EOG Left Horiz"), "EOG horizontal"),
    ],
}
_RECORDING = re.compile(r"(01-0(\d)-\d{4}) PSG\.edf")


def _choose_derivation(channel: str, labels: list[str], path: str):
    """Return (labels to read, description) for ``channel`` in a file with ``labels``."""
    have = {lab: match_label(lab, labels, path=path) for rule in _RULES[channel]
            for lab in rule[1]}
    have[_A1] = match_label(_A1, labels, path=path)
    have[_A2] = match_label(_A2, labels, path=path)
    ears = have[_A1] is not None or have[_A2] is not None
    for kind, spec, name in _RULES[channel]:
        if kind == "ears" and not ears or kind == "linked" and ears:
            continue
        if all(have[lab] is not None for lab in spec):
            found = tuple(have[lab] for lab in spec)
            desc = f"{name} = {found[0]} - {found[1]}" if len(found) == 2 else \
                f"{name} = {found[0]}"
            return found, desc
    wanted = " or ".join(
        (" - ".join(spec) + (" (with A1/A2 present)" if kind == "ears" else
                             " (without A1/A2)" if kind == "linked" else ""))
        for kind, spec, _ in _RULES[channel])
    raise ValueError(f"cannot build the {channel} channel from {path}: it needs {wanted}; "
                     f"the file's labels are {labels}")


def _bandpass(x: np.ndarray, fs: float) -> np.ndarray:
    """0.3-40 Hz FIR band-pass of order 100, applied forward and backward (zero phase)."""
    taps = firwin(FIR_ORDER + 1, BANDPASS_HZ, pass_zero=False, fs=fs)
    return filtfilt(taps, [1.0], x)


def _find_recordings(root: Path, subsets, recordings) -> list[tuple[str, str, Path, Path]]:
    found = []
    for subset in subsets:
        folder = root / subset
        if not folder.is_dir():
            raise FileNotFoundError(f"MASS subset folder {folder} not found (expected "
                                    f"{root}/{subset}/01-0{subset[-1]}-XXXX PSG.edf)")
        psgs = sorted(p for p in folder.iterdir() if _RECORDING.fullmatch(p.name))
        psgs = [p for p in psgs if _RECORDING.fullmatch(p.name).group(2) == subset[-1]]
        if not psgs:
            raise FileNotFoundError(f"no '01-0{subset[-1]}-XXXX PSG.edf' file in {folder}")
        for psg in psgs:
            rec_id = _RECORDING.fullmatch(psg.name).group(1)
            if recordings is not None and rec_id not in recordings:
                continue
            base = psg.with_name(f"{rec_id} Base.edf")
            if not base.is_file():
                raise FileNotFoundError(f"the hypnogram {base} of {psg} is missing")
            found.append((subset, rec_id, psg, base))
    if recordings is not None:
        missing = sorted(set(recordings) - {f[1] for f in found})
        if missing:
            raise FileNotFoundError(f"recordings {missing} not found in subsets {list(subsets)} "
                                    f"of {root}")
    return found


def _selection(values, name: str) -> list[str]:
    """``subsets`` / ``recordings``: one name or an iterable of distinct names, not empty."""
    if isinstance(values, str):
        return [values]
    if not isinstance(values, Iterable):     # None included
        raise TypeError(f"{name} must be a name or a list of names, got {values!r}")
    return check_selection([str(v) for v in values], name)


def _check_hypnogram_inside(rec_id, base_path, psg_path, seg_starts, epoch_len, scored,
                            duration) -> None:
    """Scored epochs lying wholly outside the signals mean the hypnogram does not belong to
    this PSG (or its start time is wrong): an error, as for Sleep-EDF. An epoch overlapping
    the signals' edge, or one widened past it, is trimmed and reported instead."""
    before = scored & (seg_starts + epoch_len <= _TOLERANCE_S)
    after = scored & (seg_starts >= duration - _TOLERANCE_S)
    if before.any() or after.any():
        raise ValueError(
            f"MASS {rec_id}: {base_path.name} scores {int(before.sum())} epoch(s) before the "
            f"start and {int(after.sum())} after the end of {psg_path.name} (the hypnogram "
            f"covers {seg_starts[0]:g} s to {seg_starts[-1] + epoch_len:g} s of the PSG's "
            f"0-{duration:g} s); check that the two files belong together")


def load_mass(
    path: str | os.PathLike,
    subsets: Iterable[str] = ("SS1", "SS2", "SS3", "SS4", "SS5"),
    channel: str | Iterable[str] = "C4-A1",
    fs: float = DEFAULT_FS,
    *,
    recordings: Iterable[str] | None = None,
    verbose: bool = False,
) -> Bunch:
    """Load MASS recordings as 30-s epochs at 100 Hz with their stages (REFERENCE §1).

    Parameters
    ----------
    path : str or path-like
        The MASS folder, holding ``SS1/`` ... ``SS5/``.
    subsets : str or iterable of str, default=("SS1", "SS2", "SS3", "SS4", "SS5")
        Which subsets to load (distinct, at least one).
    channel : {"C4-A1", "EOG"} or a list of them, default="C4-A1"
        ``"C4-A1"``: the EEG channel of the reference, with its C3-A2 and linked-ears
        fallbacks (see the module description); ``"EOG"``: right minus left horizontal EOG.
        A list gives several channels (``X`` is then 3-D), e.g. ``["C4-A1", "EOG"]``.
    fs : float, default=100
        Output rate (Hz). A channel recorded below it is an error.
    recordings : str or iterable of str, optional
        Only these recording ids (e.g. ``"01-02-0001"`` or ``["01-02-0001"]``); distinct, at
        least one, and all of them must exist.
    verbose : bool, default=False
        Print one line per recording to stderr.

    Returns
    -------
    data : sklearn.utils.Bunch
        - ``X``: float32 ``(n_epochs, 30 * fs)`` for one channel, ``(n_epochs, n_channels,
          30 * fs)`` for several, in µV, band-passed, epochs in time order per recording;
        - ``y``: int64 ``(n_epochs,)`` stages 0..4 (``STAGES``; R&K S3 and S4 are N3);
        - ``groups``: str ``(n_epochs,)`` subject id (MASS has one night per subject, so this
          is the recording id, e.g. ``"01-02-0001"``);
        - ``recordings``: str ``(n_epochs,)``, the same ids;
        - ``onsets``: float64 ``(n_epochs,)``, start of each 30-s window in s from the PSG
          start (for 20-s subsets: annotation onset minus 5 s);
        - ``fs`` (float), ``ch_names`` (the requested names, e.g. ``["C4-A1"]``);
        - ``derivations``: dict recording -> {channel: what was computed}, e.g.
          ``"C3-A2 = EEG C3-CLE - EEG A2-CLE"`` where C4-A1 fell back;
        - ``report``: :class:`~skseqsleep.datasets._hypnogram.ExclusionReport`, per
          recording: ``kept``; ``excluded`` (unscored "Sleep stage ?" / "Movement time"
          epochs); ``trimmed`` (epochs whose 30-s window leaves the recording); ``notes``
          (subset, derivations used, resampling notes, gaps between annotations among the
          kept epochs, signal of at least one epoch before or after the hypnogram);
        - ``description``: str.

    Raises
    ------
    FileNotFoundError
        Missing subset folder, PSG or hypnogram file, or requested recording.
    ValueError
        Unknown subset or channel, a channel that cannot be built (the message lists the
        file's labels), a label it needs carried by several signals of the file (the message
        lists their indices and rates), a rate below ``fs``, an unknown annotation, annotations whose
        duration is not the subset's epoch length, a scored epoch wholly before the start or
        after the end of its PSG, an empty selection or one naming a subset or recording
        twice, or no epoch kept at all (the message names each recording and why its epochs
        were excluded or trimmed).
    TypeError
        ``subsets`` or ``recordings`` that is neither a name nor an iterable of names.

    Warns
    -----
    UserWarning
        For each recording that kept 0 epochs while others kept some.

    Examples
    --------
    >>> from skseqsleep.datasets import load_mass
    >>> data = load_mass("~/data/mass", subsets=["SS3"])  # doctest: +SKIP
    >>> data.X.shape[1], data.fs  # doctest: +SKIP
    (3000, 100.0)
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"MASS folder {root} not found")
    subsets = _selection(subsets, "subsets")
    for subset in subsets:
        if subset not in SUBSET_EPOCH_SECONDS:
            raise ValueError(f"unknown MASS subset {subset!r}; expected some of "
                             f"{list(SUBSET_EPOCH_SECONDS)}")
    channels = [channel] if isinstance(channel, str) else list(channel)
    for ch in channels:
        if ch not in _RULES:
            raise ValueError(f"unknown MASS channel {ch!r}; expected one of {list(_RULES)} "
                             "or a list of them")
    if not channels or len(set(channels)) != len(channels):
        raise ValueError(f"channel must name distinct channels, got {channels}")
    fs = check_fs(fs)
    n_win = samples_per_epoch(fs)
    recordings = None if recordings is None else set(_selection(recordings, "recordings"))

    found = _find_recordings(root, subsets, recordings)
    X, y, rec_ids, onsets = [], [], [], []
    report = ExclusionReport()
    derivations = {}
    for i, (subset, rec_id, psg_path, base_path) in enumerate(found, 1):
        if verbose:
            sys.stderr.write(f"MASS {subset} {rec_id} ({i}/{len(found)})\n")
        sig, deriv = _read_channels(psg_path, channels, fs)
        derivations[rec_id] = deriv
        epoch_len = SUBSET_EPOCH_SECONDS[subset]
        hyp = read_hypnogram(base_path, epoch_seconds=epoch_len)
        offset = (hyp.start_time - sig.start_time).total_seconds()
        widen = (EPOCH_SECONDS - epoch_len) / 2.0
        on_psg = hyp.onsets + offset                  # scored epochs on the PSG's clock (s)
        duration = sig.signals.shape[1] / fs
        starts = np.round((on_psg - widen) * fs).astype(np.int64)
        inside = (starts >= 0) & (starts + n_win <= sig.signals.shape[1])
        scored = hyp.stages != EXCLUDED
        _check_hypnogram_inside(rec_id, base_path, psg_path, on_psg, epoch_len, scored,
                                duration)
        keep = inside & scored
        excluded = count_reasons(hyp.texts[inside & ~scored])
        trimmed = {}
        if np.any(~inside):
            if widen:
                trimmed[f"{epoch_len:g}-s epoch widened to 30 s leaves the recording"] = int(
                    np.sum(~inside))
            else:
                early = ~inside & (starts < 0)
                for what, mask in (("epoch starts before the signals", early),
                                   ("epoch extends past the end of the signals",
                                    ~inside & ~early)):
                    if mask.any():
                        trimmed[what] = int(mask.sum())
        epochs = cut_epochs(sig.signals, starts[keep], n_win)
        X.append(epochs if len(channels) > 1 else epochs[:, 0])
        y.append(hyp.stages[keep])
        rec_ids.append(np.full(int(keep.sum()), rec_id, dtype=object))
        onsets.append(starts[keep] / fs)
        notes = [f"{subset}, {len(hyp.stages)} scored {epoch_len:g}-s epochs",
                 *deriv.values(), *sig.notes]
        if offset:
            notes.append(f"hypnogram starts {offset:g} s after the PSG")
        notes += coverage_notes(hyp, offset, duration, hyp.onsets[keep])
        report.add(rec_id, kept=int(keep.sum()), excluded=excluded, trimmed=trimmed,
                   notes=notes)
    check_epochs_kept(report, f"MASS subsets {subsets}")
    X_all = np.concatenate(X)
    recs = np.concatenate(rec_ids).astype(str)
    y_all = np.concatenate(y).astype(np.int64)
    description = (
        f"MASS subsets {', '.join(subsets)}: {len(found)} recordings, {len(recs)} 30-s epochs "
        f"of {', '.join(channels)} at {fs:g} Hz (band-pass {BANDPASS_HZ[0]:g}-"
        f"{BANDPASS_HZ[1]:g} Hz, FIR order {FIR_ORDER}, zero phase; 20-s R&K epochs widened "
        "by 5 s on each side, REFERENCE §1); " + stage_summary(y_all, report)
    )
    return Bunch(
        X=X_all,
        y=y_all,
        groups=recs.copy(),
        recordings=recs,
        onsets=np.concatenate(onsets),
        fs=fs,
        ch_names=list(channels),
        derivations=derivations,
        report=report,
        description=description,
    )


def _read_channels(psg_path: Path, channels: list[str], fs: float):
    """Read, derive, band-pass and resample the requested channels of one PSG file.

    The file is opened once; each channel is derived at the rate of its first label (the
    second one is resampled to it), band-passed at that rate, then resampled to ``fs``.
    """
    path = os.fspath(psg_path)
    reader = open_edf(path)
    try:
        labels = [lab.strip() for lab in reader.getSignalLabels()]
        all_rates = [float(reader.getSampleFrequency(i)) for i in range(len(labels))]
        start_time = edf_start_time(reader)
        rows, deriv, cache = [], {}, {}
        for ch in channels:
            spec, desc = _choose_derivation(ch, labels, path)
            # a label carried by several signals is an error (which one is meant?)
            index = {lab: signal_index(lab, labels, all_rates, path) for lab in spec}
            for lab in spec:
                if all_rates[index[lab]] < fs:
                    raise ValueError(f"channel {lab!r} of {path} is sampled at "
                                     f"{all_rates[index[lab]]:g} Hz, below {fs:g} Hz: MASS "
                                     f"EEG/EOG must be recorded at {fs:g} Hz or more "
                                     "(REFERENCE §1)")
            for lab in spec:  # each label read once per file
                if lab not in cache:
                    cache[lab] = read_channel(reader, index[lab], lab, path)
            native = cache[spec[0]][1]     # read_channel's (data, rate)
            signal = derive([cache[lab] for lab in spec])   # µV at the plus label's rate
            rows.append(resample(_bandpass(signal, native), native, fs))
            deriv[ch] = desc
    finally:
        reader.close()
    notes = []
    n = min(len(r) for r in rows)
    if len({len(r) for r in rows}) > 1:
        notes.append(f"channels trimmed to the common length of {n} samples at {fs:g} Hz")
    return Bunch(signals=np.stack([r[:n] for r in rows]), start_time=start_time,
                 notes=notes), deriv
