"""Helpers shared by the primitives: the namespace of raw arrays, un-broadcasting, masks."""
from ..backend import namespace_of


def shape_of(x):
    """Shape of an array, ``()`` for a Python scalar."""
    return tuple(getattr(x, "shape", ()))


def unbroadcast(g, like):
    """Sum ``g`` down to the shape of ``like``: the adjoint of NumPy broadcasting.

    Broadcasting copies values along new leading axes and along axes of length 1, so the gradient
    of the copy is the sum over those axes.
    """
    target = shape_of(like)
    if tuple(g.shape) == target:
        return g
    xp = namespace_of(g)
    extra = g.ndim - len(target)
    if extra > 0:
        g = xp.sum(g, axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(target) if n == 1 and g.shape[i] != 1)
    if axes:
        g = xp.sum(g, axis=axes, keepdims=True)
    return g


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
