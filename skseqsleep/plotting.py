"""Plots for sleep staging results: hypnograms, confusion matrices and finetuning curves.

matplotlib is an optional dependency (``pip install skseqsleep[plot]``); it is imported when a
function of this module is called, not when the module is imported. Every function draws into
a given :class:`matplotlib.axes.Axes` (or a new figure when ``ax`` is None) and returns the axes,
so that the plots can be combined and restyled.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from skseqsleep._checks import is_positive_finite, is_real
from skseqsleep._constants import EPOCH_SECONDS, STAGES
from skseqsleep._labels import check_stage_labels

__all__ = ["plot_confusion_matrix", "plot_finetuning_curves", "plot_hypnogram"]

#: Vertical order of the stages in a hypnogram, top to bottom (the clinical convention:
#: Wake on top, REM just below it, then the deepening NREM stages).
HYPNOGRAM_ORDER = ("W", "REM", "N1", "N2", "N3")


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "skseqsleep.plotting needs matplotlib; install it with "
            "`pip install skseqsleep[plot]`") from exc
    return plt


def _new_axes(ax, figsize):
    if ax is not None:
        return ax
    plt = _pyplot()
    _, ax = plt.subplots(figsize=figsize)
    return ax


def hypnogram_levels(y) -> np.ndarray:
    """Map stage labels 0..4 to the vertical levels of a hypnogram plot.

    Level 4 is the top of the plot (Wake) and level 0 the bottom (N3), in the order
    :data:`HYPNOGRAM_ORDER`.

    Parameters
    ----------
    y : array-like of int, shape (n_epochs,)
        Stage labels (0=W, 1=N1, 2=N2, 3=N3, 4=REM).

    Returns
    -------
    levels : ndarray of int, shape (n_epochs,)

    Examples
    --------
    >>> from skseqsleep.plotting import hypnogram_levels
    >>> hypnogram_levels([0, 1, 2, 3, 4]).tolist()
    [4, 2, 1, 0, 3]
    """
    y = check_stage_labels(y, "y")
    top_to_bottom = [STAGES.index(s) for s in HYPNOGRAM_ORDER]
    level_of_label = np.empty(len(STAGES), dtype=np.int64)
    for rank, label in enumerate(top_to_bottom):
        level_of_label[label] = len(STAGES) - 1 - rank
    return level_of_label[y]


def plot_hypnogram(y_true, y_pred=None, *, onsets=None, epoch_seconds: float = EPOCH_SECONDS,
                   ax=None, title: str | None = None, labels: Sequence[str] = ("true",
                                                                                "predicted")):
    """Plot a hypnogram (stage against time), optionally with a predicted one on top.

    Parameters
    ----------
    y_true : array-like of int, shape (n_epochs,)
        The scored stages of one recording, one per 30-s epoch, in time order.
    y_pred : array-like of int, shape (n_epochs,), optional
        Predicted stages of the same epochs, drawn as a second line.
    onsets : array-like of float, shape (n_epochs,), optional
        Start of each epoch in seconds from the start of the recording (the ``onsets`` of a
        loaded dataset), increasing. Epochs are drawn at these times, so the time axis is
        the recording's, in hours from its start, and spans the first to the last epoch.
        Each epoch is drawn from its onset to the next one; where the next onset is more
        than ``epoch_seconds`` later (by over 1 %: onsets rounded to whole samples do not
        count; epochs excluded by the loader: movement, unscored, mixed stages) the epoch
        ends after ``epoch_seconds`` and the lines are broken over the gap. ``None``: the
        epochs are taken as consecutive, with no gap, from time 0.
    epoch_seconds : float, default=30
        Length of an epoch in seconds (a finite number > 0).
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when None.
    title : str, optional
        Axes title.
    labels : pair of str, default=("true", "predicted")
        Legend entries of the two lines (a pair even without ``y_pred``).

    Returns
    -------
    ax : matplotlib Axes
        ``ax.lines[0]`` is the scored hypnogram, ``ax.lines[1]`` the predicted one; their
        y-data are the levels of :func:`hypnogram_levels` (one point per epoch start, plus
        one closing point at the end of the last epoch before each gap, then a NaN point
        that breaks the line over the gap).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skseqsleep.plotting import plot_hypnogram
    >>> ax = plot_hypnogram([0, 0, 1, 2, 2, 3, 4], [0, 1, 1, 2, 2, 3, 0])
    >>> len(ax.lines)
    2
    """
    y_true = check_stage_labels(y_true, "y_true")
    if (isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence)
            or len(labels) != 2 or not all(isinstance(lab, str) for lab in labels)):
        raise ValueError("labels must be a pair of str (legend entries of the scored and "
                         f"the predicted hypnogram, e.g. ('scored', 'predicted')); found "
                         f"{labels!r}")
    if not is_positive_finite(epoch_seconds):
        raise ValueError(f"epoch_seconds must be a finite number of seconds > 0 (30 for "
                         f"AASM epochs); found {epoch_seconds!r}")
    series = [(y_true, labels[0])]
    if y_pred is not None:
        y_pred = check_stage_labels(y_pred, "y_pred")
        if y_pred.shape != y_true.shape:
            raise ValueError(f"y_pred has {y_pred.size} epochs but y_true has {y_true.size}; "
                             "a hypnogram compares the same epochs")
        series.append((y_pred, labels[1]))
    if y_true.size == 0:
        raise ValueError("y_true is empty: a hypnogram needs at least one epoch")
    seconds = _check_onsets(onsets, y_true.size, epoch_seconds)
    ax = _new_axes(ax, (10, 3))
    # segments of consecutive epochs: each gets a closing point at the end of its last epoch
    # and a NaN point after it (a break in the line), except the last segment
    ends = np.flatnonzero(np.diff(seconds) > epoch_seconds * 1.01) + 1
    bounds = np.r_[0, ends, y_true.size]
    styles = [{"color": "black", "lw": 1.2}, {"color": "tab:red", "lw": 0.9, "alpha": 0.8}]
    xs, rows = [], []            # the points' times, and the epoch each point shows (-1: break)
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        if k:
            xs.append([np.nan])
            rows.append([-1])
        xs.append(np.append(seconds[a:b], seconds[b - 1] + epoch_seconds))
        rows.append(np.append(np.arange(a, b), b - 1))
    x, rows = np.concatenate(xs) / 3600.0, np.concatenate(rows)
    for (y, label), style in zip(series, styles):
        levels = hypnogram_levels(y).astype(np.float64)
        ax.step(x, np.where(rows < 0, np.nan, levels[rows]), where="post", label=label,
                **style)
    hours = np.array([seconds[0], seconds[-1] + epoch_seconds]) / 3600.0
    ax.set_yticks(range(len(STAGES)))
    ax.set_yticklabels(HYPNOGRAM_ORDER[::-1])
    ax.set_ylim(-0.5, len(STAGES) - 0.5)
    ax.set_xlim(hours[0], hours[-1])
    ax.set_xlabel("time (h)" if onsets is None else "time from the start of the recording (h)")
    ax.set_ylabel("stage")
    if title:
        ax.set_title(title)
    if len(series) > 1:
        ax.legend(loc="upper right", fontsize="small")
    return ax


def _check_onsets(onsets, n_epochs: int, epoch_seconds: float) -> np.ndarray:
    """Epoch start times in seconds (consecutive epochs from 0 when None)."""
    if onsets is None:
        return np.arange(n_epochs) * float(epoch_seconds)
    t = np.asarray(onsets)
    if t.dtype.kind not in "iuf":
        raise ValueError(f"onsets must be numbers of seconds, one per epoch; found dtype "
                         f"{t.dtype}")
    if t.shape != (n_epochs,):
        raise ValueError(f"onsets has shape {t.shape} but y_true has {n_epochs} epochs; "
                         "give one onset (s) per epoch")
    t = t.astype(np.float64)
    if not np.isfinite(t).all():
        raise ValueError("onsets must be finite numbers of seconds; found NaN or infinity at "
                         f"epochs {np.flatnonzero(~np.isfinite(t))[:5].tolist()}")
    back = np.flatnonzero(np.diff(t) <= 0)
    if len(back):
        i = int(back[0])
        raise ValueError(f"onsets must increase (epochs in time order); found {t[i]:g} s then "
                         f"{t[i + 1]:g} s at epochs {i} and {i + 1}")
    return t


def plot_confusion_matrix(cm, *, normalize: bool = True, ax=None, title: str | None = None,
                          stage_names: Sequence[str] = STAGES, cmap: str = "Blues"):
    """Draw a 5x5 stage confusion matrix (rows: scored stage, columns: predicted stage).

    Parameters
    ----------
    cm : array-like of int, shape (n_stages, n_stages)
        Raw counts; ``cm[i, j]`` = epochs of scored stage i predicted as stage j (e.g.
        ``sklearn.metrics.confusion_matrix(y_true, y_pred)`` without ``normalize``). Floats
        holding whole numbers are accepted; fractions (an already normalised matrix),
        NaN, infinities, negative values, booleans and strings are a :class:`ValueError`:
        the rows are normalised here, with ``normalize=True``.
    normalize : bool, default=True
        Colour by row-normalised fractions (per-stage sensitivity on the diagonal). Cells are
        always annotated with the counts, and with the row percentage when normalised.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when None.
    title : str, optional
        Axes title.
    stage_names : sequence of str, default=STAGES
        Tick labels.
    cmap : str, default="Blues"
        Colour map.

    Returns
    -------
    ax : matplotlib Axes
        ``ax.texts`` holds one annotation per cell, row by row.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skseqsleep.plotting import plot_confusion_matrix
    >>> ax = plot_confusion_matrix(np.diag([5, 1, 9, 3, 4]))
    >>> ax.texts[0].get_text().splitlines()[0]
    '5'
    """
    cm = np.asarray(cm)
    k = len(stage_names)
    if cm.shape != (k, k):
        raise ValueError(f"cm must be a ({k}, {k}) matrix of counts (rows: scored stage, "
                         f"columns: predicted stage); got shape {cm.shape}")
    cm = _check_counts(cm)
    ax = _new_axes(ax, (4.2, 3.8))
    row_sums = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, row_sums, out=np.zeros(cm.shape, dtype=float), where=row_sums > 0)
    values = frac if normalize else cm
    im = ax.imshow(values, cmap=cmap, vmin=0, vmax=1 if normalize else max(cm.max(), 1))
    threshold = (1 if normalize else max(cm.max(), 1)) / 2
    for i in range(k):
        for j in range(k):
            text = f"{int(cm[i, j])}"
            if normalize:
                text += f"\n{100 * frac[i, j]:.0f}%"
            ax.text(j, i, text, ha="center", va="center", fontsize="small",
                    color="white" if values[i, j] > threshold else "black")
    ax.set_xticks(range(k))
    ax.set_xticklabels(stage_names)
    ax.set_yticks(range(k))
    ax.set_yticklabels(stage_names)
    ax.set_xlabel("predicted stage")
    ax.set_ylabel("scored stage")
    if title:
        ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax


def _check_counts(cm: np.ndarray) -> np.ndarray:
    """``cm`` as an int64 array of counts, or a ValueError saying what was found."""
    expected = ("cm must hold raw counts (finite, non-negative whole numbers, e.g. "
                "sklearn.metrics.confusion_matrix(y_true, y_pred) without normalize=); rows "
                "are normalised here with normalize=True")
    if cm.dtype.kind not in "iuf":
        raise ValueError(f"{expected}; found dtype {cm.dtype} (first row "
                         f"{cm[0].tolist() if cm.size else []})")
    if cm.dtype.kind == "f":
        finite = np.isfinite(cm)
        if not finite.all():
            raise ValueError(f"{expected}; found {int((~finite).sum())} non-finite value(s), "
                             f"e.g. {cm[~finite][:3].tolist()}")
        whole = cm == np.round(cm)
        if not whole.all():
            hint = (" (a normalised matrix: its rows sum to 1)"
                    if np.allclose(cm.sum(axis=1)[cm.sum(axis=1) > 0], 1) else "")
            raise ValueError(f"{expected}; found {int((~whole).sum())} non-integral value(s), "
                             f"e.g. {cm[~whole][:3].tolist()}{hint}")
    if np.any(cm < 0):
        raise ValueError(f"{expected}; cm holds negative counts, e.g. "
                         f"{cm[cm < 0][:3].tolist()}")
    return cm.astype(np.int64)


def _as_folds(histories, name: str, key: str) -> list:
    """The validation histories of the folds, checked; a single history is one fold."""
    expected = (f"{name} must be a list of validation histories, one per fold, each a list "
                f"of dicts with 'step' and {key!r} (a fitted classifier's "
                "validation_history_); a single history counts as one fold")
    if isinstance(histories, (str, bytes, Mapping)) or not isinstance(histories, Sequence):
        raise TypeError(f"{expected}; found {type(histories).__name__}")
    histories = list(histories)
    is_entry = [isinstance(h, Mapping) for h in histories]
    if histories and all(is_entry):
        histories = [histories]  # one history: one fold
    elif any(is_entry):
        i = is_entry.index(True)
        raise TypeError(f"{name} mixes histories and history entries (fold {i} is a dict); "
                        f"{expected}")
    folds = []
    for i, h in enumerate(histories):
        if isinstance(h, (str, bytes)) or not isinstance(h, Sequence):
            raise TypeError(f"{name}[{i}] must be a validation history (a list of dicts with "
                            f"'step' and {key!r}); found {type(h).__name__}")
        for j, rec in enumerate(h):
            where = f"{name}[{i}][{j}]"
            if not isinstance(rec, Mapping):
                raise TypeError(f"{where} must be a dict with 'step' and {key!r}; found "
                                f"{type(rec).__name__}")
            if "step" not in rec or key not in rec:
                raise ValueError(f"validation history entry {j} lacks 'step' or {key!r}: "
                                 f"{dict(rec)} ({where})")
            step, value = rec["step"], rec[key]
            if (not is_real(step)
                    or not np.isfinite(step) or step != round(step)):
                raise ValueError(f"{where}: 'step' must be a whole number, found {step!r}")
            if not is_real(value) or not np.isfinite(value):
                raise ValueError(f"{where}: {key!r} must be a finite number, found {value!r}")
        folds.append(h)
    return folds


def mean_curve(histories: Sequence[Sequence[Mapping[str, Any]]], key: str = "valid_acc"):
    """Average validation curves of several folds at each training step.

    Parameters
    ----------
    histories : sequence of sequences of dict
        One validation history per fold, each a list of dicts with at least ``step`` (a whole
        number) and ``key`` (a finite number): the ``validation_history_`` of a fitted
        :class:`~skseqsleep.SeqSleepClassifier`. A single history (a list of dicts) is taken
        as one fold. Anything else is a :class:`TypeError` or :class:`ValueError` naming the
        fold and entry.
    key : str, default="valid_acc"
        The value to average.

    Returns
    -------
    steps : ndarray of int
        The sorted union of the steps of all folds.
    mean : ndarray of float
        Mean of ``key`` over the folds that validated at that step (folds stopped early
        do not contribute after their last validation).
    n_folds : ndarray of int
        How many folds contributed to each step.

    Examples
    --------
    >>> from skseqsleep.plotting import mean_curve
    >>> h1 = [{"step": 10, "valid_acc": 0.5}, {"step": 20, "valid_acc": 0.7}]
    >>> h2 = [{"step": 10, "valid_acc": 0.3}]
    >>> steps, mean, n = mean_curve([h1, h2])
    >>> steps.tolist(), mean.tolist(), n.tolist()
    ([10, 20], [0.4, 0.7], [2, 1])
    """
    return _mean_curve(_as_folds(histories, "histories", key), key)


def _mean_curve(folds: list, key: str):
    """:func:`mean_curve` of folds already checked by :func:`_as_folds`."""
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for h in folds:
        for rec in h:
            step = int(rec["step"])
            sums[step] = sums.get(step, 0.0) + float(rec[key])
            counts[step] = counts.get(step, 0) + 1
    steps = np.array(sorted(sums), dtype=np.int64)
    mean = np.array([sums[s] / counts[s] for s in steps], dtype=float)
    n = np.array([counts[s] for s in steps], dtype=np.int64)
    return steps, mean, n


def plot_finetuning_curves(curves: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]], *,
                           key: str = "valid_acc", ax=None, title: str | None = None):
    """Validation accuracy against training step, one line per strategy (TBME 2020, Fig. 3).

    Parameters
    ----------
    curves : mapping of str to list of validation histories
        For each strategy label, the validation history of every fold (see
        :func:`mean_curve`); the line is the mean over folds at each step. A single history
        (e.g. ``{"softmax": clf.validation_history_}``) is taken as one fold. Strategies
        whose histories are all empty (direct transfer: no training) are skipped. Any other
        structure is a :class:`TypeError` or :class:`ValueError` naming the strategy, fold
        and entry.
    key : str, default="valid_acc"
        Which value of the history to draw (``"valid_loss"`` also works).
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when None.
    title : str, optional
        Axes title.

    Returns
    -------
    ax : matplotlib Axes
        One line per drawn strategy, labelled with the strategy.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skseqsleep.plotting import plot_finetuning_curves
    >>> hist = [{"step": 10, "valid_acc": 0.6}, {"step": 20, "valid_acc": 0.8}]
    >>> ax = plot_finetuning_curves({"softmax": [hist], "direct transfer": [[]]})
    >>> [line.get_label() for line in ax.lines]
    ['softmax']
    """
    if not isinstance(curves, Mapping):
        raise TypeError("curves must be a mapping {strategy: [history of each fold]}; "
                        f"got {type(curves).__name__}")
    lines = []
    for label, histories in curves.items():
        folds = _as_folds(histories, f"curves[{label!r}]", key)
        lines.append((label, *_mean_curve(folds, key)[:2]))
    ax = _new_axes(ax, (6, 4))
    for label, steps, mean in lines:
        if steps.size == 0:
            continue
        ax.plot(steps, 100 * mean if key.endswith("acc") else mean, marker=".", ms=3,
                label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("validation accuracy (%)" if key.endswith("acc") else key)
    if title:
        ax.set_title(title)
    if ax.lines:
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax
