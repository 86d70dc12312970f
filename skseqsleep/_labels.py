"""Checking arrays of stage labels (private; used by the classifier, metrics and plots)."""

from __future__ import annotations

import numpy as np

from skseqsleep._constants import N_STAGES


def check_stage_labels(labels, name: str, *, n_classes: int = N_STAGES,
                       n_epochs: int | None = None) -> np.ndarray:
    """``labels`` as a 1-D int64 array of stage labels ``0..n_classes - 1``, or a clear error.

    Integer arrays and floats holding whole numbers are accepted; anything else (non-integral
    or non-finite floats, strings, booleans, other shapes) is a ``ValueError`` naming the
    argument and what was found, never a silent cast (``2.7`` is not truncated to N2).

    Parameters
    ----------
    labels : array-like
        Stage labels, one per epoch (0=W, 1=N1, 2=N2, 3=N3, 4=REM).
    name : str
        The argument, as the messages name it (``"y"``, ``"y_true"``...).
    n_classes : int, default=5
        Labels must lie in ``0..n_classes - 1``.
    n_epochs : int, optional
        The number of labels expected (one per epoch of ``X``).

    Returns
    -------
    labels : ndarray of int64, shape (n_epochs,)

    Examples
    --------
    >>> from skseqsleep._labels import check_stage_labels
    >>> check_stage_labels([0, 2.0, 4], "y").tolist()
    [0, 2, 4]
    >>> check_stage_labels([0, 2.7], "y_true")
    Traceback (most recent call last):
    ValueError: y_true must be a 1-D array of integer stage labels 0..4, found 1 non-integral or non-finite value(s), e.g. [2.7]
    """
    arr = np.asarray(labels)
    expected = f"{name} must be a 1-D array of integer stage labels 0..{n_classes - 1}"
    if n_epochs is not None and (arr.ndim != 1 or len(arr) != n_epochs):
        raise ValueError(f"{name} must have one stage label per epoch: expected shape "
                         f"({n_epochs},), got {arr.shape}")
    if arr.ndim != 1:
        raise ValueError(f"{expected}, got an array of shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{expected}, got dtype {arr.dtype} (first values "
                         f"{arr[:5].tolist()})")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise ValueError(f"{expected}, found {int(bad.sum())} non-integral or non-finite "
                             f"value(s), e.g. {arr[bad][:5].tolist()}")
    # the range is checked on the values as given: casting first turned uint64 2**64-1 into
    # -1 (the package's "excluded" marker) and 1e30 into an arbitrary integer
    out = (arr < 0) | (arr >= n_classes)
    if out.any():
        raise ValueError(f"{name} must hold stage labels 0..{n_classes - 1}; found "
                         f"{np.unique(arr[out])[:5].tolist()} (e.g. at epoch "
                         f"{int(np.flatnonzero(out)[0])})")
    return arr.astype(np.int64)
