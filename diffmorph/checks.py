"""Argument checks shared by every layer: one rule for integers, numbers and bools.

NumPy scalars count as what they hold (``np.int64(3)`` is an integer, ``np.float32`` a
number, ``np.bool_`` a bool); bools are never integers or numbers.
"""

from __future__ import annotations

import math
import numbers


def is_bool(value) -> bool:
    """Whether ``value`` is a Python bool or a NumPy bool."""
    kind = type(value)
    return isinstance(value, bool) or (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_"))


def is_int(value) -> bool:
    """Whether ``value`` is an integer: a Python ``int`` or a NumPy integer (``np.int64``...), not a bool."""
    return isinstance(value, numbers.Integral) and not is_bool(value)


def is_number(value) -> bool:
    """Whether ``value`` is a real number (Python or NumPy int or float), not a bool."""
    return isinstance(value, numbers.Real) and not is_bool(value)


def is_positive(value) -> bool:
    """Whether ``value`` is a finite real number > 0 (Python or NumPy), not a bool."""
    if not is_number(value):
        return False
    return (isinstance(value, numbers.Integral) or math.isfinite(value)) and value > 0


def as_python(value):
    """A NumPy scalar as the Python int, float or bool it holds; anything else as it is.

    Settings are stored as Python values (they are written to maps files as JSON).
    """
    if type(value).__module__ != "numpy":
        return value
    if is_bool(value):
        return bool(value)
    if is_int(value):
        return int(value)
    if is_number(value):
        return float(value)
    return value
