"""A convolution's products tap by tap: the fast paths of ``conv2d``'s two routes on NumPy.

``conv2d`` multiplies the patches by the kernel (``block_patches(x) @ K``) or, for a stride-1 layer
with fewer output than input channels, every padded pixel by every tap's kernel and adds the shifted
products (``conv._tap_conv2d``). Either way numbers then move between a matrix whose columns are
(tap, channel) pairs and an image: in the gradient of the first route every row of the patches'
gradient g K^T is added back onto its patch (``add_block_patches``), in the second route's forward
pass the products are added into the output at their shifts. With C = 16 channels each of these
moves copies runs of only C numbers, and NumPy spends more time starting a run than moving it.

Here those products are made tap by tap instead, one batched matmul

    P_t = A @ K_t        (t = 0 .. T - 1: A is (M, C_in), K_t the tap's (C_in, C_out) slice of K)

so that each tap's products form one image (N, H, W, C_out), and moving a tap's window to or from
an image copies runs of whole image rows (W C_out numbers): three to four times faster at 16 channels.
Every product is the same dot product over the same C_in numbers and the taps are added in the same
order, so on OpenBLAS the results are the reference's bit for bit (a BLAS may sum a matmul of another
shape in another order; the results then agree to rounding). The gradients that need the products'
gradient as one (M, T C_out) matrix, the kernel's and the tap route's input gradient, form it once and
multiply as the reference does.

    patch_conv(x, rows, K, ...)   block_patches(x) @ K (``rows`` = block_patches(x), not traced);
                                  d x by the taps' products g K_t^T added into the image tap by tap
                                  (reference: add_block_patches(g K^T)), d K = rows^T g
    tap_conv(padded, K, ...)      sum_t (padded @ K_t) shifted by tap t (reference: conv._shift_add
                                  of padded @ K); both gradients from one (M, T C_out) matrix
"""

import math
import threading

import numpy as np
from autograd.extend import defvjp, defvjp_argnums
from numpy.lib.stride_tricks import as_strided

from ..backend import device_of, namespace_of
from ._util import primitive
from .patches import _from_blocks, _grid, block_patches

# The products are made and used a few images at a time, about this many numbers, so that they are
# still in the cache when they are added (at 16 channels, 3 x 3: 30 % less time than all at once).
CHUNK_NUMBERS = 2**19


def image_chunks(n, numbers_per_image):
    """(start, stop) of consecutive groups of images, about CHUNK_NUMBERS products each."""
    step = max(1, CHUNK_NUMBERS // max(1, numbers_per_image))
    return [(start, min(n, start + step)) for start in range(0, n, step)]


def tap_products(a, by_tap):
    """(T, M, O) products a @ K_t of an (M, C) matrix with each tap's (C, O) kernel, by_tap (T, C, O)."""
    xp = namespace_of(a)
    return xp.matmul(xp.reshape(a, (1,) + tuple(a.shape)), by_tap)


@primitive
def patch_conv(x, rows, kernel, kh, kw, stride, padding):
    """rows @ kernel, rows = block_patches(x, kh, kw, stride, padding): the (N Ho Wo, O) products of a
    channels-last image x (N, H, W, C) with a kernel in block order (``conv2d``)."""
    return rows @ kernel


def add_tap_products(g, kernel, image_shape, kh, kw, stride, padding):
    """add_block_patches(g @ kernel^T, image_shape, ...) computed tap by tap: block tap t's (N Ho Wo,
    s s C) products g K_t^T are one image, added at their shift into the block image."""
    xp = namespace_of(g)
    n, h, w, c = image_shape
    (out_h, bh, hb), (out_w, bw, wb) = _grid(h, kh, stride, padding), _grid(w, kw, stride, padding)
    depth = stride * stride * c
    by_tap = xp.matrix_transpose(xp.reshape(kernel, (bh * bw, depth, kernel.shape[1])))
    blocks = xp.zeros((n, hb, wb, depth), dtype=xp.result_type(g, kernel), device=device_of(g))
    pixels = out_h * out_w
    for start, stop in image_chunks(n, pixels * bh * bw * depth):
        products = xp.reshape(
            tap_products(g[start * pixels : stop * pixels, ...], by_tap), (bh * bw, stop - start, out_h, out_w, depth)
        )
        for a in range(bh):
            for b in range(bw):
                blocks[start:stop, a : a + out_h, b : b + out_w, :] += products[a * bw + b, ...]
    return _from_blocks(blocks, stride, padding, image_shape)


defvjp(
    patch_conv,
    lambda ans, x, rows, kernel, kh, kw, stride, padding: (
        lambda g: add_tap_products(g, kernel, x.shape, kh, kw, stride, padding)
    ),
    None,
    lambda ans, x, rows, kernel, kh, kw, stride, padding: lambda g: namespace_of(g).matrix_transpose(rows) @ g,
)


@primitive
def scatter_conv(rows, kernel, image_shape, kh, kw, stride, padding):
    """add_block_patches(rows @ kernel, image_shape, ...) tap by tap: the forward pass of the
    transposed convolution (``conv.conv_transpose2d``), rows (N H W, C_in) and kernel (C_in, bh bw
    s s C_out) in block order. Its products are those of ``add_tap_products`` with K^T."""
    kernel_t = namespace_of(kernel).matrix_transpose(kernel)
    return add_tap_products(rows, kernel_t, image_shape, kh, kw, stride, padding)


def _scatter_conv_vjp(argnums, ans, args, kwargs):
    """The output gradient's patches B = block_patches(g), made once for both gradients, as the
    reference's add_block_patches and matmul VJPs make it: d rows = B K^T, d K = rows^T B."""
    rows, kernel, _, kh, kw, stride, padding = args

    def vjp(g):
        xp = namespace_of(g)
        g_patches = block_patches(g, kh, kw, stride, padding)
        found = {
            0: lambda: g_patches @ xp.matrix_transpose(kernel),
            1: lambda: xp.matrix_transpose(rows) @ g_patches,
        }
        return tuple(found[argnum]() for argnum in argnums)

    return vjp


defvjp_argnums(scatter_conv, _scatter_conv_vjp)


def _tap_windows(kh, kw, out_h, out_w):
    """(tap, rows, columns) of every kernel tap: tap i kw + j reads the window at offset (i, j)."""
    return [(i * kw + j, slice(i, i + out_h), slice(j, j + out_w)) for i in range(kh) for j in range(kw)]


@primitive
def tap_conv(padded, kernel, kh, kw, out_h, out_w):
    """out[n, y, x, o] = sum_{i, j} (padded @ K_{i kw + j})[n, y + i, x + j, o]: a stride-1 convolution
    of a zero-padded channels-last image (N, Hp, Wp, C) with a kernel (C, kh kw O), tap by tap."""
    xp = namespace_of(padded)
    n, hp, wp, c = padded.shape
    taps, o = kh * kw, kernel.shape[1] // (kh * kw)
    by_tap = xp.permute_dims(xp.reshape(kernel, (c, taps, o)), (1, 0, 2))
    rows = xp.reshape(padded, (n * hp * wp, c))
    windows = _tap_windows(kh, kw, out_h, out_w)
    (t0, r0, c0), (t1, r1, c1) = windows[0], windows[1]
    out = xp.empty((n, out_h, out_w, o), dtype=xp.result_type(padded, kernel), device=device_of(padded))
    for start, stop in image_chunks(n, hp * wp * taps * o):
        products = xp.reshape(
            tap_products(rows[start * hp * wp : stop * hp * wp, ...], by_tap), (taps, stop - start, hp, wp, o)
        )
        summed = products[t0, :, r0, c0, :] + products[t1, :, r1, c1, :]
        for t, tap_rows, tap_cols in windows[2:]:
            summed += products[t, :, tap_rows, tap_cols, :]
        out[start:stop, ...] = summed
    return out


def tap_gradient(g, kh, kw, hp, wp):
    """The gradient of the tap products (N, Hp, Wp, kh kw, O) of ``tap_conv``: tap (i, j)'s window
    at offset (i, j) receives the output gradient g (N, Ho, Wo, O), the rest is zero. (On NumPy, above
    32 MiB, it is this thread's reused array, valid until the next call: ``_scratch``.)"""
    if namespace_of(g) is np:
        return _tap_gradient_strided(g, kh, kw, hp, wp)
    return _tap_gradient_by_window(g, kh, kw, hp, wp)


def _tap_gradient_by_window(g, kh, kw, hp, wp):
    """The plain version: zeros, then one copy of g per tap (runs of O numbers)."""
    xp = namespace_of(g)
    n, out_h, out_w, o = g.shape
    grad = xp.zeros((n, hp, wp, kh * kw, o), dtype=g.dtype, device=device_of(g))
    for t, rows, cols in _tap_windows(kh, kw, out_h, out_w):
        grad[:, rows, cols, t, :] = g
    return grad


def _tap_gradient_strided(g, kh, kw, hp, wp):
    """NumPy: the same array, every element written once, one copy per kernel row i.

    grad[n, Y, X, (i, j), o] = g[n, Y - i, X - j, o] (zero outside g). In r, g zero-padded and
    mirrored left to right, r[n, Y + kh - 1, wp - 1 - X, o] = g[n, Y, X, o], the kw taps (i, 0..kw-1)
    of pixel (Y, X) are kw adjacent pixels, r[n, Y - i + kh - 1, wp - 1 - X + j], one run of kw O
    numbers: row i of every pixel's taps is a view of r (``as_strided``, stepping back one pixel per
    X and one row per i), copied in one assignment: runs of kw O numbers instead of O (3x faster at
    16 channels)."""
    n, out_h, out_w, o = g.shape
    mirrored = np.zeros((n, hp + kh - 1, wp + kw - 1, o), dtype=g.dtype)
    mirrored[:, kh - 1 : kh - 1 + out_h, wp - out_w : wp, :] = g[:, :, ::-1, :]
    s_n, s_y, s_x, item = mirrored.strides
    view = as_strided(
        mirrored[:, kh - 1 :, wp - 1 :, :], (n, hp, wp, kh, kw * o), (s_n, s_y, -s_x, -s_y, item), writeable=False
    )
    grad = _scratch((n, hp, wp, kh, kw * o), g.dtype)
    np.copyto(grad, view)
    return np.reshape(grad, (n, hp, wp, kh * kw, o))


# glibc hands out arrays above 32 MiB (its largest mmap threshold, ``stevq.keep_freed_memory``) as
# fresh pages every time, each page faulted in and zeroed by the kernel. The tap route's products
# gradient of a decoder layer (256 x 16 x 16 x 9 x 16 floats: 38 MB) is one; it only lives while
# its two matmuls run, so one array per thread is reused for it.
_LARGE = 32 * 2**20
_scratch_arrays = threading.local()


def _scratch(shape, dtype):
    """An uninitialised NumPy array of ``shape``: a new one, or above _LARGE bytes this thread's
    reused one (its contents are overwritten; the caller must not keep it past its own use)."""
    dtype = np.dtype(dtype)
    if math.prod(shape) * dtype.itemsize < _LARGE:
        return np.empty(shape, dtype)
    kept = getattr(_scratch_arrays, "array", None)
    if kept is None or kept.shape != tuple(shape) or kept.dtype != dtype:
        kept = _scratch_arrays.array = np.empty(shape, dtype)
    return kept


def _tap_conv_vjp(argnums, ans, args, kwargs):
    """The products' gradient G (every tap's window receives g), as one (N Hp Wp, T O) matrix, formed
    once for both gradients: d padded = G K^T, d K = padded^T G."""
    padded, kernel, kh, kw, _, _ = args
    n, hp, wp, c = padded.shape

    def vjp(g):
        xp = namespace_of(g)
        grad = xp.reshape(tap_gradient(g, kh, kw, hp, wp), (n * hp * wp, -1))
        found = {
            0: lambda: xp.reshape(grad @ xp.matrix_transpose(kernel), padded.shape),
            1: lambda: xp.matrix_transpose(xp.reshape(padded, (n * hp * wp, c))) @ grad,
        }
        return tuple(found[argnum]() for argnum in argnums)

    return vjp


defvjp_argnums(tap_conv, _tap_conv_vjp)
