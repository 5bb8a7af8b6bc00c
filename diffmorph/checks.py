"""Argument checks shared by every layer: one rule for what counts as an integer or a positive number."""

from __future__ import annotations

import math
import numbers


def is_int(value) -> bool:
    """Whether ``value`` is an integer: a Python ``int`` or a NumPy integer (``np.int64``...), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_positive(value) -> bool:
    """Whether ``value`` is a finite real number > 0 (Python or NumPy), not a bool."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    return (isinstance(value, numbers.Integral) or math.isfinite(value)) and value > 0
