"""Shape operations: reshape, transpose, broadcast, slicing, gather, concatenate, stack.

They move values without changing them, so each VJP moves the gradient back the same way.
"""

import math

import numpy as np
from autograd.extend import defvjp, defvjp_argnum, notrace_primitive

from ..backend import device_of, namespace_of, resolve_dtype
from ._util import named_operands, primitive, unbroadcast


@notrace_primitive
def stop_gradient(x):
    """sg(x): the value of x, treated as a constant (no gradient flows through it)."""
    return x


@primitive
def reshape(x, shape):
    """x with a new shape (same elements, row-major order)."""
    return namespace_of(x).reshape(x, shape)


@primitive
def transpose(x, axes=None):
    """x with its axes permuted (reversed when ``axes`` is None)."""
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(axes)
    return namespace_of(x).permute_dims(x, axes)


@primitive
def matrix_transpose(x):
    """Swap the last two axes."""
    return namespace_of(x).matrix_transpose(x)


@primitive
def broadcast_to(x, shape):
    """x copied (broadcast) to ``shape``; the VJP sums the copies."""
    return namespace_of(x).broadcast_to(x, shape)


@primitive
def expand_dims(x, axis):
    """x with a new axis of length 1 at ``axis``."""
    return namespace_of(x).expand_dims(x, axis=axis)


def _inverse_permutation(axes, ndim):
    axes = tuple(reversed(range(ndim))) if axes is None else tuple(a % ndim for a in axes)
    inverse = [0] * ndim
    for position, axis in enumerate(axes):
        inverse[axis] = position
    return tuple(inverse)


defvjp(reshape, lambda ans, x, shape: lambda g: namespace_of(g).reshape(g, x.shape))
defvjp(
    transpose, lambda ans, x, axes=None: lambda g: namespace_of(g).permute_dims(g, _inverse_permutation(axes, x.ndim))
)
defvjp(matrix_transpose, lambda ans, x: lambda g: namespace_of(g).matrix_transpose(g))
defvjp(broadcast_to, lambda ans, x, shape: lambda g: unbroadcast(g, x))
defvjp(expand_dims, lambda ans, x, axis: lambda g: namespace_of(g).reshape(g, x.shape))


def _full_index(index):
    """``index`` as a tuple ending in Ellipsis, so that ``x[0]`` on a 2-D array means ``x[0, ...]``
    on every backend (the array API rejects an index that names fewer axes than the array has)."""
    index = index if isinstance(index, tuple) else (index,)
    return index if any(i is Ellipsis for i in index) else index + (Ellipsis,)


@primitive
def getitem(x, index):
    """x[index] for basic indexing (integers, slices, None, Ellipsis), with NumPy's meaning."""
    return x[_full_index(index)]


def _getitem_vjp(ans, x, index):
    """Scatter g into zeros of x's shape. The new axes (None) that the forward pass inserted have
    length 1 and are removed first, because an assignment index may not contain None."""
    index = _full_index(index)
    target = tuple(i for i in index if i is not None)

    def vjp(g):
        xp = namespace_of(g)
        grad = xp.zeros(x.shape, dtype=g.dtype, device=device_of(g))
        if len(target) != len(index):
            g = xp.reshape(g, tuple(grad[target].shape))
        grad[target] = g
        return grad

    return vjp


defvjp(getitem, _getitem_vjp)


@notrace_primitive
@named_operands("indices")  # a host array would be computed on the host and returned as one
def one_hot(indices, num_classes, dtype=None):
    """one_hot(i)[..., k] = 1{i == k}, as floats (``dtype``, default: the backend's default float).
    Not differentiable."""
    xp = namespace_of(indices)
    dtype = resolve_dtype(dtype)
    classes = xp.arange(num_classes, dtype=indices.dtype, device=device_of(indices))
    return xp.astype(xp.expand_dims(indices, axis=-1) == classes, dtype)


@primitive
def take_rows(table, indices):
    """table[indices]: the rows of a (K, D) table picked by integer ``indices`` of any shape.

    VJP: d table = one_hot(indices, K)^T @ g. Each row receives the sum of the gradients of the
    positions that picked it, and rows nobody picked receive exactly zero. That matmul is the
    formula to read (``vq.codebook_grad`` writes it out), but it costs O(N K D) time and an N x K
    array. On NumPy the same sums are accumulated directly (``_segment_sums``): a ``bincount`` over
    the flat positions q_i D + d, O(N D + K D) time, float64 accumulation; or, when the table has
    many more rows than there are positions (K > 16 N), ``np.add.at`` into the zero table, whose
    cost does not grow with a float64 K x D count array (timings of the three: benchmarks/README.md,
    "The codebook gradient: linear in the data"). The array API has no scatter-add, so every
    other backend (CuPy, where the matmul is one fast GPU kernel, and array_api_strict) keeps the
    one-hot matmul.
    """
    xp = namespace_of(table)
    flat = xp.reshape(indices, (-1,))
    rows = xp.take(table, flat, axis=0)
    return xp.reshape(rows, tuple(indices.shape) + tuple(table.shape[1:]))


def _segment_sums(flat, g, num_rows):
    """NumPy only: out[k] = sum of the rows g[i] with flat[i] == k, for k < num_rows (the VJP of
    ``take_rows`` without the one-hot matrix): one bincount over the flat positions flat[i] D + d,
    or ``np.add.at`` when num_rows > 16 N (see ``take_rows``)."""
    count, dim = g.shape
    if num_rows > 16 * count:  # few positions, a big table: scatter-add straight into it
        sums = np.zeros((num_rows, dim), dtype=g.dtype)
        np.add.at(sums, flat, g)
        return sums
    positions = (flat.astype(np.intp)[:, None] * dim + np.arange(dim)).reshape(-1)
    sums = np.bincount(positions, weights=g.reshape(-1), minlength=num_rows * dim)
    return sums.reshape(num_rows, dim).astype(g.dtype, copy=False)


def _take_rows_vjp(ans, table, indices):
    def vjp(g):
        xp = namespace_of(g)
        flat = xp.reshape(indices, (-1,))
        rows = xp.reshape(g, (flat.shape[0], math.prod(table.shape[1:])))  # not -1: N may be 0
        if xp is np:
            return np.reshape(_segment_sums(flat, rows, table.shape[0]), table.shape)
        # one_hot(indices)^T built directly as (K, N) rows: a contiguous operand for the matmul,
        # and half the time of building (N, K) and transposing it
        picks_t = xp.astype(
            xp.expand_dims(xp.arange(table.shape[0], device=device_of(flat)), axis=1) == xp.expand_dims(flat, axis=0),
            g.dtype,
        )
        return xp.reshape(picks_t @ rows, table.shape)

    return vjp


defvjp(take_rows, _take_rows_vjp, None)


@primitive
def _concat(axis, *arrays):
    return namespace_of(*arrays).concat(arrays, axis=axis)


@primitive
def _stack(axis, *arrays):
    return namespace_of(*arrays).stack(arrays, axis=axis)


def _concat_vjp(argnum, ans, args, kwargs):
    axis, arrays = args[0], args[1:]
    axis = axis % ans.ndim
    start = sum(a.shape[axis] for a in arrays[: argnum - 1])
    piece = (slice(None),) * axis + (slice(start, start + arrays[argnum - 1].shape[axis]), Ellipsis)
    return lambda g: g[piece]


def _stack_vjp(argnum, ans, args, kwargs):
    axis = args[0] % ans.ndim
    return lambda g: g[(slice(None),) * axis + (argnum - 1, Ellipsis)]


defvjp_argnum(_concat, _concat_vjp)
defvjp_argnum(_stack, _stack_vjp)


def concat(arrays, axis=0):
    """Join arrays along an existing ``axis``."""
    return _concat(axis, *arrays)


def stack(arrays, axis=0):
    """Join arrays along a new ``axis``."""
    return _stack(axis, *arrays)
