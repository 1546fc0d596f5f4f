"""Convolution as patches + matmul, its transpose, pooling and nearest upsampling.

Layout NCHW at the interface; weights (out_channels, in_channels, kh, kw). A convolution copies
every kh x kw patch of the (zero-padded) input into a row, so that it becomes one matmul with the
flattened kernel; the adjoint of that copy adds every row back onto the patch it came from, and is
in turn the forward pass of the transposed convolution.

The copies are ``block_patches`` and ``add_block_patches`` (``patches.py``: channels last, and
space-to-depth for strides > 1, so that they move long runs of adjacent numbers). The matmul's
(N * Ho * Wo, O) result is the output channels-last and is returned as an NCHW view, without a copy;
NumPy's elementwise functions keep the memory order of their inputs, so the next layer finds its
input channels-last already and the transposes cost nothing. ``im2col``/``col2im`` (columns in
(c, i, j) order, as in the textbooks) are the same two operations with the columns rearranged.
Only slicing, stack, reshape, permute_dims and matmul are used, so it runs on every backend.

A stride-1 convolution with fewer output than input channels takes another route (``_tap_conv2d``):
multiply every padded pixel by every tap first, (N Hp Wp, C) @ (C, kh kw O), then add the tap
products shifted into place. Its large array has kh kw O columns instead of kh kw C, so a decoder's
last layer (16 -> 1 channels at 28 x 28) moves 16 times fewer numbers.

On NumPy both routes make the products whose moves would copy runs of only C numbers tap by tap
instead (``taps.py``: the patch route's input gradient, the tap route's forward pass), and
max-pooling's gradient runs along whole image rows (``_window_max_grad_rows``): the same numbers,
in fewer, longer copies. The plain versions stay beside them and run on the other backends.
"""

import numpy as np
from autograd.extend import defvjp

from ..autodiff import getval
from ..backend import namespace_of
from ._util import as_float, primitive, traced_once_at_most
from .arith import add, matmul
from .patches import FEW_CHANNELS, add_block_patches, block_patches, output_size, tap_blocks
from .reductions import max, mean
from .shape import getitem, reshape, transpose
from .taps import image_chunks, patch_conv, scatter_conv, tap_conv


def _check_conv_shapes(x, weight, op, weight_channel_axis):
    """x must be NCHW and weight 4-D with x's channels on ``weight_channel_axis`` (shape checks only)."""
    if len(x.shape) != 4:
        raise ValueError(f"x: {op} expects a 4-D (batch, channels, height, width) array, got shape {tuple(x.shape)}")
    if len(weight.shape) != 4 or weight.shape[weight_channel_axis] != x.shape[1]:
        layout = "(out, in, kh, kw)" if weight_channel_axis == 1 else "(in, out, kh, kw)"
        raise ValueError(
            f"weight: {op} expects a 4-D {layout} array with in = {x.shape[1]} (x's channels), "
            f"got shape {tuple(weight.shape)}"
        )


def _channels_last(x):
    return transpose(x, (0, 2, 3, 1))


def _channels_first(x):
    return transpose(x, (0, 3, 1, 2))


def im2col(x, kh, kw, stride=1, padding=0):
    """Rows of patches: (N, C, H, W) -> (N * Ho * Wo, C * kh * kw); row (n, y, x) is the (C, kh, kw)
    patch at (stride y, stride x) of the zero-padded image, flattened."""
    c = x.shape[1]
    rows = block_patches(_channels_last(x), kh, kw, stride, padding)
    count, bh, bw = rows.shape[0], -(-kh // stride), -(-kw // stride)
    by_tap = reshape(
        transpose(reshape(rows, (count, bh, bw, stride, stride, c)), (0, 5, 1, 3, 2, 4)),
        (count, c, bh * stride, bw * stride),
    )
    if (bh * stride, bw * stride) != (kh, kw):  # drop the taps that only pad the kernel to whole blocks
        by_tap = getitem(by_tap, (slice(None), slice(None), slice(0, kh), slice(0, kw)))
    return reshape(by_tap, (count, c * kh * kw))


def col2im(cols, image_shape, kh, kw, stride=1, padding=0):
    """The adjoint of ``im2col``: add every row of patches back onto an image of ``image_shape`` (NCHW)."""
    n, c, h, w = image_shape
    by_tap = tap_blocks(reshape(cols, (cols.shape[0], c, kh, kw)), stride)  # (R, C, bh, s, bw, s)
    rows = reshape(transpose(by_tap, (0, 2, 4, 3, 5, 1)), (cols.shape[0], -1))
    return _channels_first(add_block_patches(rows, (n, h, w, c), kh, kw, stride, padding))


def conv2d(x, weight, stride=1, padding=0):
    """2-D cross-correlation, as in every deep-learning library:
    out[n, o, y, x] = sum_{c, i, j} weight[o, c, i, j] * x_padded[n, c, stride*y + i, stride*x + j].
    Computed as block_patches(x) @ (the weight in block order, (bh * bw * s * s * C, O))."""
    _check_conv_shapes(x, weight, "conv2d", 1)
    n, _, h, w = x.shape
    out_channels, in_channels, kh, kw = weight.shape
    out_h, out_w = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"x: conv2d of a {h}x{w} image with a {kh}x{kw} kernel and padding {padding} is empty")
    if stride == 1 and out_channels < in_channels and kh * kw > 1:
        return _tap_conv2d(x, weight, padding, out_h, out_w)
    image = _channels_last(x)
    kernel = reshape(transpose(tap_blocks(weight, stride), (2, 4, 3, 5, 1, 0)), (-1, out_channels))
    if (
        namespace_of(getval(x)) is np
        and in_channels >= FEW_CHANNELS
        and (kh, kw, stride, padding) != (1, 1, 1, 0)
        and traced_once_at_most(image)
    ):
        # the same products; the input's gradient tap by tap (``taps``), the patches made from the values
        rows = block_patches(getval(image), kh, kw, stride, padding)
        products = patch_conv(image, rows, kernel, kh, kw, stride, padding)
    else:
        products = matmul(block_patches(image, kh, kw, stride, padding), kernel)
    return _channels_first(reshape(products, (n, out_h, out_w, out_channels)))


@primitive
def _pad(x, padding):
    """Zero-pad the two spatial axes of a channels-last (N, H, W, C) image."""
    xp = namespace_of(x)
    n, h, w, c = x.shape
    out = xp.zeros((n, h + 2 * padding, w + 2 * padding, c), dtype=x.dtype)
    out[:, padding : padding + h, padding : padding + w, :] = x
    return out


defvjp(_pad, lambda ans, x, padding: lambda g: g[:, padding : padding + x.shape[1], padding : padding + x.shape[2], :])


def _tap_slices(kh, kw, out_h, out_w):
    """(tap, rows, columns) of every kernel tap: tap i kw + j reads the window at offset (i, j)."""
    return [(i * kw + j, slice(i, i + out_h), slice(j, j + out_w)) for i in range(kh) for j in range(kw)]


@primitive
def _shift_add(products, kh, kw, out_h, out_w):
    """out[n, y, x, o] = sum_{i, j} products[n, y + i, x + j, i kw + j, o]: the tap products of every
    padded pixel, (N, Hp, Wp, kh kw, O), added into the (N, out_h, out_w, O) output."""
    taps = _tap_slices(kh, kw, out_h, out_w)
    (t0, r0, c0), (t1, r1, c1) = taps[0], taps[1]
    out = products[:, r0, c0, t0, :] + products[:, r1, c1, t1, :]
    for t, rows, cols in taps[2:]:
        out += products[:, rows, cols, t, :]
    return out


def _shift_add_vjp(ans, products, kh, kw, out_h, out_w):
    """Every tap's window of the products receives the output gradient g."""

    def vjp(g):
        grad = namespace_of(g).zeros(products.shape, dtype=g.dtype)
        for t, rows, cols in _tap_slices(kh, kw, out_h, out_w):
            grad[:, rows, cols, t, :] = g
        return grad

    return vjp


defvjp(_shift_add, _shift_add_vjp)


# The tap route makes its products tap by tap on NumPy (``taps.tap_conv``) from this many output
# channels on; below, a tap's products are a matrix-vector product, which OpenBLAS sums in
# another order than the one matmul of the reference (the results would differ by rounding).
TAP_PRODUCTS_MIN_CHANNELS = 2


def _tap_conv2d(x, weight, padding, out_h, out_w):
    """Stride-1 conv2d as (padded pixels) @ (every tap's kernel), then the shifted products added."""
    out_channels, in_channels, kh, kw = weight.shape
    padded = _channels_last(x)
    if padding:
        padded = _pad(padded, padding)
    n, hp, wp, _ = padded.shape
    kernel = reshape(transpose(weight, (1, 2, 3, 0)), (in_channels, kh * kw * out_channels))
    if namespace_of(getval(padded)) is np and out_channels >= TAP_PRODUCTS_MIN_CHANNELS:
        return _channels_first(tap_conv(padded, kernel, kh, kw, out_h, out_w))
    products = reshape(matmul(reshape(padded, (n * hp * wp, in_channels)), kernel), (n, hp, wp, kh * kw, out_channels))
    return _channels_first(_shift_add(products, kh, kw, out_h, out_w))


def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    """Transposed convolution (the adjoint of ``conv2d`` in its input), for upsampling decoders.

    ``weight`` has shape (in_channels, out_channels, kh, kw) as in PyTorch's ConvTranspose2d; the
    output size is (H - 1) stride - 2 padding + kh + output_padding, with 0 <= output_padding < stride.
    Every input pixel's channel vector times the kernel gives a kh x kw x out_channels patch (one
    matmul), and the patches are added onto the output (``add_block_patches``).
    """
    _check_conv_shapes(x, weight, "conv_transpose2d", 0)
    if not 0 <= output_padding < stride:
        raise ValueError(f"output_padding: expected 0 <= output_padding < stride = {stride}, got {output_padding}")
    n, in_channels, h, w = x.shape
    _, out_channels, kh, kw = weight.shape
    out_h = (h - 1) * stride - 2 * padding + kh + output_padding
    out_w = (w - 1) * stride - 2 * padding + kw + output_padding
    rows = reshape(_channels_last(x), (n * h * w, in_channels))
    kernel = reshape(transpose(tap_blocks(weight, stride), (0, 2, 4, 3, 5, 1)), (in_channels, -1))
    image_shape = (n, out_h, out_w, out_channels)
    if namespace_of(getval(x)) is np and out_channels * stride * stride >= TAP_PRODUCTS_MIN_CHANNELS:
        # the same products, each tap's an image added at its shift in runs of whole rows (``taps``)
        return _channels_first(scatter_conv(rows, kernel, image_shape, kh, kw, stride, padding))
    return _channels_first(add_block_patches(matmul(rows, kernel), image_shape, kh, kw, stride, padding))


def _pool_view(x, size):
    """x as (N, H / size, size, W / size, size, C): windows split out, channels last (where a
    convolution's output lies in memory, so that this is a view, not a copy)."""
    if len(x.shape) != 4:
        raise ValueError(f"x: pooling expects a 4-D (batch, channels, height, width) array, got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    if h % size or w % size:
        raise ValueError(f"x: spatial size {h}x{w} must be divisible by the pool size {size}")
    return reshape(_channels_last(x), (n, h // size, size, w // size, size, c))


def _over_windows(combine, windows):
    """Fold ``combine`` (maximum, add) over the window axes of (N, Hp, s, Wp, s, C): first over the
    window rows, whose slices are long runs of adjacent numbers, then over the window columns of the
    half-size result. Much faster than NumPy's reduction over two strided axes."""
    size = windows.shape[2]
    rows = windows[:, :, 0, ...]
    for r in range(1, size):
        rows = combine(rows, windows[:, :, r, ...])
    out = rows[:, :, :, 0, :]
    for q in range(1, size):
        out = combine(out, rows[:, :, :, q, :])
    return out


@primitive
def _window_max(windows):
    """The maximum of every window: (N, Hp, s, Wp, s, C) -> (N, Hp, Wp, C)."""
    return _over_windows(namespace_of(windows).maximum, windows)


def _window_max_grad(ans, windows, g):
    """g goes to the elements equal to their window's maximum; ties share it equally:
    d windows = (g / ties) * 1{windows == max}, broadcast over each window."""
    xp = namespace_of(g)
    n, hp, size, wp, _, c = windows.shape
    hits = as_float(windows == xp.reshape(ans, (n, hp, 1, wp, 1, c)), g)
    share = g / _over_windows(lambda a, b: a + b, hits)
    return xp.reshape(share, (n, hp, 1, wp, 1, c)) * hits


def _window_max_grad_rows(ans, windows, g):
    """``_window_max_grad`` on NumPy, over whole image rows: the maxima and the shares repeated
    along each window's columns, so that every comparison and product runs along rows of W C
    adjacent numbers (a broadcast over the window columns runs along only C); ties counted in
    uint16 (windows up to 255 x 255); a few images at a time (``taps.image_chunks``), while they are
    in the cache. The same numbers: (g / ties) * 1{windows == max}."""
    n, hp, size, wp, _, c = windows.shape
    row = wp * size * c
    out = np.zeros((n, hp, size, row), dtype=g.dtype)  # (replaced by the first chunk's dtype)
    for start, stop in image_chunks(n, hp * size * row):
        m = stop - start
        repeat = lambda a: np.reshape(np.repeat(np.reshape(a, (m, hp, wp, 1, c)), size, axis=3), (m, hp, 1, row))
        hits = np.reshape(windows[start:stop, ...], (m, hp, size, row)) == repeat(ans[start:stop, ...])
        ties = _over_windows(lambda a, b: np.add(a, b, dtype=np.uint16), np.reshape(hits, (m,) + windows.shape[1:]))
        share = repeat(g[start:stop, ...] / np.reshape(ties, (m, hp, wp, c)))
        if start == 0:
            out = np.empty((n, hp, size, row), dtype=share.dtype)
        np.multiply(share, hits, out=out[start:stop, ...])
    return np.reshape(out, windows.shape)


def _window_max_vjp(ans, windows):
    if namespace_of(windows) is np and windows.flags.c_contiguous:
        return lambda g: _window_max_grad_rows(ans, windows, g)
    return lambda g: _window_max_grad(ans, windows, g)


defvjp(_window_max, _window_max_vjp)


def max_pool2d(x, size=2):
    """Max over non-overlapping size x size windows (the gradient goes to each window's maximum;
    tied maxima share it)."""
    return _channels_first(_window_max(_pool_view(x, size)))


def global_max_pool2d(x):
    """(N, C, H, W) -> (N, C): the maximum of every feature map (PyTorch's AdaptiveMaxPool2d((1, 1))
    then Flatten). The gradient goes to each map's maximum; tied maxima share it."""
    if len(x.shape) != 4:
        raise ValueError(f"x: pooling expects a 4-D (batch, channels, height, width) array, got shape {tuple(x.shape)}")
    return max(x, axis=(2, 3))


def avg_pool2d(x, size=2):
    """Mean over non-overlapping size x size windows."""
    return _channels_first(mean(_pool_view(x, size), axis=(2, 4)))


@primitive
def _repeat_pixels(x, factor):
    """(N, H, W, C) -> (N, H factor, W factor, C): every pixel copied into a factor x factor block."""
    xp = namespace_of(x)
    n, h, w, c = x.shape
    blocks = xp.broadcast_to(xp.reshape(x, (n, h, 1, w, 1, c)), (n, h, factor, w, factor, c))
    return xp.reshape(blocks, (n, h * factor, w * factor, c))


def _repeat_pixels_vjp(ans, x, factor):
    """Each block's gradients summed: the window sums of ``_over_windows``."""
    n, h, w, c = x.shape
    return lambda g: _over_windows(lambda a, b: a + b, namespace_of(g).reshape(g, (n, h, factor, w, factor, c)))


defvjp(_repeat_pixels, _repeat_pixels_vjp)


def upsample_nearest(x, factor=2):
    """Nearest-neighbour upsampling: every pixel becomes a factor x factor block.
    A broadcast, so its VJP sums each block. Computed channels last, where a convolution's output
    lies in memory: runs of C adjacent numbers are copied."""
    if len(x.shape) != 4:
        raise ValueError(
            f"x: upsampling expects a 4-D (batch, channels, height, width) array, got shape {tuple(x.shape)}"
        )
    return _channels_first(_repeat_pixels(_channels_last(x), factor))


def add_channel_bias(x, bias):
    """x + bias[None, :, None, None] for NCHW x."""
    return add(x, reshape(bias, (1, -1, 1, 1)))
