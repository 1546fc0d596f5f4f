"""Checks at the public boundary: every error names the argument and what was expected.

They look at values only (through ``getval``), never at the trace, so they cost one reduction for
the finiteness check and nothing in the backward pass.
"""
import numbers

import numpy as np
from autograd.tracer import getval

from .backend import is_array, namespace_of


class NonFiniteInputError(ValueError):
    """An input array holds NaN or inf (a ValueError, so callers can also catch it as one)."""


def _is_float_dtype(xp, dtype):
    return dtype in (xp.float32, xp.float64) or (xp is np and np.issubdtype(dtype, np.floating))


def _is_int_dtype(xp, dtype):
    return dtype in (xp.int8, xp.int16, xp.int32, xp.int64, xp.uint8, xp.uint16, xp.uint32, xp.uint64)


def array(x, name, ndim=None, dtype="float", finite=True, shape=None):
    """Check that ``x`` is an array of the active backend with the stated properties.

    ``ndim`` an int or a tuple of allowed ints; ``dtype`` "float", "int" or None (any);
    ``shape`` a tuple where None means any length. Returns the (possibly boxed) ``x`` unchanged.
    """
    value = getval(x)
    if not is_array(value):
        raise TypeError(f"{name}: expected an array of the active backend, got {type(value).__name__} "
                        "(convert host data with stevq.asarray)")
    xp = namespace_of(value)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed:
            raise ValueError(f"{name}: expected {' or '.join(map(str, allowed))} dimensions, "
                             f"got shape {tuple(value.shape)}")
    if shape is not None:
        if len(shape) != value.ndim or any(s is not None and s != n for s, n in zip(shape, value.shape)):
            sizes = ["any" if s is None else str(s) for s in shape]
            wanted = "(" + ", ".join(sizes) + ("," if len(sizes) == 1 else "") + ")"
            raise ValueError(f"{name}: expected shape {wanted}, got {tuple(value.shape)}")
    if dtype == "float" and not _is_float_dtype(xp, value.dtype):
        raise TypeError(f"{name}: expected a floating-point array (float32 or float64), got dtype "
                        f"{value.dtype}")
    if dtype == "int" and not _is_int_dtype(xp, value.dtype):
        raise TypeError(f"{name}: expected an integer array, got dtype {value.dtype}")
    if finite and dtype == "float" and not bool(xp.all(xp.isfinite(value))):
        raise NonFiniteInputError(f"{name}: contains NaN or inf")
    return x


def same_last_dim(a, a_name, b, b_name):
    """``a`` and ``b`` must agree in their last dimension (the embedding dimension)."""
    if getval(a).shape[-1] != getval(b).shape[-1]:
        raise ValueError(f"{b_name}: last dimension {getval(b).shape[-1]} does not match {a_name}'s "
                         f"{getval(a).shape[-1]}")


def number(x, name, low=None, high=None, integer=False, low_inclusive=True, high_inclusive=True):
    """A Python (or NumPy) real number within [low, high] (ends excluded on request);
    ``integer`` demands an int."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(x, bool) or not isinstance(x, kind):
        raise TypeError(f"{name}: expected {'an integer' if integer else 'a real number'}, got {x!r}")
    if not np.isfinite(x):
        raise ValueError(f"{name}: expected a finite number, got {x!r}")
    if low is not None and (x < low or (x == low and not low_inclusive)):
        raise ValueError(f"{name}: expected a value {'>=' if low_inclusive else '>'} {low}, got {x!r}")
    if high is not None and (x > high or (x == high and not high_inclusive)):
        raise ValueError(f"{name}: expected a value {'<=' if high_inclusive else '<'} {high}, got {x!r}")
    return x


def choice(x, name, options):
    """``x`` must be one of ``options``."""
    if x not in options:
        raise ValueError(f"{name}: expected one of {tuple(options)}, got {x!r}")
    return x
