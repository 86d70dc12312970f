"""Write small EDF/EDF+ files in the MASS layout and naming, for tests (real pyedflib files).

``SS{n}/01-0{n}-00{ss} PSG.edf`` holds the signals (EDF+, physical dimension uV) and
``SS{n}/01-0{n}-00{ss} Base.edf`` holds only EDF+ annotations "Sleep stage W/1/2/3/4/R/?"
with onset and duration (REFERENCE §1). The content is whatever the test asks for.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyedflib

START = dt.datetime(2004, 1, 1, 22, 30, 0)


def mass_paths(root: Path, subset: int, subject: int) -> tuple[Path, Path]:
    """Return the (PSG, Base) paths of one MASS recording under ``root``."""
    stem = f"01-0{subset}-{subject:04d}"
    folder = Path(root) / f"SS{subset}"
    return folder / f"{stem} PSG.edf", folder / f"{stem} Base.edf"


def read_back(path: Path, label: str) -> np.ndarray:
    """The physical values (uV) pyedflib stores for ``label`` (16-bit quantised)."""
    reader = pyedflib.EdfReader(str(path))
    try:
        return reader.readSignal(reader.getSignalLabels().index(label))
    finally:
        reader.close()


def write_psg(path: Path, signals: dict, fs: float | dict = 256.0, phys: float = 1000.0,
              start: dt.datetime = START) -> None:
    """Write ``{label: 1-D array in uV}`` as an EDF+ file, one-second data records.

    ``fs`` is one rate for all signals or ``{label: rate}``; every signal must hold a whole
    number of seconds at its rate.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = list(signals)
    rates = {lab: float(fs[lab] if isinstance(fs, dict) else fs) for lab in labels}
    headers = []
    for lab in labels:
        headers.append({
            "label": lab, "dimension": "uV", "sample_frequency": rates[lab],
            "physical_max": phys, "physical_min": -phys,
            "digital_max": 32767, "digital_min": -32768, "transducer": "", "prefilter": "",
        })
    writer = pyedflib.EdfWriter(str(path), len(labels), file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setSignalHeaders(headers)
        writer.setStartdatetime(start)
        writer.writeSamples([np.asarray(signals[lab], dtype=np.float64) for lab in labels])
    finally:
        writer.close()


def write_base(path: Path, annotations, start: dt.datetime = START) -> None:
    """Write ``[(onset_s, duration_s, text), ...]`` as an annotation-only EDF+ file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = pyedflib.EdfWriter(str(path), 0, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setStartdatetime(start)
        for onset, duration, text in annotations:
            writer.writeAnnotation(float(onset), float(duration), text)
    finally:
        writer.close()


def stage_annotations(stages, epoch_seconds: float, first_onset: float = 0.0):
    """``["W", "2", ...]`` -> contiguous ``(onset, duration, "Sleep stage X")`` triples."""
    return [(first_onset + k * epoch_seconds, epoch_seconds, f"Sleep stage {s}")
            for k, s in enumerate(stages)]
