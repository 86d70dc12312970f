"""Helpers shared by the Sleep-EDF, MASS and DREAMS loaders (private).

Only what the loaders did alike: checking the output rate and lists of subject, night or
excerpt numbers, cutting signals into 30-s
epochs, counting excluded epochs per reason, noting the parts of a recording that its
hypnogram leaves unscored, checking that epochs were kept and summarising the stages of a
loaded set.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from .._constants import EPOCH_SECONDS, STAGES


def check_fs(fs) -> float:
    """Return ``fs`` as a float after checking that it is a positive, finite rate.

    Parameters
    ----------
    fs : float
        A sampling rate in Hz.

    Returns
    -------
    fs : float

    Raises
    ------
    ValueError
        When ``fs`` is zero, negative, NaN or infinite.

    Examples
    --------
    >>> from skseqsleep.datasets._common import check_fs
    >>> check_fs(100)
    100.0
    >>> check_fs(0)
    Traceback (most recent call last):
    ValueError: fs must be a positive rate in Hz, got 0.0
    """
    fs = float(fs)
    if not np.isfinite(fs) or fs <= 0:
        raise ValueError(f"fs must be a positive rate in Hz, got {fs!r}")
    return fs


def as_integers(values, name: str) -> list[int]:
    """Return ``values`` (one integer or an iterable of them) as a list of int, strictly.

    A string is refused rather than iterated character by character, a bool rather than
    taken for 0 or 1, and a number that is not a whole number rather than truncated.

    Parameters
    ----------
    values : int or iterable of int
        E.g. subject numbers. Floats that are whole numbers (``20.0``) are accepted.
    name : str
        The argument, as the messages name it.

    Returns
    -------
    values : list of int

    Raises
    ------
    TypeError
        A string, a bool, or something that is neither a number nor an iterable of numbers.
    ValueError
        A number that is not a whole number.

    Examples
    --------
    >>> from skseqsleep.datasets._common import as_integers
    >>> as_integers(range(3), "subjects"), as_integers(7, "subjects")
    ([0, 1, 2], [7])
    >>> as_integers("20", "subjects")
    Traceback (most recent call last):
    TypeError: subjects must be an integer or an iterable of integers, got the string '20'
    >>> as_integers([20.7], "subjects")
    Traceback (most recent call last):
    ValueError: subjects must hold whole numbers, got 20.7
    """
    expected = f"{name} must be an integer or an iterable of integers"
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{expected}, got the string {values!r}")
    if isinstance(values, numbers.Number) or np.ndim(values) == 0 and hasattr(values, "dtype"):
        values = [values]
    try:
        items = list(values)
    except TypeError:
        raise TypeError(f"{expected}, got {type(values).__name__} {values!r}") from None
    out = []
    for v in items:
        if isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{expected}, got the bool {v!r}")
        if isinstance(v, numbers.Integral):
            out.append(int(v))
        elif isinstance(v, numbers.Real):
            if not float(v).is_integer():
                raise ValueError(f"{name} must hold whole numbers, got {v!r}")
            out.append(int(v))
        else:
            raise TypeError(f"{expected}, got {type(v).__name__} {v!r} in it")
    return out


def as_selection(values, name: str, hint: str = "") -> list[int]:
    """:func:`as_integers`, then :func:`check_selection`: the integers of a selection
    (subjects, nights, excerpts), at least one, none twice."""
    return check_selection(as_integers(values, name), name, hint)


def check_selection(values: list, name: str, hint: str = "") -> list:
    """Refuse an empty selection or one naming an item twice (it would be loaded twice while
    reports count it once).

    Examples
    --------
    >>> from skseqsleep.datasets._common import check_selection
    >>> check_selection([1, 1], "nights")
    Traceback (most recent call last):
    ...
    ValueError: nights has duplicates: [1, 1]; each is loaded once
    """
    if not values:
        raise ValueError(f"{name} is empty: select at least one{hint}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} has duplicates: {values}; each is loaded once")
    return values


def samples_per_epoch(fs: float) -> int:
    """Number of samples in one 30-s epoch at ``fs``, which must be a whole number.

    Parameters
    ----------
    fs : float
        A positive sampling rate in Hz (see :func:`check_fs`).

    Returns
    -------
    n : int

    Raises
    ------
    ValueError
        When ``30 * fs`` is not a whole number.

    Examples
    --------
    >>> from skseqsleep.datasets._common import samples_per_epoch
    >>> samples_per_epoch(100.0), samples_per_epoch(128.0)
    (3000, 3840)
    >>> samples_per_epoch(33.33)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: fs=33.33 Hz does not give a whole number of samples per 30-s epoch (...)
    """
    n = round(EPOCH_SECONDS * fs)
    if abs(n - EPOCH_SECONDS * fs) > 1e-9:
        raise ValueError(f"fs={fs:g} Hz does not give a whole number of samples per "
                         f"{EPOCH_SECONDS}-s epoch ({EPOCH_SECONDS} s x {fs:g} Hz = "
                         f"{EPOCH_SECONDS * fs:g})")
    return n


def check_not_upsampled(what: str, rate: float, fs: float, allow_upsampling: bool) -> None:
    """Refuse a signal recorded below the requested rate unless upsampling is allowed.

    Parameters
    ----------
    what : str
        The signal, as the message names it (e.g. ``"channel 'EEG' of a.edf"``).
    rate : float
        Its recorded rate (Hz).
    fs : float
        The requested rate (Hz).
    allow_upsampling : bool
        When True, nothing is checked.

    Raises
    ------
    ValueError
        When ``rate < fs`` and not ``allow_upsampling``.

    Examples
    --------
    >>> from skseqsleep.datasets._common import check_not_upsampled
    >>> check_not_upsampled("excerpt3.txt", 50.0, 100.0, allow_upsampling=True)
    >>> check_not_upsampled("excerpt3.txt", 50.0, 100.0,
    ...                     allow_upsampling=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: excerpt3.txt is sampled at 50 Hz, below the requested fs=100 Hz; pass ...
    """
    if rate < fs and not allow_upsampling:
        raise ValueError(
            f"{what} is sampled at {rate:g} Hz, below the requested fs={fs:g} Hz; pass "
            "allow_upsampling=True to upsample it anyway (it adds no information), or ask "
            "for a lower fs"
        )


def cut_epochs(signals: np.ndarray, starts: np.ndarray, n_samples: int) -> np.ndarray:
    """Cut ``(n_channels, n_times)`` signals into float32 epochs starting at ``starts``.

    Parameters
    ----------
    signals : ndarray of shape (n_channels, n_times)
    starts : ndarray of int, shape (n_epochs,)
        First sample of each epoch; every epoch must lie inside ``signals``.
    n_samples : int
        Samples per epoch.

    Returns
    -------
    epochs : ndarray of float32, shape (n_epochs, n_channels, n_samples)

    Examples
    --------
    >>> import numpy as np
    >>> from skseqsleep.datasets._common import cut_epochs
    >>> cut_epochs(np.arange(12.0).reshape(2, 6), np.array([0, 3]), 3).tolist()
    [[[0.0, 1.0, 2.0], [6.0, 7.0, 8.0]], [[3.0, 4.0, 5.0], [9.0, 10.0, 11.0]]]
    """
    idx = np.asarray(starts)[:, None] + np.arange(n_samples)
    return signals[:, idx].transpose(1, 0, 2).astype(np.float32)


def count_reasons(reasons) -> dict[str, int]:
    """Count excluded epochs per reason (annotation text), in sorted order of the reasons.

    Parameters
    ----------
    reasons : array-like of str
        One reason per excluded epoch.

    Returns
    -------
    counts : dict
        ``reason -> number of epochs``.

    Examples
    --------
    >>> from skseqsleep.datasets._common import count_reasons
    >>> count_reasons(["Sleep stage ?", "Movement time", "Sleep stage ?"])
    {'Movement time': 1, 'Sleep stage ?': 2}
    """
    values, counts = np.unique(np.asarray(reasons), return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts)}


def stage_summary(y: np.ndarray, report) -> str:
    """The stages part of a loader's description: epochs per stage, then the exclusions.

    Parameters
    ----------
    y : ndarray of int
        Stage labels 0..4.
    report : ExclusionReport
        The loader's report (its excluded epochs are summed per reason).

    Returns
    -------
    text : str

    Examples
    --------
    >>> import numpy as np
    >>> from skseqsleep.datasets._common import stage_summary
    >>> from skseqsleep.datasets._hypnogram import ExclusionReport
    >>> report = ExclusionReport()
    >>> report.add("a", kept=3, excluded={"Movement time": 1})
    >>> stage_summary(np.array([0, 2, 2]), report)
    "stages W: 1, N1: 0, N2: 2, N3: 0, REM: 0; 1 epochs excluded {'Movement time': 1}"
    """
    counts = np.bincount(y, minlength=len(STAGES))
    return ("stages " + ", ".join(f"{s}: {c}" for s, c in zip(STAGES, counts))
            + f"; {report.n_excluded} epochs excluded {report.excluded_by_reason()}")


#: How many gaps a report note lists by position.
_GAPS_LISTED = 3


def coverage_notes(hypnogram, offset: float, psg_duration: float, kept_onsets) -> list[str]:
    """Report notes on the time a hypnogram leaves unscored in its recording.

    Two things are noted, since nothing in ``X`` shows them: gaps between annotations that
    lie among the kept epochs (the epochs on either side of a gap are adjacent in ``X``, so
    sequence windows span it; the data are kept as they are, as in the reference), and signal
    before the first or after the last annotation when it lasts at least one scoring epoch.

    Parameters
    ----------
    hypnogram : sklearn.utils.Bunch
        As returned by :func:`~skseqsleep.datasets.read_hypnogram` (``onsets``,
        ``duration``, ``epoch_seconds``, ``gaps``).
    offset : float
        Start of the hypnogram in s from the start of the PSG.
    psg_duration : float
        Length of the PSG's signals (s).
    kept_onsets : array-like of float
        Onsets (s from the hypnogram's start) of the kept epochs.

    Returns
    -------
    notes : list of str
        Positions are in s from the PSG start.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.utils import Bunch
    >>> from skseqsleep.datasets._common import coverage_notes
    >>> hyp = Bunch(onsets=np.array([0.0, 30, 300, 330]), duration=360.0,
    ...             epoch_seconds=30.0, gaps=np.array([[60.0, 240.0]]))
    >>> gap, tail = coverage_notes(hyp, 0.0, 600.0, [0.0, 30, 300, 330])
    >>> gap[:69]
    '1 gap(s) of unscored time between hypnogram annotations, 240 s in all'
    >>> tail
    '240 s of signal after the end of the hypnogram (at 360 s) are unscored and not loaded'
    """
    notes = []
    kept_onsets = np.asarray(kept_onsets, dtype=np.float64)
    epoch = float(hypnogram.epoch_seconds)
    gaps = np.asarray(hypnogram.gaps, dtype=np.float64).reshape(-1, 2)
    if len(kept_onsets) and len(gaps):
        inner = gaps[(gaps[:, 0] >= kept_onsets.min())
                     & (gaps[:, 0] + gaps[:, 1] <= kept_onsets.max() + epoch)]
        if len(inner):
            where = ", ".join(f"{offset + a:g}-{offset + a + d:g} s"
                              for a, d in inner[:_GAPS_LISTED])
            more = f" and {len(inner) - _GAPS_LISTED} more" if len(inner) > _GAPS_LISTED else ""
            notes.append(
                f"{len(inner)} gap(s) of unscored time between hypnogram annotations, "
                f"{inner[:, 1].sum():g} s in all (at {where}{more}); the kept epochs on either "
                "side of a gap are adjacent in X, so sequence windows span it"
            )
    before = offset + float(hypnogram.onsets[0])
    end = offset + float(hypnogram.duration)
    after = float(psg_duration) - end
    if before >= epoch:
        notes.append(f"{before:g} s of signal before the start of the hypnogram are unscored "
                     "and not loaded")
    if after >= epoch:
        notes.append(f"{after:g} s of signal after the end of the hypnogram (at {end:g} s) "
                     "are unscored and not loaded")
    return notes


def _why_nothing_kept(entry: dict) -> str:
    parts = []
    if entry["excluded"]:
        parts.append(f"excluded {entry['excluded']}")
    if entry["trimmed"]:
        parts.append(f"trimmed {entry['trimmed']}")
    return ", ".join(parts) or "no epoch"


def check_epochs_kept(report, what: str) -> None:
    """Refuse a load that kept no epoch; warn about each recording that kept none.

    Parameters
    ----------
    report : ExclusionReport
        The loader's report, one entry per loaded recording.
    what : str
        The loaded set, as the messages name it (e.g. ``"Sleep-EDF SC subjects [20]"``).

    Raises
    ------
    ValueError
        When no recording kept an epoch; the message names each recording and why its epochs
        were excluded or trimmed.

    Warns
    -----
    UserWarning
        Once per recording with 0 kept epochs, when others kept some.

    Examples
    --------
    >>> from skseqsleep.datasets._common import check_epochs_kept
    >>> from skseqsleep.datasets._hypnogram import ExclusionReport
    >>> report = ExclusionReport()
    >>> report.add("SC4201E0", kept=0, excluded={"Sleep stage ?": 6})
    >>> check_epochs_kept(report, "subject 20")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: no epoch kept from subject 20: SC4201E0: 0 kept, excluded {'Sleep stage ?': 6}
    """
    empty = {rec: _why_nothing_kept(v) for rec, v in report.items() if v["kept"] == 0}
    if report.n_kept == 0:
        raise ValueError(f"no epoch kept from {what}: "
                         + "; ".join(f"{rec}: 0 kept, {why}" for rec, why in empty.items()))
    for rec, why in empty.items():
        warnings.warn(f"recording {rec} of {what} kept 0 epochs ({why}); it adds nothing "
                      "to X", UserWarning, stacklevel=3)
