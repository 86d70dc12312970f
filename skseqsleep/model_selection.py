"""Subject-wise validation splitters, recording-aware scorers and pooled sleep-staging metrics.

* :class:`GroupHoldout` and :class:`PredefinedGroupSplit` hold out whole subjects for the inner
  validation set of :class:`~skseqsleep.SeqSleepClassifier` (its ``train_split``), as in the
  finetuning protocol (REFERENCE §4, §6: per fold 15 training and 4 validation subjects).
* :func:`make_recording_scorer` / :data:`SCORERS` / :func:`get_scorer` build scikit-learn
  scorers that predict every test recording on its own (sequence windows never cross two
  recordings, REFERENCE §5).
* :func:`sleep_metrics` computes the five pooled metrics of REFERENCE §6 (accuracy, Cohen's
  kappa, macro F1, macro sensitivity, macro specificity), the confusion matrix and a per-stage
  report.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.metadata_routing import MetadataRequest

from skseqsleep._checks import check_epoch_labels, check_positive_int
from skseqsleep._constants import N_STAGES, STAGES
from skseqsleep._labels import check_stage_labels

__all__ = [
    "SCORERS",
    "GroupHoldout",
    "PredefinedGroupSplit",
    "get_scorer",
    "make_recording_scorer",
    "sleep_metrics",
]


# --------------------------------------------------------------------------------------------
# Inner validation splitters (skorch ``train_split``)
# --------------------------------------------------------------------------------------------

def _dataset_groups(dataset, groups):
    """Groups of a dataset given to ``train_split`` (``groups`` argument wins)."""
    if groups is None:
        groups = getattr(dataset, "epoch_groups", None)
    if groups is None:
        raise ValueError(
            "a subject-wise validation split needs the subject of every epoch: pass "
            "groups=... to SeqSleepClassifier.fit (or route it with metadata routing); "
            "got no groups")
    return groups


class _GroupSplitBase:
    """Shared machinery: ``split`` yields one (train, valid) pair; ``__call__`` splits a dataset."""

    def _valid_groups(self, unique_groups: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Return the number of splits (always 1)."""
        return 1

    def split(self, X, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield one ``(train_index, valid_index)`` pair of epoch indices.

        Parameters
        ----------
        X : array-like of shape (n_epochs, ...)
            Epochs (only its length is used).
        y : ignored
        groups : array-like of shape (n_epochs,)
            Subject of every epoch.
        """
        if groups is None:
            raise ValueError(
                f"{type(self).__name__}.split needs the subject of every epoch: pass groups "
                "(cross_validate(..., groups=...), or params={'groups': ...} with metadata "
                "routing enabled); got no groups")
        # 1-D, one per epoch, no None or NaN (a NaN subject would never be drawn for
        # validation and would silently shrink the validation set)
        groups = check_epoch_labels("groups", groups, len(X), "X")
        valid = self._valid_groups(np.unique(groups))
        is_valid = np.isin(groups, valid)
        yield np.flatnonzero(~is_valid), np.flatnonzero(is_valid)

    def get_metadata_routing(self) -> MetadataRequest:
        """Request ``groups`` for ``split`` (scikit-learn metadata routing), so that the
        splitter works as ``cv=`` with routing enabled, as scikit-learn's group splitters do."""
        request = MetadataRequest(owner=type(self).__name__)
        request.split.add_request(param="groups", alias=True)
        return request

    def __call__(self, dataset, y=None, groups=None, **fit_params):
        """Split a dataset of recordings into training and validation subjects.

        Used by :class:`~skseqsleep.SeqSleepClassifier` as skorch ``train_split``: ``dataset``
        is the classifier's dataset of recordings (it carries ``groups``). Other datasets are
        split with :func:`torch.utils.data.Subset`.
        """
        groups = _dataset_groups(dataset, groups)
        if hasattr(dataset, "split_groups"):   # its epochs' subjects checked when it was made
            return dataset.split_groups(self._valid_groups(np.unique(groups)))
        # one subject per item, of one type, no None or NaN
        groups = check_epoch_labels("groups", groups, len(dataset), "the dataset")
        valid = self._valid_groups(np.unique(groups))
        from torch.utils.data import Subset

        is_valid = np.isin(groups, valid)
        return (Subset(dataset, np.flatnonzero(~is_valid)),
                Subset(dataset, np.flatnonzero(is_valid)))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


class GroupHoldout(_GroupSplitBase):
    """Hold out ``n_valid_groups`` random subjects as the inner validation set.

    Parameters
    ----------
    n_valid_groups : int, default=4
        Number of subjects (groups) held out for validation (REFERENCE §6: 4 of the 19
        training subjects of a Sleep-EDF-SC-20 fold).
    random_state : int, RandomState instance or None, default=None
        Draws the validation subjects. ``None`` as the ``train_split`` of a
        :class:`~skseqsleep.SeqSleepClassifier`: each ``fit`` uses a copy of the splitter
        seeded from the classifier's ``random_state`` (same classifier seed, same validation
        subjects); ``None`` elsewhere: numpy's global random generator.

    Examples
    --------
    >>> import numpy as np
    >>> from skseqsleep.model_selection import GroupHoldout
    >>> groups = np.repeat([0, 1, 2, 3, 4], 3)
    >>> train, valid = next(GroupHoldout(n_valid_groups=2, random_state=0).split(groups, groups=groups))
    >>> len(np.unique(groups[valid]))
    2
    """

    def __init__(self, n_valid_groups: int = 4, random_state=None):
        self.n_valid_groups = n_valid_groups
        self.random_state = random_state

    def _valid_groups(self, unique_groups):
        n = self.n_valid_groups
        check_positive_int("n_valid_groups", n)
        if n >= len(unique_groups):
            raise ValueError(
                f"GroupHoldout(n_valid_groups={n}) needs more than {n} subjects in the "
                f"training data, found {len(unique_groups)}: {list(unique_groups)}")
        rng = check_random_state(self.random_state)
        return rng.choice(unique_groups, size=n, replace=False)


class PredefinedGroupSplit(_GroupSplitBase):
    """Use an explicit list of validation subjects (e.g. the published split).

    Parameters
    ----------
    valid_groups : sequence or mapping
        Either the validation subjects, or a mapping ``{test subject: validation subjects}``
        for use inside an outer leave-one-subject-out loop: the fold is recognised as the
        unique key that is absent from the training data (its subject is the test subject),
        so one splitter reproduces every fold of ``sleepedf_sc20_folds.csv`` (REFERENCE §6).

    Examples
    --------
    >>> import numpy as np
    >>> from skseqsleep.model_selection import PredefinedGroupSplit
    >>> groups = np.repeat([0, 1, 2], 2)
    >>> train, valid = next(PredefinedGroupSplit([2]).split(groups, groups=groups))
    >>> valid
    array([4, 5])
    >>> split = PredefinedGroupSplit({0: [1], 1: [2], 2: [0]})   # test subject -> validation
    >>> train, valid = next(split.split(groups[2:], groups=groups[2:]))  # fold of subject 0
    >>> groups[2:][valid]
    array([1, 1])
    """

    def __init__(self, valid_groups: Sequence | Mapping):
        self.valid_groups = valid_groups

    def _valid_groups(self, unique_groups):
        present = set(unique_groups.tolist())
        if isinstance(self.valid_groups, Mapping):
            absent = [k for k in self.valid_groups if k not in present]
            if len(absent) != 1:
                raise ValueError(
                    "PredefinedGroupSplit with a mapping {test subject: validation subjects} "
                    "identifies the fold by the one key absent from the training data; found "
                    f"{len(absent)} absent keys ({absent[:5]}) among training subjects "
                    f"{sorted(present)[:10]}...")
            wanted = _subject_list(self.valid_groups[absent[0]],
                                   f"valid_groups[{absent[0]!r}]")
        else:
            wanted = _subject_list(self.valid_groups, "valid_groups")
        wanted = list(dict.fromkeys(wanted))          # a subject named twice counts once
        missing = [g for g in wanted if g not in present]
        found = [g for g in wanted if g in present]
        if not found:
            raise ValueError(
                f"none of the validation subjects {wanted} is in the training data "
                f"(subjects present: {sorted(present)})")
        if missing:
            warnings.warn(f"validation subjects {missing} are not in the training data; "
                          f"validating on {found}", UserWarning, stacklevel=3)
        if len(found) == len(present):
            raise ValueError(f"every training subject would be a validation subject: "
                             f"{sorted(present)} are all in valid_groups")
        return np.asarray(found, dtype=unique_groups.dtype)


def _subject_list(value, name: str) -> list:
    """Validation subjects as a list; a string or a scalar is refused, not iterated."""
    if isinstance(value, (str, bytes)) or np.ndim(value) == 0:
        hint = (f" (for one subject write [{value!r}])"
                if isinstance(value, (str, bytes, numbers.Number)) else "")
        raise TypeError(f"PredefinedGroupSplit: {name} must be a list of subjects, got "
                        f"{value!r}{hint}")
    return list(value)


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------

def _confusion(y_true, y_pred, n_classes):
    y_true = check_stage_labels(y_true, "y_true", n_classes=n_classes)
    y_pred = check_stage_labels(y_pred, "y_pred", n_classes=n_classes)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} epochs but y_pred has {y_pred.size}")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def _per_class(cm):
    cm = cm.astype(float)
    n = cm.sum()
    tp = np.diag(cm)
    fn = cm.sum(1) - tp
    fp = cm.sum(0) - tp
    tn = n - tp - fn - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        spec = np.where(tn + fp > 0, tn / (tn + fp), np.nan)
        prec = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    return sens, spec, prec, f1


def _kappa(cm):
    cm = cm.astype(float)
    n = cm.sum()
    if n == 0:
        return np.nan
    po = np.trace(cm) / n
    pe = (cm.sum(0) * cm.sum(1)).sum() / n**2
    return 1.0 if pe == 1 else (po - pe) / (1 - pe)


def _macro(values, present):
    return float(np.mean(values[present])) if present.any() else float("nan")


def sleep_metrics(y_true, y_pred, *, n_classes: int = N_STAGES) -> dict[str, Any]:
    """Pooled sleep-staging metrics of REFERENCE §6.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_epochs,)
        Stage labels 0..4 (W, N1, N2, N3, REM), e.g. the predictions of all folds pooled.
    n_classes : int, default=5

    Returns
    -------
    dict
        ``accuracy``, ``kappa`` (Cohen's), ``macro_f1``, ``macro_sensitivity``,
        ``macro_specificity`` (floats in [0, 1], kappa in [-1, 1]); ``confusion_matrix``
        (rows = true stage, columns = predicted stage); ``per_class``: for every stage name a
        dict of ``sensitivity`` (recall), ``specificity``, ``precision``, ``f1``, ``support``;
        ``n_epochs``. Macro means are unweighted means over the stages that occur in
        ``y_true`` or ``y_pred`` (a stage absent from both has no defined F1 and is left out,
        rather than counted as 0). When ``y_true`` and ``y_pred`` are both one and the same
        stage throughout (chance agreement 1), kappa is 1.0 (perfect agreement), where
        :func:`sklearn.metrics.cohen_kappa_score` gives NaN.

    Examples
    --------
    >>> from skseqsleep.model_selection import sleep_metrics
    >>> m = sleep_metrics([0, 0, 2, 2], [0, 2, 2, 2])
    >>> m["accuracy"], m["confusion_matrix"][0].tolist()
    (0.75, [1, 0, 1, 0, 0])
    """
    cm = _confusion(y_true, y_pred, n_classes)
    n = cm.sum()
    if n == 0:
        raise ValueError("sleep_metrics needs at least one epoch, got 0")
    sens, spec, prec, f1 = _per_class(cm)
    present = (cm.sum(0) + cm.sum(1)) > 0
    names = list(STAGES) if n_classes == len(STAGES) else [str(i) for i in range(n_classes)]
    per_class = {
        names[k]: {"sensitivity": float(sens[k]), "specificity": float(spec[k]),
                   "precision": float(prec[k]), "f1": float(f1[k]),
                   "support": int(cm[k].sum())}
        for k in range(n_classes)
    }
    return {
        "accuracy": float(np.trace(cm) / n),
        "kappa": float(_kappa(cm)),
        "macro_f1": _macro(np.nan_to_num(f1), present),
        "macro_sensitivity": _macro(np.nan_to_num(sens), present),
        "macro_specificity": _macro(np.nan_to_num(spec), present),
        "confusion_matrix": cm,
        "per_class": per_class,
        "n_epochs": int(n),
    }


_METRICS = ("accuracy", "kappa", "macro_f1", "macro_sensitivity", "macro_specificity")


# --------------------------------------------------------------------------------------------
# Recording-aware scorers
# --------------------------------------------------------------------------------------------

class RecordingScorer:
    """A scikit-learn scorer that predicts each test recording on its own.

    Called as ``scorer(estimator, X, y, recordings=None, groups=None)``. With metadata routing
    enabled the scorer requests ``recordings`` and ``groups`` for ``score`` (so
    ``cross_validate(..., params={"recordings": r, "groups": g})`` hands it the test fold's
    slices) and passes them to ``estimator.predict``. Without routing scikit-learn gives a
    scorer no metadata: the estimator then falls back to its own rule (one recording per test
    fold, with a warning).

    ``metric`` is one metric name (the scorer returns a float) or a tuple of names (it returns
    a dict ``{name: score}``, which scikit-learn reports as ``test_<name>``; the test fold is
    then predicted once for all of them, where a dict of single-metric scorers predicts it
    once per metric).

    Use :func:`make_recording_scorer` to build one.
    """

    def __init__(self, metric: str | tuple[str, ...]):
        self.metric = metric

    def __call__(self, estimator, X, y_true, recordings=None, groups=None,
                 **kwargs) -> float | dict[str, float]:
        params = {}
        if recordings is not None:
            params["recordings"] = recordings
        if groups is not None:
            params["groups"] = groups
        y_pred = estimator.predict(X, **params)
        scores = sleep_metrics(y_true, y_pred)
        if isinstance(self.metric, str):
            return scores[self.metric]
        return {m: scores[m] for m in self.metric}

    def get_metadata_routing(self) -> MetadataRequest:
        """Request ``recordings`` and ``groups`` for ``score`` (scikit-learn metadata routing)."""
        request = MetadataRequest(owner=type(self).__name__)
        request.score.add_request(param="recordings", alias=True)
        request.score.add_request(param="groups", alias=True)
        return request

    def __repr__(self) -> str:
        return f"make_recording_scorer({self.metric!r})"


def make_recording_scorer(metric: str | Sequence[str]) -> Callable:
    """Build a recording-aware scorer for one or several of the five metrics of REFERENCE §6.

    Parameters
    ----------
    metric : str or sequence of str
        One of ``"accuracy"``, ``"kappa"``, ``"macro_f1"``, ``"macro_sensitivity"``,
        ``"macro_specificity"``, or a sequence of them. With a sequence the scorer predicts
        each test fold once and returns a dict of scores (``cross_validate`` reports
        ``test_<metric>`` for each; pass ``refit=<metric>`` to ``GridSearchCV``).

    Returns
    -------
    RecordingScorer
        Usable as ``scoring=`` in ``cross_validate`` / ``GridSearchCV``; greater is better.

    Examples
    --------
    >>> from skseqsleep.model_selection import make_recording_scorer
    >>> make_recording_scorer("kappa")
    make_recording_scorer('kappa')
    >>> make_recording_scorer(["accuracy", "kappa"])
    make_recording_scorer(('accuracy', 'kappa'))
    """
    if isinstance(metric, str):
        if metric not in _METRICS:
            raise ValueError(f"unknown sleep metric {metric!r}; expected one of {_METRICS}")
        return RecordingScorer(metric)
    if not isinstance(metric, Sequence):
        raise TypeError(f"metric must be a metric name or a sequence of them, got "
                        f"{type(metric).__name__}")
    names = tuple(metric)
    unknown = [m for m in names if m not in _METRICS]
    if unknown:
        raise ValueError(f"unknown sleep metric(s) {unknown}; expected names from {_METRICS}")
    if not names or len(set(names)) != len(names):
        raise ValueError(f"metric must name each metric once and at least one; got {names}")
    return RecordingScorer(names)


#: One recording-aware scorer per metric, keyed by name (``scoring=SCORERS`` predicts each
#: test fold once per metric; ``make_recording_scorer(list(SCORERS))`` predicts it once).
SCORERS: dict[str, RecordingScorer] = {m: RecordingScorer(m) for m in _METRICS}


def get_scorer(name: str) -> RecordingScorer:
    """Return the recording-aware scorer called ``name`` (see :data:`SCORERS`).

    Examples
    --------
    >>> from skseqsleep.model_selection import get_scorer
    >>> get_scorer("macro_f1")
    make_recording_scorer('macro_f1')
    """
    return make_recording_scorer(name)
