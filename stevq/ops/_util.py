"""Helpers shared by the primitives: the namespace of raw arrays, un-broadcasting, masks, and the
names of operands on the wrong device."""

import functools
import inspect
import math

import numpy as np
from autograd.extend import primitive as autograd_primitive

from .. import backend
from ..autodiff import isbox
from ..backend import namespace_of
from ..validate import on_backend


def named_operands(*names, rest=None):
    """Decorate a primitive's computation: every array among its arguments must belong to the active
    backend (``validate.on_backend``), else a TypeError names the argument (a NumPy array under CuPy
    would otherwise be computed on the host, or fail with CuPy's generic "Unsupported type").
    ``names``: the positional parameters; ``rest``: the name of a ``*args`` parameter, whose items
    are named ``rest[i]``. A type lookup per operand: no value is read."""

    def decorate(function):
        @functools.wraps(function)
        def checked(*args, **kwargs):
            active = backend.xp()
            for index, value in enumerate(args):
                on_backend(value, names[index] if index < len(names) else f"{rest}[{index - len(names)}]", active)
            for name, value in kwargs.items():
                on_backend(value, name, active)
            return function(*args, **kwargs)

        return checked

    return decorate


def primitive(function):
    """``autograd.extend.primitive`` of ``function`` with its array arguments checked
    (``named_operands``, by the names of its parameters)."""
    parameters = inspect.signature(function).parameters.values()
    names = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    rest = next((p.name for p in parameters if p.kind is p.VAR_POSITIONAL), None)
    return autograd_primitive(named_operands(*names, rest=rest)(function))


def traced_once_at_most(x):
    """Whether ``x`` is a plain array or is traced by one gradient only (not a gradient of a gradient).
    Only then may a primitive take a quantity computed from the value of x (``getval``) as a
    constant for its derivative: under a second gradient that quantity must itself depend on x."""
    return not (isbox(x) and isbox(x._value))


def shape_of(x):
    """Shape of an array, ``()`` for a Python scalar."""
    return tuple(getattr(x, "shape", ()))


def unbroadcast(g, like):
    """Sum ``g`` down to the shape of ``like``: the adjoint of NumPy broadcasting.

    Broadcasting copies values along new leading axes and along axes of length 1, so the gradient
    of the copy is the sum over those axes (``sum_axes``).
    """
    target = shape_of(like)
    if tuple(g.shape) == target:
        return g
    extra = g.ndim - len(target)
    axes = tuple(range(extra)) + tuple(extra + i for i, n in enumerate(target) if n == 1 and g.shape[extra + i] != 1)
    summed = sum_axes(g, axes)
    return namespace_of(g).reshape(summed, target)


def sum_axes(g, axes):
    """The sum of ``g`` over ``axes`` (the other axes kept, in order).

    A bias gradient sums many rows of a few numbers (a conv layer's: N H W rows of C channels). NumPy's
    reduction over such axes runs one short loop per row; where the summed and the kept axes are
    each one run of memory (``g`` C-ordered once they are put side by side: a channels-last
    activation seen as NCHW, or any contiguous array), the sum is a matrix-vector product with a
    vector of ones instead, which BLAS does in one pass (benchmarks/README.md, "Bias gradients").
    Elsewhere (other backends, integer arrays, scattered memory) it is the namespace's own ``sum``."""
    xp = namespace_of(g)
    if not axes:
        return g
    kept = tuple(a for a in range(g.ndim) if a not in axes)
    if xp is np and kept and g.dtype.kind == "f":
        kept_shape = tuple(g.shape[a] for a in kept)
        for order, rows_first in ((axes + kept, True), (kept + axes, False)):
            moved = np.transpose(g, order)
            if moved.flags.c_contiguous:
                table = moved.reshape((-1, math.prod(kept_shape)) if rows_first else (math.prod(kept_shape), -1))
                ones = np.ones(table.shape[0] if rows_first else table.shape[1], dtype=g.dtype)
                return (ones @ table if rows_first else table @ ones).reshape(kept_shape)
    return xp.sum(g, axis=axes)


def as_float(condition, like):
    """A boolean array as 0/1 in the floating dtype of ``like``."""
    xp = namespace_of(like)
    return xp.astype(condition, like.dtype)


def normalize_axis(axis, ndim):
    """``axis`` (None, int or tuple) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim for a in axis))


def keepdims_shape(shape, axis):
    """``shape`` with the reduced ``axis`` kept as length-1 axes."""
    axes = normalize_axis(axis, len(shape))
    return tuple(1 if i in axes else n for i, n in enumerate(shape))
