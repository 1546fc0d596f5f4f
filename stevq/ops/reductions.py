"""Reductions over axes: sum, mean, max, min, each with its VJP.

The gradient of a reduction is broadcast back over the reduced axes: every element of x received
an equal share of a sum, 1/N of a mean, and all of a max only where it was the maximum (ties share).
"""

import math

from autograd.extend import defvjp

from ..backend import namespace_of
from ._util import as_float, keepdims_shape, normalize_axis, primitive


def _spread(g, x, axis, keepdims):
    """Broadcast a reduced gradient ``g`` back to the shape of ``x``."""
    xp = namespace_of(g, x)
    if not keepdims:
        g = xp.reshape(g, keepdims_shape(x.shape, axis))
    return xp.broadcast_to(g, x.shape)


@primitive
def sum(x, axis=None, keepdims=False):
    """sum of x over ``axis``; d/dx_i = 1."""
    return namespace_of(x).sum(x, axis=axis, keepdims=keepdims)


@primitive
def mean(x, axis=None, keepdims=False):
    """mean of x over ``axis``; d/dx_i = 1/N with N the number of reduced elements."""
    return namespace_of(x).mean(x, axis=axis, keepdims=keepdims)


def _count(x, axis):
    return math.prod(x.shape[a] for a in normalize_axis(axis, x.ndim))


defvjp(sum, lambda ans, x, axis=None, keepdims=False: lambda g: _spread(g, x, axis, keepdims))
defvjp(mean, lambda ans, x, axis=None, keepdims=False: lambda g: _spread(g, x, axis, keepdims) / _count(x, axis))


def _extreme_vjp(ans, x, axis=None, keepdims=False):
    """g flows to the elements equal to the extreme value; tied elements share it equally.
    The share g / ties is computed on the reduced shape, then spread: one full-size pass fewer."""

    def vjp(g):
        xp = namespace_of(g, x)
        at_extreme = as_float(x == _spread(ans, x, axis, keepdims), g)
        ties = xp.sum(at_extreme, axis=normalize_axis(axis, x.ndim), keepdims=True)
        share = (g if keepdims else xp.reshape(g, tuple(ties.shape))) / ties
        return xp.broadcast_to(share, x.shape) * at_extreme

    return vjp


@primitive
def max(x, axis=None, keepdims=False):
    """maximum of x over ``axis``."""
    return namespace_of(x).max(x, axis=axis, keepdims=keepdims)


@primitive
def min(x, axis=None, keepdims=False):
    """minimum of x over ``axis``."""
    return namespace_of(x).min(x, axis=axis, keepdims=keepdims)


defvjp(max, _extreme_vjp)
defvjp(min, _extreme_vjp)
