"""In-bed trimming of Sleep-EDF hypnograms (REFERENCE §1).

Only the in-bed part of a Sleep-EDF recording is used by the reference preparation:
``[max(lights_off, hypnogram start), min(lights_on, recording stop)]``, floored to whole
30-s epochs, i.e. the hypnogram epochs lying entirely inside that interval. The clock times of
the 39 Sleep-EDF-SC-20 recordings (subjects 0-19) and of the 22 ST placebo nights are shipped
in ``skseqsleep/datasets/data/sleep_edf_inbed.csv`` (facts collected for the SeqSleepNet
transfer-learning study). Clock times cross midnight: each is turned into a date-time with the
recording's start date-time as reference (see :func:`resolve_clock_time`).

Alternatives: ``in_bed="wake-margin"`` keeps up to ``wake_margin_minutes`` (30) of Wake
before the first and after the last sleep epoch (the DeepSleepNet / braindecode rule), and
``in_bed=None`` keeps the whole scored hypnogram.
"""

from __future__ import annotations

import csv
import datetime as dt
from functools import lru_cache
from importlib import resources

import numpy as np
from sklearn.utils import Bunch

from .._constants import EXCLUDED
from ._hypnogram import _TOLERANCE_S

__all__ = ["resolve_clock_time", "sleep_edf_in_bed_times", "trim_in_bed"]

_FIELDS = ("rec_start", "rec_stop", "hyp_start", "lights_off", "lights_on")
_IN_BED_CHOICES = ("table", "wake-margin", None)


def _parse_clock(text: str) -> dt.time:
    for fmt in ("%H:%M:%S.%f", "%H:%M:%S"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).time()
        except ValueError:
            continue
    raise ValueError(f"invalid clock time {text!r} in the in-bed table")


@lru_cache(maxsize=1)
def _table() -> dict[str, dict[str, dt.time]]:
    text = resources.files("skseqsleep.datasets").joinpath("data/sleep_edf_inbed.csv")
    with text.open("r", encoding="ascii") as fh:
        rows = list(csv.DictReader(fh))
    return {row["recording"]: {k: _parse_clock(row[k]) for k in _FIELDS} for row in rows}


def sleep_edf_in_bed_times() -> dict[str, dict[str, dt.time]]:
    """Clock times of the shipped Sleep-EDF in-bed table.

    Covers the 39 Sleep-EDF-SC-20 recordings (subjects 0-19) and the 22 ST placebo nights.

    Returns
    -------
    table : dict
        ``recording -> {"rec_start", "rec_stop", "hyp_start", "lights_off", "lights_on"}``,
        each a ``datetime.time`` (clock time, no date; they cross midnight).

    Examples
    --------
    >>> from skseqsleep.datasets import sleep_edf_in_bed_times
    >>> times = sleep_edf_in_bed_times()
    >>> len(times), times["SC4001E0"]["lights_off"]
    (61, datetime.time(0, 38))
    """
    return {rec: dict(times) for rec, times in _table().items()}


def resolve_clock_time(clock: dt.time, reference: dt.datetime,
                       before: dt.timedelta = dt.timedelta(hours=1)) -> dt.datetime:
    """Turn a clock time into the date-time in ``[reference - before, reference - before + 24 h)``.

    With the recording's start as ``reference``, lights-off at 00:38 after a 16:13 start falls
    on the next day, while lights-off at 23:27:00 for a recording started at 23:27:30 falls
    30 s before the start, on the same day.

    Examples
    --------
    >>> import datetime as dt
    >>> from skseqsleep.datasets._inbed import resolve_clock_time
    >>> resolve_clock_time(dt.time(0, 38), dt.datetime(1989, 4, 24, 16, 13))
    datetime.datetime(1989, 4, 25, 0, 38)
    >>> resolve_clock_time(dt.time(23, 27), dt.datetime(1989, 4, 24, 23, 27, 30))
    datetime.datetime(1989, 4, 24, 23, 27)
    """
    lower = reference - before
    candidate = dt.datetime.combine(lower.date(), clock)
    if candidate < lower:
        candidate += dt.timedelta(days=1)
    return candidate


def _table_entry(recording: str) -> tuple[str, dict[str, dt.time]]:
    table = _table()
    if recording in table:
        return recording, table[recording]
    # the letters after the night digit vary between releases of a file name: match
    # "SC4ssN" / "ST7ssN"
    prefix = str(recording)[:6]
    found = [rec for rec in table if rec[:6] == prefix]
    if len(found) == 1:
        return found[0], table[found[0]]
    raise ValueError(
        f"recording {recording!r} is not in the shipped in-bed table (it covers the 39 "
        "Sleep-EDF-SC-20 recordings of subjects 0-19 and the 22 ST placebo nights). Choose "
        "explicitly: in_bed='wake-margin' (keep 30 min of Wake around the sleep period, the "
        "DeepSleepNet/braindecode rule) or in_bed=None (the whole scored hypnogram)."
    )


def trim_in_bed(hypnogram, in_bed="table", *, recording: str | None = None,
                psg_start: dt.datetime | None = None, psg_duration: float | None = None,
                wake_margin_minutes: float = 30.0) -> Bunch:
    """Select the epochs of a hypnogram that belong to the in-bed part of a recording.

    Parameters
    ----------
    hypnogram : Bunch
        As returned by :func:`~skseqsleep.datasets.read_hypnogram`.
    in_bed : {"table", "wake-margin", None}, default="table"
        - ``"table"``: ``[max(lights_off, hyp_start), min(lights_on, recording stop)]`` from
          the shipped table (REFERENCE §1); the epochs entirely inside are kept. Needs
          ``recording``; the recording stop is ``psg_start + psg_duration`` when given, else
          the table's. A recording missing from the table is an error that names the two
          explicit alternatives.
        - ``"wake-margin"``: from ``wake_margin_minutes`` before the first sleep epoch (N1,
          N2, N3, REM) to ``wake_margin_minutes`` after the last one.
        - ``None``: every epoch of the hypnogram.
    recording : str, optional
        Recording id, e.g. ``"SC4001E0"`` (needed for ``"table"``).
    psg_start : datetime, optional
        Start of the signal file. With ``psg_duration``, epochs outside the signals are
        dropped (and counted); a **scored** epoch (one with a stage: not "Sleep stage ?",
        "Movement time" or another text without a usable stage) outside the signals means
        the hypnogram does not belong to this recording: error.
    psg_duration : float, optional
        Duration of the signals (s).
    wake_margin_minutes : float, default=30
        Margin of the ``"wake-margin"`` rule.

    Returns
    -------
    selection : Bunch
        ``keep`` (bool per hypnogram epoch), ``offset`` (s from ``psg_start`` to the
        hypnogram's start, 0 when ``psg_start`` is None), ``window`` ((start, stop) in s from
        the hypnogram's start), ``dropped`` (dict reason -> number of epochs outside the
        selection), ``in_bed`` and ``description``.

    Examples
    --------
    >>> from skseqsleep.datasets import read_hypnogram, trim_in_bed
    >>> hyp = read_hypnogram("SC4001EC-Hypnogram.edf")  # doctest: +SKIP
    >>> sel = trim_in_bed(hyp, "table", recording="SC4001E0")  # doctest: +SKIP
    >>> int(sel.keep.sum())  # lights off 00:38:00 to lights on 06:56:30  # doctest: +SKIP
    757
    """
    if in_bed not in _IN_BED_CHOICES:
        raise ValueError(f"in_bed must be one of {_IN_BED_CHOICES}, got {in_bed!r}")
    onsets = np.asarray(hypnogram.onsets, dtype=np.float64)
    stages = np.asarray(hypnogram.stages)
    epoch = float(hypnogram.epoch_seconds)
    hyp_start = hypnogram.start_time
    path = getattr(hypnogram, "path", "the hypnogram")
    n = len(onsets)
    if n == 0:
        raise ValueError(f"{path} has no epochs")
    keep = np.ones(n, dtype=bool)
    dropped: dict[str, int] = {}

    offset = 0.0
    psg_stop = None
    if psg_start is not None:
        # a text hypnogram has no clock: it starts with the recording
        offset = 0.0 if hyp_start is None else (hyp_start - psg_start).total_seconds()
        if offset < -_TOLERANCE_S:
            raise ValueError(
                f"{path} starts at {hyp_start}, before its recording ({psg_start})"
            )
        if psg_duration is not None:
            psg_stop = float(psg_duration)
            ends = offset + onsets + epoch
            outside = ends > psg_stop + _TOLERANCE_S
            scored_outside = outside & (stages != EXCLUDED)
            if scored_outside.any():
                last = float(offset + onsets[scored_outside][-1] + epoch)
                raise ValueError(
                    f"hypnogram {path} is longer than its recording: it scores up to "
                    f"{last:g} s from the recording start, but the PSG lasts "
                    f"{psg_stop:g} s"
                )
            if outside.any():
                keep &= ~outside
                dropped["unscored, beyond the end of the signals"] = int(outside.sum())

    if in_bed == "table":
        if recording is None:
            raise ValueError("in_bed='table' needs the recording id (e.g. 'SC4001E0')")
        if hyp_start is None:
            raise ValueError(f"in_bed='table' needs the hypnogram's start time; {path} is a "
                             "text hypnogram without one")
        key, times = _table_entry(recording)
        ref = psg_start if psg_start is not None else hyp_start
        table_start = resolve_clock_time(times["rec_start"], ref)
        if psg_start is not None and abs((table_start - psg_start).total_seconds()) > 1:
            raise ValueError(
                f"the in-bed table says recording {key} starts at {times['rec_start']}, but "
                f"its PSG header says {psg_start.time()}: wrong file for this recording?"
            )
        table_hyp = resolve_clock_time(times["hyp_start"], table_start)
        if abs((table_hyp - hyp_start).total_seconds()) > 1:
            raise ValueError(
                f"the in-bed table says the hypnogram of {key} starts at {times['hyp_start']}, "
                f"but {path} starts at {hyp_start.time()}: wrong hypnogram for this recording?"
            )
        lights_off = resolve_clock_time(times["lights_off"], table_start)
        lights_on = resolve_clock_time(times["lights_on"], lights_off, dt.timedelta(0))
        if psg_stop is not None:
            rec_stop = psg_start + dt.timedelta(seconds=psg_stop)
        else:
            rec_stop = resolve_clock_time(times["rec_stop"], table_start, dt.timedelta(0))
        start_dt = max(lights_off, hyp_start)
        stop_dt = min(lights_on, rec_stop)
        w0 = (start_dt - hyp_start).total_seconds()
        w1 = (stop_dt - hyp_start).total_seconds()
        if w1 - w0 < epoch:
            raise ValueError(
                f"the in-bed part of {key} is empty: from {start_dt} "
                "(max(lights-off, hypnogram start)) to "
                f"{stop_dt} (min(lights-on, recording stop)); is the PSG complete?"
            )
        hyp_end = float(onsets[-1] + epoch)
        if w1 > hyp_end + _TOLERANCE_S:
            raise ValueError(
                f"hypnogram {path} is shorter than the in-bed part of {key}: it covers "
                f"{hyp_end:g} s from its start, the in-bed part ends at {w1:g} s "
                f"({stop_dt.time()})"
            )
        inside = (onsets >= w0 - _TOLERANCE_S) & (onsets + epoch <= w1 + _TOLERANCE_S)
        description = (f"in-bed part from the table: {start_dt} to {stop_dt} "
                       "(max(lights-off, hypnogram start) to min(lights-on, recording stop))")
    elif in_bed == "wake-margin":
        sleep = (stages >= 1) & (stages <= 4)
        if not sleep.any():
            raise ValueError(
                f"hypnogram {path} has no sleep epoch, so in_bed='wake-margin' has no sleep "
                "period to keep; use in_bed=None to keep the whole hypnogram"
            )
        margin = float(wake_margin_minutes) * 60.0
        if margin < 0:
            raise ValueError(f"wake_margin_minutes must be >= 0, got {wake_margin_minutes}")
        first, last = np.flatnonzero(sleep)[[0, -1]]
        w0 = onsets[first] - margin
        w1 = onsets[last] + epoch + margin
        inside = (onsets >= w0 - _TOLERANCE_S) & (onsets + epoch <= w1 + _TOLERANCE_S)
        description = (f"sleep period with up to {wake_margin_minutes:g} min of Wake before the "
                       "first and after the last sleep epoch")
    else:
        w0, w1 = float(onsets[0]), float(onsets[-1] + epoch)
        inside = np.ones(n, dtype=bool)
        description = "whole scored hypnogram (in_bed=None)"

    before = keep & ~inside & (onsets < w0)
    after = keep & ~inside & ~(onsets < w0)
    if before.any():
        dropped["before the in-bed part"] = int(before.sum())
    if after.any():
        dropped["after the in-bed part"] = int(after.sum())
    keep &= inside
    if not keep.any():
        raise ValueError(f"no epoch of {path} is left after in-bed trimming ({description})")
    return Bunch(keep=keep, offset=offset, window=(float(w0), float(w1)), dropped=dropped,
                 in_bed=in_bed, description=description)
