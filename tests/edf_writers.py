"""Helpers that write realistic EDF/EDF+ files with pyedflib, for tests.

``write_psg`` writes signals (physical values or digital integers with explicit header
ranges); ``write_hypnogram_edf`` writes an EDF+ file holding only annotations, like the
Sleep-EDF and MASS hypnograms. Any test may reuse them.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from pathlib import Path

import numpy as np
import pyedflib


def write_psg(path, signals, start=dt.datetime(2000, 1, 1, 23, 0, 0), *,
              edf_plus=False, record_duration=1.0, patient_code="", equipment=""):
    """Write an EDF (or EDF+) file.

    Parameters
    ----------
    path : path-like
    signals : dict
        ``label -> (data, fs, dimension)`` or ``label -> (data, fs, dimension, header)``
        where ``header`` is a dict of header overrides (``physical_min``, ``physical_max``,
        ``digital_min``, ``digital_max``, ``prefilter``, ``transducer``). When ``data`` has
        an integer dtype it is written as digital values (then the four ranges must be given),
        otherwise as physical values (ranges default to the data's min/max and -32768..32767).
    start : datetime
    edf_plus : bool
        EDF+C instead of plain EDF.
    record_duration : float
        Data-record duration (s); each signal's length must be a whole number of records.
    """
    labels = list(signals)
    n = len(labels)
    ftype = pyedflib.FILETYPE_EDFPLUS if edf_plus else pyedflib.FILETYPE_EDF
    headers, datas, digital = [], [], None
    for label in labels:
        spec = signals[label]
        data, fs, dim = spec[:3]
        extra = dict(spec[3]) if len(spec) > 3 else {}
        data = np.asarray(data)
        is_digital = np.issubdtype(data.dtype, np.integer)
        if digital is None:
            digital = is_digital
        elif digital != is_digital:
            raise ValueError("write_psg: give all signals as integers or all as floats")
        if is_digital:
            missing = {"physical_min", "physical_max", "digital_min", "digital_max"} - set(extra)
            if missing:
                raise ValueError(f"write_psg: digital data for {label!r} needs {missing}")
            data = data.astype(np.int32)
        else:
            data = data.astype(np.float64)
            # symmetric range with a margin, so that the 8-character header fields never
            # cut inside the data range
            m = float(np.max(np.abs(data))) * 1.02 or 1.0
            extra.setdefault("physical_min", -m)
            extra.setdefault("physical_max", m)
            extra.setdefault("digital_min", -32768)
            extra.setdefault("digital_max", 32767)
        header = {
            "label": label,
            "dimension": dim,
            "sample_frequency": fs,
            "prefilter": "",
            "transducer": "",
        }
        header.update(extra)
        headers.append(header)
        datas.append(data)
    with warnings.catch_warnings():
        # pyedflib warns about record durations and 8-character header fields: expected here
        warnings.simplefilter("ignore", UserWarning)
        writer = pyedflib.EdfWriter(os.fspath(path), n, file_type=ftype)
        try:
            writer.setDatarecordDuration(record_duration)
            writer.setSignalHeaders(headers)
            writer.setStartdatetime(start)
            if patient_code:
                writer.setPatientCode(patient_code)
            if equipment:
                writer.setEquipment(equipment)
            writer.writeSamples(datas, digital=bool(digital))
        finally:
            writer.close()
    return path


def write_hypnogram_edf(path, annotations, start=dt.datetime(2000, 1, 1, 23, 0, 0)):
    """Write an EDF+ hypnogram: annotations only, ``[(onset_s, duration_s, text), ...]``."""
    writer = pyedflib.EdfWriter(os.fspath(path), 0, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setStartdatetime(start)
        for onset, duration, text in annotations:
            writer.writeAnnotation(float(onset), float(duration), str(text))
    finally:
        writer.close()
    return path


def hypnogram_annotations_from_stages(stages, epoch_seconds=30):
    """Run-length encode a list of annotation texts (one per epoch) into annotations."""
    out = []
    start = 0
    for i in range(1, len(stages) + 1):
        if i == len(stages) or stages[i] != stages[start]:
            out.append((start * epoch_seconds, (i - start) * epoch_seconds, stages[start]))
            start = i
    return out


def set_subsecond_start(path, fraction):
    """Make an EDF+ file written by :func:`write_psg` start ``fraction`` s (0 < f < 1) after
    the whole second of its header, as EDF+ records such a start: the time-keeping annotation
    of data record k says ``+k.f`` instead of ``+k`` (EDF+ specification, section 2.2.4).
    Data records of 1 s only."""
    raw = bytearray(Path(path).read_bytes())
    n_signals = int(raw[252:256])
    n_records = int(raw[236:244])
    header = 256 * (n_signals + 1)
    per_record = [int(raw[256 + 216 * n_signals + 8 * i:256 + 216 * n_signals + 8 * i + 8])
                  for i in range(n_signals)]
    labels = [raw[256 + 16 * i:256 + 16 * i + 16].decode().strip() for i in range(n_signals)]
    ann = labels.index("EDF Annotations")
    offset, size = 2 * sum(per_record[:ann]), 2 * per_record[ann]
    digits = f"{fraction:.6f}"[1:].rstrip("0")          # ".5"
    for k in range(n_records):
        at = header + k * 2 * sum(per_record) + offset
        tal = bytes(raw[at:at + size]).rstrip(b"\x00")
        keeping = f"+{k}\x14\x14".encode()
        assert tal.startswith(keeping), tal
        new = f"+{k}{digits}\x14\x14".encode() + tal[len(keeping):]
        raw[at:at + size] = new.ljust(size, b"\x00")
    Path(path).write_bytes(bytes(raw))
