"""Reading polysomnography signals from EDF/EDF+ files with pyedflib (REFERENCE §1).

``read_psg`` selects channels by label (tolerant of case, spacing and hyphen/space variants),
converts them to microvolts from the header's physical dimension, resamples them to the
requested rate with polyphase filtering and builds derivations (the difference of two
channels, e.g. MASS C4-A1 = "EEG C4-CLE" minus "EEG A1-CLE").
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly
from sklearn.utils import Bunch

from .._constants import DEFAULT_FS
from ._common import check_fs, check_not_upsampled

__all__ = ["UNIT_TO_MICROVOLT", "derive", "match_label", "open_edf", "read_channel",
           "read_psg", "signal_index"]

#: Factor converting one unit of a header's physical dimension into microvolts. Keys are
#: case-folded; both the micro sign (U+00B5) and the Greek mu (U+03BC) are accepted.
UNIT_TO_MICROVOLT = {
    "uv": 1.0,
    "\u00b5v": 1.0,
    "\u03bcv": 1.0,
    "mv": 1e3,
    "v": 1e6,
    "nv": 1e-3,
}


def _declared_records(fh, head: bytes, size: int):
    """(declared records, record bytes, header bytes) from the header, or None.

    ``fh`` is the open file, ``head`` its first 256 bytes and ``size`` its length. None when
    the header cannot be parsed or declares an unknown (-1) number of records; pyedflib then
    gives its own reason.
    """
    try:
        header_bytes = int(head[184:192].decode("ascii"))
        n_records = int(head[236:244].decode("ascii"))
        ns = int(head[252:256].decode("ascii"))
        fh.seek(256 + 216 * ns)
        per_record = [int(fh.read(8).decode("ascii")) for _ in range(ns)]
    except (ValueError, UnicodeDecodeError):
        return None
    if n_records < 0 or ns < 0 or header_bytes != 256 * (ns + 1) or size < header_bytes:
        return None
    sample_bytes = 3 if head[:1] == b"\xff" else 2   # BDF: 24-bit samples
    record_bytes = sample_bytes * sum(per_record)
    if record_bytes <= 0:
        return None
    return n_records, record_bytes, header_bytes


def edf_start_time(reader) -> _dt.datetime:
    """Start of an open EDF/EDF+ file's first sample, with its fraction of a second.

    EDF+ stores a start to a fraction of a second in the first time-keeping annotation, and
    EDFlib reports the fraction as ``starttime_subsecond`` in units of 100 ns. pyedflib's
    ``getStartdatetime`` divides it by 100 as if it were nanoseconds, so a start at +0.5 s
    came out as +0.05 s and every epoch was cut 0.45 s away from its label; the fraction is
    added here in the right unit.

    Parameters
    ----------
    reader : pyedflib.EdfReader
        An open reader (:func:`open_edf`).

    Returns
    -------
    datetime.datetime
    """
    whole = reader.getStartdatetime().replace(microsecond=0)
    return whole + _dt.timedelta(microseconds=round(int(reader.starttime_subsecond) / 10))


def open_edf(path):
    """Open an EDF/EDF+ file with pyedflib, turning its errors into clear ones.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    reader : pyedflib.EdfReader
        An open reader; the caller must close it (``reader.close()``).

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the file is EDF+D/BDF+D (discontinuous, not supported: the message suggests
        converting it to EDF+C); when it is shorter than the header's size plus the declared
        number of data records (truncated: the message names the declared and the found
        number of records); or when pyedflib cannot read it (corrupt EDF; the message names
        the file and repeats pyedflib's reason).

    Warns
    -----
    UserWarning
        When the file holds more than the declared data records (some exporters leave
        undeclared records or padding): only the declared records are read, and the
        warning names both counts.

    Examples
    --------
    >>> from skseqsleep.datasets._edf import open_edf
    >>> open_edf("no-such-file.edf")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    FileNotFoundError: EDF file not found: no-such-file.edf
    """
    import pyedflib

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"EDF file not found: {path}")
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        header = fh.read(256)
        counts = _declared_records(fh, header, size)
    version = header[192:197].decode("ascii", "replace")
    if version in ("EDF+D", "BDF+D"):
        raise ValueError(
            f"{path!r} is an {version} (discontinuous) file, which is not supported (its "
            f"data records are not contiguous in time and pyedflib cannot read it); convert "
            f"it to {version[:-1]}C, e.g. with EDFbrowser's 'Convert EDF+D to EDF+C' tool, "
            "which writes one continuous file per segment"
        )
    if counts is not None:
        n_records, record_bytes, header_bytes = counts
        expected = header_bytes + n_records * record_bytes
        found, rest = divmod(size - header_bytes, record_bytes)
        holds = f"{found} data records" + (f" and {rest} bytes" if rest else "")
        if size < expected:
            raise ValueError(
                f"{path!r} is truncated or corrupt (an incomplete download?): its header "
                f"declares {n_records} data records of {record_bytes} bytes ({expected} bytes "
                f"with the {header_bytes}-byte header), but the file holds {size} bytes, i.e. "
                f"{holds}; download it again or check its checksum."
            )
        if size > expected:
            # some exporters leave undeclared records (or padding) at the end; EDF readers
            # read the declared ones, so this is a warning, never silent
            warnings.warn(
                f"{path!r} holds more data than its header declares: the header says "
                f"{n_records} data records of {record_bytes} bytes ({expected} bytes with the "
                f"{header_bytes}-byte header), but the file has {size} bytes, i.e. {holds}; "
                f"only the {n_records} declared records are read. Fix the number of data "
                "records in the header (bytes 236-243) to read the rest.",
                UserWarning, stacklevel=2)
    try:
        return pyedflib.EdfReader(path)
    except OSError as exc:
        raise ValueError(
            f"cannot read {path!r} as EDF/EDF+ ({size} bytes): {exc}. The file is truncated "
            "or corrupt (an incomplete download?); download it again or check its checksum."
        ) from exc


def _key(label: str, drop_hyphens: bool = False) -> str:
    key = re.sub(r"\s+", "", label).casefold()
    if drop_hyphens:
        key = key.replace("-", "").replace("_", "")
    return key


def match_label(wanted: str, labels: Sequence[str], *, path=None) -> str | None:
    """Find the label of a file that corresponds to a wanted channel name.

    The match is tried in three steps, the first that succeeds wins: exact; ignoring case
    and white space; ignoring case, white space, hyphens and underscores. A step that matches
    more than one label is ambiguous and raises an error.

    Parameters
    ----------
    wanted : str
        The channel name asked for, e.g. ``"eeg fpz-cz"``.
    labels : sequence of str
        The labels of the file.
    path : str, optional
        The file, named in error messages.

    Returns
    -------
    label : str or None
        The file's label, or None when nothing matches.

    Examples
    --------
    >>> from skseqsleep.datasets._edf import match_label
    >>> match_label("eeg fpz-cz", ["EEG Fpz-Cz", "EOG horizontal"])
    'EEG Fpz-Cz'
    >>> match_label("EEG C4 CLE", ["EEG C4-CLE", "EEG A1-CLE"])
    'EEG C4-CLE'
    >>> match_label("EEG O1", ["EEG Fpz-Cz"]) is None
    True
    """
    labels = [str(lab) for lab in labels]
    if wanted in labels:
        return wanted
    for drop in (False, True):
        # a label repeated in the file counts once here; signal_index refuses to read it
        found = list(dict.fromkeys(lab for lab in labels
                                   if _key(lab, drop) == _key(wanted, drop)))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            where = f" in {path}" if path is not None else ""
            raise ValueError(
                f"channel {wanted!r} is ambiguous{where}: it matches the labels {found}; "
                "give the exact label"
            )
    return None


def signal_index(label: str, labels: Sequence[str], rates: Sequence[float], path) -> int:
    """The index of the one signal of a file that carries ``label``.

    EDF labels are space-padded, so ``"EEG Fpz-Cz"`` and ``"EEG Fpz-Cz "`` are the same label
    (``labels`` are expected stripped, as :func:`read_psg` does).

    Parameters
    ----------
    label : str
        A label of the file (as returned by :func:`match_label`).
    labels : sequence of str
        Every signal label of the file, stripped, in file order.
    rates : sequence of float
        The rate of each signal (Hz), named in the error message.
    path : str
        The file, named in the error message.

    Returns
    -------
    index : int

    Raises
    ------
    ValueError
        When several signals carry ``label``: which one is meant cannot be told, so the
        message lists their indices and rates.

    Examples
    --------
    >>> from skseqsleep.datasets._edf import signal_index
    >>> signal_index("EOG", ["EEG", "EOG"], [100.0, 100.0], "a.edf")
    1
    >>> signal_index("EEG", ["EEG", "EOG", "EEG"], [100.0, 100.0, 200.0],
    ...              "a.edf")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: label 'EEG' is ambiguous in a.edf: signals 0 (100 Hz), 2 (200 Hz) carry it ...
    """
    found = [i for i, lab in enumerate(labels) if lab == label]
    if len(found) > 1:
        which = ", ".join(f"{i} ({float(rates[i]):g} Hz)" for i in found)
        raise ValueError(
            f"label {label!r} is ambiguous in {path}: signals {which} carry it (EDF labels "
            "are compared without trailing spaces); rename the duplicates (e.g. with "
            "EDFbrowser) or remove the unwanted signal"
        )
    return found[0]


def _normalise_channels(channels) -> list[tuple[str, tuple[str, ...]]]:
    """Turn the ``channels`` argument into [(name, (plus,) or (plus, minus))]."""
    if isinstance(channels, str):
        return [(channels, (channels,))]
    if (isinstance(channels, tuple) and len(channels) == 2
            and all(isinstance(c, str) for c in channels)):
        plus, minus = channels
        raise ValueError(
            f"channels={channels!r} is ambiguous: a bare tuple of two labels could be a "
            f"derivation or two channels; write [({plus!r}, {minus!r})] for the derivation "
            f"{plus} minus {minus}, or [{plus!r}, {minus!r}] for two channels"
        )
    if isinstance(channels, Mapping):
        items = list(channels.items())
    elif isinstance(channels, Sequence):
        items = []
        for spec in channels:
            if isinstance(spec, str):
                items.append((spec, spec))
            elif isinstance(spec, tuple) and len(spec) == 2:
                items.append((f"{spec[0]} - {spec[1]}", spec))
            else:
                raise ValueError(
                    "each channel must be a label (str) or a derivation (plus, minus) tuple; "
                    f"got {spec!r}"
                )
    else:
        raise TypeError(
            "channels must be a label, a list of labels/(plus, minus) tuples or a dict "
            f"name -> label or (plus, minus); got {type(channels).__name__}"
        )
    out = []
    for name, spec in items:
        if isinstance(spec, str):
            out.append((str(name), (spec,)))
        elif (isinstance(spec, tuple) and len(spec) == 2
              and all(isinstance(s, str) for s in spec)):
            out.append((str(name), tuple(spec)))
        else:
            raise ValueError(
                f"channel {name!r}: expected a label or a (plus, minus) tuple of labels, "
                f"got {spec!r}"
            )
    if not out:
        raise ValueError("channels is empty: ask for at least one channel")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"channel names must be unique, got {names}")
    return out


def _ratio(fs_out: float, fs_in: float) -> tuple[int, int]:
    frac = Fraction(fs_out).limit_denominator(1000) / Fraction(fs_in).limit_denominator(1000)
    return frac.numerator, frac.denominator


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Resample a 1-D signal with polyphase filtering (``scipy.signal.resample_poly``).

    Examples
    --------
    >>> import numpy as np
    >>> from skseqsleep.datasets._edf import resample
    >>> resample(np.zeros(2560), 256, 100).shape
    (1000,)
    """
    if float(fs_in) == float(fs_out):
        return np.asarray(x, dtype=np.float64)
    up, down = _ratio(fs_out, fs_in)
    return resample_poly(np.asarray(x, dtype=np.float64), up, down)


def read_channel(reader, idx: int, label: str, path: str, fs: float | None = None,
                 allow_upsampling: bool = False) -> tuple[np.ndarray, float]:
    """Read one signal of an open EDF reader in µV, at the file's rate, with checks.

    Parameters
    ----------
    reader : pyedflib.EdfReader
        An open reader (see :func:`open_edf`).
    idx : int
        The signal's index in the file.
    label : str
        Its label, named in error messages.
    path : str
        The file, named in error messages.
    fs : float, optional
        The rate the caller will resample to; a signal recorded below it is an error unless
        ``allow_upsampling``. None skips that check.
    allow_upsampling : bool, default=False

    Returns
    -------
    data : ndarray of float64
        The signal in µV.
    rate : float
        Its rate in the file (Hz).

    Raises
    ------
    ValueError
        Physical dimension that is not a voltage, invalid digital range, rate below ``fs``,
        no samples, or non-finite values (checked in this order).

    Examples
    --------
    >>> from skseqsleep.datasets._edf import open_edf, read_channel
    >>> reader = open_edf("SC4001E0-PSG.edf")  # doctest: +SKIP
    >>> data, rate = read_channel(reader, 0, "EEG Fpz-Cz",
    ...                           "SC4001E0-PSG.edf")  # doctest: +SKIP
    >>> reader.close()  # doctest: +SKIP
    """
    header = reader.getSignalHeader(idx)
    dim = str(header["dimension"]).strip()
    factor = UNIT_TO_MICROVOLT.get(dim.casefold())
    if factor is None:
        raise ValueError(
            f"channel {label!r} of {path} has physical dimension {dim!r}, which is not "
            f"a voltage; expected one of uV, µV, mV, V (case-insensitive)"
        )
    if not header["digital_max"] > header["digital_min"]:
        raise ValueError(
            f"channel {label!r} of {path} has an invalid header: digital maximum "
            f"{header['digital_max']} is not above digital minimum "
            f"{header['digital_min']}, so its values cannot be converted to µV"
        )
    ch_fs = float(reader.getSampleFrequency(idx))
    if fs is not None:
        check_not_upsampled(f"channel {label!r} of {path}", ch_fs, fs, allow_upsampling)
    if reader.getNSamples()[idx] == 0:
        raise ValueError(f"channel {label!r} of {path} has no samples")
    try:
        data = reader.readSignal(idx, digital=False)
    except (OSError, ValueError) as exc:  # pragma: no cover - pyedflib internals
        raise ValueError(f"cannot read channel {label!r} of {path}: {exc}") from exc
    data = np.asarray(data, dtype=np.float64) * factor
    if not np.all(np.isfinite(data)):
        raise ValueError(
            f"channel {label!r} of {path} contains non-finite values (check its "
            "header's physical and digital ranges)"
        )
    return data, ch_fs


def derive(parts, fs: float | None = None) -> np.ndarray:
    """One signal from a label or a derivation, at one rate.

    Parameters
    ----------
    parts : sequence of (data, rate)
        One ``(data, rate)`` pair (a label) or two (a ``(plus, minus)`` derivation), as
        returned by :func:`read_channel`.
    fs : float or None
        Rate of the result; each part is resampled to it (:func:`resample`). ``None``: the
        first part's rate.

    Returns
    -------
    signal : ndarray
        The first part, or ``plus - minus`` over their common length.

    Examples
    --------
    >>> derive([(np.array([3.0, 4, 5]), 100.0), (np.array([1.0, 1]), 100.0)])
    array([2., 3.])
    """
    rate = parts[0][1] if fs is None else fs
    rows = [resample(data, part_fs, rate) for data, part_fs in parts]
    if len(rows) == 1:
        return rows[0]
    n = min(len(rows[0]), len(rows[1]))
    return rows[0][:n] - rows[1][:n]


def read_psg(
    path,
    channels="EEG Fpz-Cz",
    fs: float = DEFAULT_FS,
    allow_upsampling: bool = False,
) -> Bunch:
    """Read channels of a polysomnography EDF/EDF+ file, in µV, at one sampling rate.

    Parameters
    ----------
    path : str or path-like
        The EDF or EDF+ file.
    channels : str, list or dict, default="EEG Fpz-Cz"
        What to read. Each channel is either a **label** (str) or a **derivation**, a
        ``(plus, minus)`` tuple of two labels whose difference (plus minus minus, both in µV
        at ``fs``) is returned, e.g. ``("EEG C4-CLE", "EEG A1-CLE")`` for MASS C4-A1
        (REFERENCE §1). Accepted forms:

        - one label: ``"EEG Fpz-Cz"``;
        - a list of labels and/or tuples: ``["EEG Fpz-Cz", "EOG horizontal"]``; a tuple is
          named ``"plus - minus"``. A bare tuple of two labels, ``("EEG C4-CLE",
          "EEG A1-CLE")``, is refused as ambiguous: put a derivation in a list,
          ``[("EEG C4-CLE", "EEG A1-CLE")]``;
        - a dict ``name -> label or (plus, minus)``:
          ``{"C4-A1": ("EEG C4-CLE", "EEG A1-CLE")}``.

        Labels are matched as described in :func:`match_label` (case, white space and, when
        unambiguous, hyphens/underscores are ignored).
    fs : float, default=100
        Sampling rate of the returned signals (Hz). Channels recorded at another rate are
        resampled with polyphase filtering (``scipy.signal.resample_poly``, REFERENCE §1).
    allow_upsampling : bool, default=False
        A channel recorded below ``fs`` is an error unless this is True (upsampling creates
        no information; e.g. the 1-Hz channels of Sleep-EDF).

    Returns
    -------
    psg : sklearn.utils.Bunch
        - ``signals``: float64 array (n_channels, n_samples) in µV;
        - ``fs``: float, the rate of ``signals``;
        - ``ch_names``: list of str, one per row (the label as written in the file, or the
          derivation's name);
        - ``labels``: list of tuples, the file labels used for each row;
        - ``start_time``: datetime.datetime of the recording start (header);
        - ``duration``: float, ``n_samples / fs`` in seconds;
        - ``file_duration``: float, the duration the header declares (s);
        - ``original_fs``: list of float, the file's rate of each row (the rate of the
          ``plus`` channel for a derivation);
        - ``file_labels``: list of str, every signal label in the file;
        - ``path``: str;
        - ``notes``: list of str, anything changed on the way (e.g. samples trimmed so that
          all rows have one length after resampling).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Truncated/corrupt file; a bare tuple of two labels as ``channels`` (ambiguous);
        missing channel (the message lists the file's labels); a
        label carried by several signals (the message lists their indices and rates);
        unknown physical dimension; a channel below ``fs`` without ``allow_upsampling``;
        non-finite values.

    Examples
    --------
    >>> from skseqsleep.datasets import read_psg
    >>> psg = read_psg("SC4001E0-PSG.edf", ["EEG Fpz-Cz", "EOG horizontal"])  # doctest: +SKIP
    >>> psg.signals.shape, psg.fs  # doctest: +SKIP
    ((2, 7950000), 100.0)
    >>> mass = read_psg("01-03-0001 PSG.edf",
    ...                 {"C4-A1": ("EEG C4-CLE", "EEG A1-CLE")})  # doctest: +SKIP
    """
    fs = check_fs(fs)
    specs = _normalise_channels(channels)
    path = os.fspath(path)
    reader = open_edf(path)
    try:
        file_labels = [lab.strip() for lab in reader.getSignalLabels()]
        file_rates = [float(reader.getSampleFrequency(i)) for i in range(len(file_labels))]
        start_time = edf_start_time(reader)
        file_duration = float(reader.getFileDuration())
        cache: dict[str, tuple[np.ndarray, float]] = {}   # label -> (µV, its rate)

        def load(wanted: str, name: str) -> tuple[str, tuple[np.ndarray, float]]:
            label = match_label(wanted, file_labels, path=path)
            if label is None:
                raise ValueError(
                    f"channel {wanted!r} (for {name!r}) not found in {path}; the file's "
                    f"labels are {file_labels}"
                )
            if label not in cache:
                idx = signal_index(label, file_labels, file_rates, path)
                cache[label] = read_channel(reader, idx, label, path,
                                            fs=fs, allow_upsampling=allow_upsampling)
            return label, cache[label]

        rows, names, used, original_fs = [], [], [], []
        for name, spec in specs:
            labels_used, parts = zip(*(load(wanted, name) for wanted in spec))
            rows.append(derive(parts, fs))
            names.append(labels_used[0] if len(spec) == 1 and name == spec[0] else name)
            used.append(tuple(labels_used))
            original_fs.append(parts[0][1])
    finally:
        reader.close()

    notes = []
    lengths = [len(r) for r in rows]
    n = min(lengths)
    if len(set(lengths)) > 1:
        notes.append(
            f"channels have {sorted(set(lengths))} samples at {fs:g} Hz after resampling; "
            f"all were trimmed to the common length {n} ({n / fs:g} s)"
        )
    signals = np.stack([r[:n] for r in rows]) if rows else np.zeros((0, 0))
    return Bunch(
        signals=signals,
        fs=fs,
        ch_names=names,
        labels=used,
        start_time=start_time,
        duration=n / fs,
        file_duration=file_duration,
        original_fs=original_fs,
        file_labels=file_labels,
        path=path,
        notes=notes,
    )
