"""Reading EDF+ annotation hypnograms (Sleep-EDF, MASS "Base.edf") into per-epoch stages.

R&K stages are mapped to the five AASM classes of the package (REFERENCE §1): W -> 0 (W),
1 -> 1 (N1), 2 -> 2 (N2), 3 and 4 -> 3 (N3), R -> 4 (REM). AASM-scored files in the same
style ("Sleep stage N1/N2/N3") are read too, and any other vocabulary through
``stage_texts``. Movement time and unscored ('?') epochs get the label ``EXCLUDED`` and keep
their annotation text as the reason.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
from sklearn.utils import Bunch

from .._constants import EPOCH_SECONDS, EXCLUDED, STAGES
from ._edf import edf_start_time, open_edf

__all__ = ["ANNOTATION_TO_STAGE", "ExclusionReport", "read_hypnogram"]

#: Stage names -> label, as ``stage_texts`` values and as bare labels of text hypnograms.
_STAGE_NAMES = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "R": 4, "REM": 4}

#: Annotation text -> stage label (0..4, or EXCLUDED): the texts of Sleep-EDF and MASS (R&K:
#: S3 and S4 both become N3) and their AASM counterparts ("Sleep stage N1/N2/N3", as AASM
#: scoring software writes EDF+ hypnograms), and the bare AASM labels (W, N1, N2, N3, R or
#: REM, ? for unscored). The default of ``read_hypnogram``.
ANNOTATION_TO_STAGE = {
    "Sleep stage W": 0,
    "Sleep stage 1": 1,
    "Sleep stage N1": 1,
    "Sleep stage 2": 2,
    "Sleep stage N2": 2,
    "Sleep stage 3": 3,
    "Sleep stage 4": 3,
    "Sleep stage N3": 3,
    "Sleep stage R": 4,
    "Sleep stage ?": EXCLUDED,
    "Movement time": EXCLUDED,
    # the bare AASM labels, as text hypnograms (one label per epoch) usually write them
    **_STAGE_NAMES,
    "?": EXCLUDED,
}

#: File name endings read as text hypnograms (one stage label per line, i.e. per epoch).
TEXT_HYPNOGRAM_SUFFIXES = (".txt", ".csv", ".tsv")


def check_stage_texts(stage_texts) -> dict[str, int]:
    """``stage_texts`` (None: :data:`ANNOTATION_TO_STAGE`) as ``{text: label}``.

    Each value is a label 0..4, a stage name (``"W"``, ``"N1"``, ``"N2"``, ``"N3"``,
    ``"REM"``, or ``"R"``), or ``None`` / ``-1`` for an epoch without a usable stage
    (excluded, with its text as the reason).

    Examples
    --------
    >>> check_stage_texts({"N3": "N3", "Wake": 0, "Artefact": None})
    {'N3': 3, 'Wake': 0, 'Artefact': -1}
    """
    if stage_texts is None:
        return dict(ANNOTATION_TO_STAGE)
    if not hasattr(stage_texts, "items"):
        raise TypeError(f"stage_texts must be a mapping {{annotation text: stage}}, got "
                        f"{type(stage_texts).__name__}")
    out, bad = {}, []
    for text, value in stage_texts.items():
        if not isinstance(text, str) or not text.strip():
            bad.append(f"{text!r} (not a non-empty string)")
            continue
        if text.strip() in out:
            bad.append(f"{text!r} (the same text as another key once surrounding spaces are "
                       "removed, as they are from the file's texts)")
            continue
        if value is None:
            label = EXCLUDED
        elif isinstance(value, str):
            label = _STAGE_NAMES.get(value.strip().upper(), None)
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            label = int(value) if int(value) in (*range(len(STAGES)), EXCLUDED) else None
        else:
            label = None
        if label is None:
            bad.append(f"{text!r}: {value!r}")
            continue
        out[text.strip()] = label
    if bad:
        raise ValueError(f"stage_texts maps each annotation text to a stage 0..4, a stage name "
                         f"{list(STAGES)} (or 'R'), or None / {EXCLUDED} for no usable stage; "
                         f"got {', '.join(bad)}")
    if not out:
        raise ValueError("stage_texts is empty: it must name the annotation texts of the stages")
    return out

#: Tolerance (s) when checking that an annotation spans a whole number of epochs.
_TOLERANCE_S = 1e-3

#: Scoring epoch lengths in use (s): R&K 20 or 30 s, AASM 30 s. A hypnogram whose annotations
#: all last and start on multiples of one of these that is a whole multiple (2x, 3x...) of
#: ``epoch_seconds`` was scored at that length, not in ``epoch_seconds`` epochs.
SCORING_EPOCH_SECONDS = (20.0, 30.0)


def _multiple_of(values: np.ndarray, unit: float) -> bool:
    k = values / unit
    return bool(np.all(np.abs(k - np.round(k)) * unit <= _TOLERANCE_S))


def _read_text_hypnogram(path: str, epoch_seconds: float, mapping: dict) -> Bunch:
    """A text hypnogram: one stage label per line, the k-th line the epoch starting
    ``k * epoch_seconds`` after the PSG's first sample; ``#`` lines are comments."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"hypnogram {path} is not UTF-8 text (a text hypnogram is one stage "
                         f"label per line, saved as UTF-8 or ASCII; an EDF+ hypnogram must end "
                         f"in .edf): {exc}") from exc
    labels, numbers = [], []
    for n, line in enumerate(lines, start=1):
        text = line.strip()
        if text.startswith("#"):
            continue
        labels.append(text)
        numbers.append(n)
    while labels and not labels[-1]:        # trailing blank lines
        labels.pop()
        numbers.pop()
    blank = [n for n, t in zip(numbers, labels) if not t]
    if blank:
        raise ValueError(f"hypnogram {path}: line {blank[0]} is empty; a text hypnogram has "
                         f"one stage label per {epoch_seconds:g}-s epoch on every line (mark "
                         "an unscored epoch with '?')")
    if not labels:
        raise ValueError(f"hypnogram {path} holds no stage label")
    unknown = sorted(set(labels) - set(mapping))
    if unknown:
        first = next(n for n, t in zip(numbers, labels) if t not in mapping)
        columns = any(sep in t for t in unknown for sep in (",", "\t", ";"))
        raise ValueError(
            f"unknown stage label(s) {unknown[:10]} in hypnogram {path} (the first at line "
            f"{first}); the known labels are {list(mapping)}. Pass stage_texts={{label: "
            "stage} for another vocabulary, e.g. {'0': 'W', '1': 'N1', ...}; a header or a "
            "comment line must start with '#'"
            + ("; a text hypnogram has one column, the label, one line per epoch"
               if columns else ""))
    counts = Counter(labels)
    return Bunch(
        stages=np.asarray([mapping[t] for t in labels], dtype=np.int64),
        texts=np.asarray(labels),
        onsets=epoch_seconds * np.arange(len(labels), dtype=np.float64),
        start_time=None,
        epoch_seconds=epoch_seconds,
        duration=float(epoch_seconds * len(labels)),
        counts=dict(counts),
        n_annotations=dict(counts),
        ignored={},
        gaps=np.zeros((0, 2), dtype=np.float64),
        path=path,
    )


def read_hypnogram(path, epoch_seconds: float = EPOCH_SECONDS, *,
                   ignore_texts=(), stage_texts=None) -> Bunch:
    """Read an EDF+ annotation hypnogram, or a text one, into one stage per scoring epoch.

    Each annotation ("Sleep stage W/1/2/3/4/R/?", "Movement time", or the AASM "Sleep stage
    N1/N2/N3"; any other vocabulary through ``stage_texts``) with onset ``o`` and duration
    ``d`` becomes ``d / epoch_seconds`` consecutive epochs starting at ``o``. The
    durations must be whole numbers of epochs (REFERENCE §1). Annotations are sorted by
    onset; overlapping annotations are an error, gaps between them are allowed (the epoch
    onsets tell where each epoch lies) and listed in ``gaps``; the loaders report them.

    A file ending in ``.txt``, ``.csv`` or ``.tsv`` is a **text hypnogram**: one stage label
    per line (``W``, ``N1``, ``N2``, ``N3``, ``R`` or ``REM``, ``?`` for unscored, or the
    texts above; any other vocabulary through ``stage_texts``), line k the epoch that starts
    ``k * epoch_seconds`` after the recording's first sample (it has no clock of its own:
    ``start_time`` is None and the loaders place it at the PSG's start); lines starting with
    ``#`` are comments, an empty line in the middle is an error.

    Parameters
    ----------
    path : str or path-like
        The EDF+ hypnogram, e.g. ``SC4001EC-Hypnogram.edf`` or MASS ``01-02-0001 Base.edf``.
    epoch_seconds : float, default=30
        Length of a scoring epoch. MASS SS2/SS4/SS5 are scored in 20-s epochs.
    ignore_texts : str or iterable of str, default=()
        Annotation texts to skip entirely (e.g. non-stage events of another scoring
        software); a single string is one text. They are counted in ``ignored``.
    stage_texts : mapping or None, default=None
        ``{annotation text: stage}`` for a hypnogram in another vocabulary, e.g.
        ``{"Wake": "W", "N1": "N1", "N2": "N2", "N3": "N3", "REM": "REM", "Artefact":
        None}``: each stage is a label 0..4, a name ``"W"``, ``"N1"``, ``"N2"``, ``"N3"``,
        ``"REM"`` (or ``"R"``), or ``None`` for an epoch without a usable stage (excluded,
        its text the reason). ``None`` (default): ``ANNOTATION_TO_STAGE`` of this module
        (the texts above, their AASM counterparts and the bare labels). Every text
        of the file must be mapped or in ``ignore_texts``.

    Returns
    -------
    hypnogram : sklearn.utils.Bunch
        - ``stages``: int64 (n_epochs,), 0..4 or ``EXCLUDED`` (-1);
        - ``texts``: array of str (n_epochs,), the annotation text of each epoch (the reason
          of an exclusion);
        - ``onsets``: float64 (n_epochs,), epoch start in s from the hypnogram's start;
        - ``start_time``: datetime.datetime of the hypnogram's start (EDF+ header; None for
          a text hypnogram);
        - ``epoch_seconds``: float;
        - ``duration``: float, end of the last annotation (s from ``start_time``);
        - ``counts``: dict annotation text -> number of epochs;
        - ``n_annotations``: dict annotation text -> number of annotations;
        - ``ignored``: dict text -> number of annotations skipped via ``ignore_texts``;
        - ``gaps``: float64 (n_gaps, 2), ``(start, length)`` in s of each stretch of unscored
          time between two annotations (longer than 1 ms);
        - ``path``: str.

    Raises
    ------
    ValueError
        Unknown annotation text (the message lists the known texts), an annotation that is
        not a whole number of epochs or has no duration, ``epoch_seconds`` finer than the
        scoring (every annotation lasts and starts on multiples of a longer scoring epoch,
        20 or 30 s: splitting those epochs would invent finer scoring), overlapping
        annotations, an empty hypnogram, an EDF+D
        (discontinuous) file, which pyedflib cannot read (the official Sleep-EDF hypnograms
        are EDF+C), or a truncated/corrupt file.

    Examples
    --------
    >>> from skseqsleep.datasets import read_hypnogram
    >>> hyp = read_hypnogram("SC4001EC-Hypnogram.edf")  # doctest: +SKIP
    >>> hyp.stages[:3], hyp.counts["Sleep stage W"]  # doctest: +SKIP
    (array([0, 0, 0]), 1997)
    """
    epoch_seconds = float(epoch_seconds)
    if not epoch_seconds > 0:
        raise ValueError(f"epoch_seconds must be positive, got {epoch_seconds!r}")
    path = os.fspath(path)
    if path.lower().endswith(TEXT_HYPNOGRAM_SUFFIXES):
        if ignore_texts:
            raise ValueError(f"ignore_texts applies to EDF+ annotations; in the text hypnogram "
                             f"{path} every line is an epoch: map a label without a usable "
                             "stage to None in stage_texts instead")
        return _read_text_hypnogram(path, epoch_seconds, check_stage_texts(stage_texts))
    if isinstance(ignore_texts, str):
        ignore_texts = {ignore_texts}
    ignore_texts = set(ignore_texts)
    not_str = [t for t in ignore_texts if not isinstance(t, str)]
    if not_str:
        raise TypeError(f"ignore_texts must be a string or an iterable of strings, got "
                        f"{not_str!r} in it")
    mapping = check_stage_texts(stage_texts)
    reader = open_edf(path)
    try:
        onsets, durations, texts = reader.readAnnotations()
        start_time = edf_start_time(reader)
    finally:
        reader.close()
    texts = [str(t).strip() for t in texts]
    unknown = sorted({t for t in texts if t not in mapping} - ignore_texts)
    if unknown:
        raise ValueError(
            f"unknown annotation text(s) {unknown} in hypnogram {path}; the known texts are "
            f"{list(mapping)} (pass stage_texts={{text: stage}} for another vocabulary, or "
            "ignore_texts=... to skip other events)"
        )
    ignored = Counter(t for t in texts if t in ignore_texts)
    keep = [i for i, t in enumerate(texts) if t not in ignore_texts]
    if not keep:
        raise ValueError(f"hypnogram {path} holds no sleep-stage annotation")
    onsets = np.asarray(onsets, dtype=np.float64)[keep]
    durations = np.asarray(durations, dtype=np.float64)[keep]
    texts = [texts[i] for i in keep]
    order = np.argsort(onsets, kind="stable")

    stages, epoch_texts, epoch_onsets = [], [], []
    n_annotations: Counter = Counter()
    gaps = []
    previous_end = -np.inf
    for i in order:
        onset, duration, text = float(onsets[i]), float(durations[i]), texts[i]
        if duration < 0:   # pyedflib gives -1 for an annotation written without duration
            raise ValueError(
                f"annotation {text!r} at {onset:g} s in hypnogram {path} has no duration; a "
                f"sleep-stage annotation must last a whole number of {epoch_seconds:g}-s epochs"
            )
        n_epochs = round(duration / epoch_seconds)
        if n_epochs < 1 or abs(n_epochs * epoch_seconds - duration) > _TOLERANCE_S:
            raise ValueError(
                f"annotation {text!r} at {onset:g} s in hypnogram {path} lasts {duration:g} s, "
                f"which is not a whole number of {epoch_seconds:g}-s epochs"
            )
        if onset < previous_end - _TOLERANCE_S:
            raise ValueError(
                f"annotation {text!r} at {onset:g} s in hypnogram {path} overlaps the previous "
                f"one, which ends at {previous_end:g} s"
            )
        if np.isfinite(previous_end) and onset > previous_end + _TOLERANCE_S:
            gaps.append((previous_end, onset - previous_end))
        previous_end = onset + duration
        n_annotations[text] += 1
        stages.extend([mapping[text]] * n_epochs)
        epoch_texts.extend([text] * n_epochs)
        epoch_onsets.extend(onset + epoch_seconds * np.arange(n_epochs))
    starts = onsets - onsets.min()
    for unit in sorted(SCORING_EPOCH_SECONDS, reverse=True):
        ratio = unit / epoch_seconds
        if (ratio > 1.5 and abs(ratio - round(ratio)) < 1e-9 and _multiple_of(durations, unit)
                and _multiple_of(starts, unit)):
            raise ValueError(
                f"epoch_seconds={epoch_seconds:g} is shorter than the scoring resolution of "
                f"hypnogram {path}: every annotation lasts, and starts on, a multiple of "
                f"{unit:g} s, so it was scored in {unit:g}-s epochs; reading it in "
                f"{epoch_seconds:g}-s epochs would split each scored epoch into "
                f"{round(ratio)} and invent finer scoring. Use epoch_seconds={unit:g}."
            )
    stages_arr = np.asarray(stages, dtype=np.int64)
    return Bunch(
        stages=stages_arr,
        texts=np.asarray(epoch_texts),
        onsets=np.asarray(epoch_onsets, dtype=np.float64),
        start_time=start_time,
        epoch_seconds=epoch_seconds,
        duration=float(previous_end),
        counts=dict(Counter(epoch_texts)),
        n_annotations=dict(n_annotations),
        ignored=dict(ignored),
        gaps=np.asarray(gaps, dtype=np.float64).reshape(-1, 2),
        path=path,
    )


class ExclusionReport(dict):
    """What a loader kept, excluded and skipped, per recording (readable with ``print``).

    A dict ``recording -> {"kept": int, "excluded": {reason: n_epochs},
    "trimmed": {reason: n_epochs}, "notes": [str, ...]}``: ``excluded`` counts epochs inside
    the analysed part that have no usable stage (e.g. "Movement time", "Sleep stage ?"),
    ``trimmed`` counts epochs outside it (e.g. before lights-off). ``skipped`` maps recordings
    that were not loaded to the reason.

    Examples
    --------
    >>> from skseqsleep.datasets._hypnogram import ExclusionReport
    >>> report = ExclusionReport()
    >>> report.add("SC4001E0", kept=757, excluded={"Movement time": 2})
    >>> report.skipped["SC4132"] = "not in Sleep-EDF"
    >>> report.n_kept, report.n_excluded
    (757, 2)
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped: dict[str, str] = {}

    def add(self, recording, kept, excluded=None, trimmed=None, notes=()):
        """Record the outcome of one recording."""
        self[str(recording)] = {"kept": int(kept), "excluded": dict(excluded or {}),
                                "trimmed": dict(trimmed or {}), "notes": list(notes)}

    @property
    def n_kept(self) -> int:
        """Total number of epochs kept."""
        return sum(v["kept"] for v in self.values())

    @property
    def n_excluded(self) -> int:
        """Total number of excluded epochs (unusable stage inside the analysed part)."""
        return sum(sum(v["excluded"].values()) for v in self.values())

    def excluded_by_reason(self) -> dict[str, int]:
        """Excluded epochs summed over recordings, per reason."""
        out: Counter = Counter()
        for v in self.values():
            out.update(v["excluded"])
        return dict(out)

    def __str__(self) -> str:
        lines = [f"{len(self)} recordings, {self.n_kept} epochs kept, "
                 f"{self.n_excluded} excluded {self.excluded_by_reason() or ''}".rstrip()]
        for rec, v in self.items():
            parts = [f"{v['kept']} kept"]
            if v["excluded"]:
                parts.append("excluded " + ", ".join(f"{k}: {n}"
                                                      for k, n in v["excluded"].items()))
            if v["trimmed"]:
                parts.append("trimmed " + ", ".join(f"{k}: {n}"
                                                     for k, n in v["trimmed"].items()))
            lines.append(f"  {rec}: " + "; ".join(parts))
            lines.extend(f"    note: {note}" for note in v["notes"])
        for rec, why in self.skipped.items():
            lines.append(f"  {rec}: skipped ({why})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"ExclusionReport({dict.__repr__(self)}, skipped={self.skipped!r})"
