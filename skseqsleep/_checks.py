"""Small argument checks shared across the package (torch-free)."""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["check_epoch_labels", "check_positive_int", "is_real", "mixed_types_error"]


def is_real(value) -> bool:
    """Whether ``value`` is a real number (numpy scalars included), not a bool or complex."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_positive_finite(value) -> bool:
    """Whether ``value`` is a real number (not a bool), finite and > 0."""
    return is_real(value) and bool(np.isfinite(value)) and value > 0


def check_positive_int(name: str, value, what: str = "a positive integer") -> int:
    """``value`` as an int if it is a positive integer (not a bool), else a ValueError saying
    that ``name`` must be ``what``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def mixed_types_error(name: str, values) -> ValueError:
    kinds = sorted({type(v).__name__ for v in values})
    return ValueError(f"{name} must hold labels of one type (e.g. all str); found {kinds}")


def check_epoch_labels(name: str, labels, n_epochs: int, what: str) -> np.ndarray:
    """``labels`` as a 1-D array of ``n_epochs`` labels without None or NaN, else a ValueError."""
    if isinstance(labels, (list, tuple)):
        # np.asarray turns [1, "1"] into two equal strings: two recordings would become one
        is_str = [isinstance(v, str) for v in labels]
        if any(is_str) and not all(is_str):
            raise mixed_types_error(name, labels)
    values = np.asarray(labels)
    if values.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of {n_epochs} labels (one per epoch of "
                         f"{what}); found an array of shape {values.shape}")
    if len(values) != n_epochs:
        raise ValueError(f"{name} has {len(values)} entries but {what} has {n_epochs} epochs; "
                         "sample-aligned metadata needs one value per epoch")
    if values.dtype.kind == "f":
        missing = np.isnan(values)
    elif values.dtype.kind == "O":
        missing = np.fromiter((v is None or (isinstance(v, float) and math.isnan(v)) for v in values),
                              dtype=bool, count=len(values))
    else:
        missing = np.zeros(len(values), dtype=bool)
    if missing.any():
        rows = np.flatnonzero(missing)
        more = ", ..." if len(rows) > 5 else ""
        raise ValueError(f"{name} has missing labels (None or NaN) at rows "
                         f"{rows[:5].tolist()}{more} ({len(rows)} in all); every epoch of {what} "
                         "needs a label")
    return values
