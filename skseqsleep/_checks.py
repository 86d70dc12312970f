"""Small argument checks shared across the package (torch-free)."""

from __future__ import annotations

import numbers

__all__ = ["check_positive_int", "is_real"]


def is_real(value) -> bool:
    """Whether ``value`` is a real number (numpy scalars included), not a bool or complex."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive_int(name: str, value, what: str = "a positive integer") -> int:
    """``value`` as an int if it is a positive integer (not a bool), else a ValueError saying
    that ``name`` must be ``what``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)
