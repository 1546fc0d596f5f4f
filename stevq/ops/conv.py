"""Convolution as patches + matmul, its transpose, pooling and nearest upsampling.

Layout NCHW at the interface; weights (out_channels, in_channels, kh, kw). A convolution copies
every kh x kw patch of the (zero-padded) input into a row, so that it becomes one matmul with the
flattened kernel; the adjoint of that copy adds every row back onto the patch it came from, and is
in turn the forward pass of the transposed convolution.

Inside, the patches are taken channels-last: ``patches_nhwc`` turns an (N, H, W, C) image into rows
(N * Ho * Wo, kh * kw * C), each row the patch in (i, j, c) order, and ``add_patches_nhwc`` is its
adjoint. Channels-last makes every copy move runs of C contiguous numbers (channels-first would move
single numbers at stride ``stride``), and the matmul's (N * Ho * Wo, O) result *is* the output in
channels-last order, returned as an NCHW view without a copy. NumPy's elementwise functions keep the
memory order of their inputs, so the next layer finds its input channels-last already and the
transposes cost nothing. ``im2col``/``col2im`` (columns in (c, i, j) order, as in the textbooks) are
the same two operations with the columns permuted. Only slicing, stack, reshape and matmul are used,
so it runs on every backend.
"""
from autograd.extend import defvjp, primitive

from ..backend import namespace_of
from .arith import add, matmul
from .reductions import max, mean
from .shape import broadcast_to, reshape, transpose


def output_size(size, kernel, stride, padding):
    """Spatial output size of a convolution: floor((size + 2 padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _check_conv_shapes(x, weight, op, weight_channel_axis):
    """x must be NCHW and weight 4-D with x's channels on ``weight_channel_axis`` (shape checks only)."""
    if len(x.shape) != 4:
        raise ValueError(f"x: {op} expects a 4-D (batch, channels, height, width) array, got shape {tuple(x.shape)}")
    if len(weight.shape) != 4 or weight.shape[weight_channel_axis] != x.shape[1]:
        layout = "(out, in, kh, kw)" if weight_channel_axis == 1 else "(in, out, kh, kw)"
        raise ValueError(f"weight: {op} expects a 4-D {layout} array with in = {x.shape[1]} (x's channels), "
                         f"got shape {tuple(weight.shape)}")


def _offset(i, j, out_h, out_w, stride):
    """Index (N, H, W, C layout) of the input pixels under kernel offset (i, j) for every output position."""
    return (slice(None), slice(i, i + stride * (out_h - 1) + 1, stride),
            slice(j, j + stride * (out_w - 1) + 1, stride), slice(None))


def _pointwise(kh, kw, stride, padding):
    """A 1x1 kernel with stride 1 and no padding: the patches are the pixels themselves."""
    return kh == kw == stride == 1 and padding == 0


@primitive
def patches_nhwc(x, kh, kw, stride=1, padding=0):
    """Rows of patches, channels last: (N, H, W, C) -> (N * Ho * Wo, kh * kw * C), row (n, y, x)
    holding x_padded[n, stride y + i, stride x + j, c] at column (i kw + j) C + c."""
    xp = namespace_of(x)
    n, h, w, c = x.shape
    out_h, out_w = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    if _pointwise(kh, kw, stride, padding):
        return xp.reshape(x, (n * h * w, c))
    if padding:
        padded = xp.zeros((n, h + 2 * padding, w + 2 * padding, c), dtype=x.dtype)
        padded[:, padding:padding + h, padding:padding + w, :] = x
        x = padded
    patches = xp.stack([x[_offset(i, j, out_h, out_w, stride)] for i in range(kh) for j in range(kw)], axis=3)
    return xp.reshape(patches, (n * out_h * out_w, kh * kw * c))


@primitive
def add_patches_nhwc(rows, image_shape, kh, kw, stride=1, padding=0):
    """The adjoint of ``patches_nhwc``: add every row back onto its patch of an (N, H, W, C) image of
    ``image_shape``; pixels under several patches receive the sum."""
    xp = namespace_of(rows)
    n, h, w, c = image_shape
    if _pointwise(kh, kw, stride, padding):
        return xp.reshape(rows, (n, h, w, c))
    out_h, out_w = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    patches = xp.reshape(rows, (n, out_h, out_w, kh * kw, c))
    image = xp.zeros((n, h + 2 * padding, w + 2 * padding, c), dtype=rows.dtype)
    for i in range(kh):
        for j in range(kw):
            image[_offset(i, j, out_h, out_w, stride)] += patches[:, :, :, i * kw + j, :]
    return image[:, padding:padding + h, padding:padding + w, :] if padding else image


defvjp(patches_nhwc, lambda ans, x, kh, kw, stride=1, padding=0:
       lambda g: add_patches_nhwc(g, x.shape, kh, kw, stride, padding))
defvjp(add_patches_nhwc, lambda ans, rows, shape, kh, kw, stride=1, padding=0:
       lambda g: patches_nhwc(g, kh, kw, stride, padding))


def _channels_last(x):
    return transpose(x, (0, 2, 3, 1))


def _channels_first(x):
    return transpose(x, (0, 3, 1, 2))


def im2col(x, kh, kw, stride=1, padding=0):
    """Rows of patches: (N, C, H, W) -> (N * Ho * Wo, C * kh * kw); row (n, y, x) is the (C, kh, kw)
    patch at (stride y, stride x) of the zero-padded image, flattened."""
    n, c = x.shape[0], x.shape[1]
    rows = patches_nhwc(_channels_last(x), kh, kw, stride, padding)
    by_offset = reshape(rows, (rows.shape[0], kh, kw, c))
    return reshape(transpose(by_offset, (0, 3, 1, 2)), (rows.shape[0], c * kh * kw))


def col2im(cols, image_shape, kh, kw, stride=1, padding=0):
    """The adjoint of ``im2col``: add every row of patches back onto an image of ``image_shape`` (NCHW)."""
    n, c, h, w = image_shape
    by_channel = reshape(cols, (cols.shape[0], c, kh, kw))
    rows = reshape(transpose(by_channel, (0, 2, 3, 1)), (cols.shape[0], kh * kw * c))
    return _channels_first(add_patches_nhwc(rows, (n, h, w, c), kh, kw, stride, padding))


def conv2d(x, weight, stride=1, padding=0):
    """2-D cross-correlation, as in every deep-learning library:
    out[n, o, y, x] = sum_{c, i, j} weight[o, c, i, j] * x_padded[n, c, stride*y + i, stride*x + j].
    Computed as patches_nhwc(x) @ weight arranged as (kh * kw * C, O)."""
    _check_conv_shapes(x, weight, "conv2d", 1)
    n, _, h, w = x.shape
    out_channels, in_channels, kh, kw = weight.shape
    out_h, out_w = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"x: conv2d of a {h}x{w} image with a {kh}x{kw} kernel and padding {padding} is empty")
    rows = patches_nhwc(_channels_last(x), kh, kw, stride, padding)
    kernel = reshape(transpose(weight, (2, 3, 1, 0)), (kh * kw * in_channels, out_channels))
    return _channels_first(reshape(matmul(rows, kernel), (n, out_h, out_w, out_channels)))


def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    """Transposed convolution (the adjoint of ``conv2d`` in its input), for upsampling decoders.

    ``weight`` has shape (in_channels, out_channels, kh, kw) as in PyTorch's ConvTranspose2d; the
    output size is (H - 1) stride - 2 padding + kh + output_padding, with 0 <= output_padding < stride.
    Every input pixel's channel vector times the kernel gives a kh x kw x out_channels patch (one
    matmul), and the patches are added onto the output (``add_patches_nhwc``).
    """
    _check_conv_shapes(x, weight, "conv_transpose2d", 0)
    if not 0 <= output_padding < stride:
        raise ValueError(f"output_padding: expected 0 <= output_padding < stride = {stride}, got {output_padding}")
    n, in_channels, h, w = x.shape
    _, out_channels, kh, kw = weight.shape
    out_h = (h - 1) * stride - 2 * padding + kh + output_padding
    out_w = (w - 1) * stride - 2 * padding + kw + output_padding
    rows = reshape(_channels_last(x), (n * h * w, in_channels))
    kernel = reshape(transpose(weight, (0, 2, 3, 1)), (in_channels, kh * kw * out_channels))
    image = add_patches_nhwc(matmul(rows, kernel), (n, out_h, out_w, out_channels), kh, kw, stride, padding)
    return _channels_first(image)


def _pool_view(x, size):
    if len(x.shape) != 4:
        raise ValueError(f"x: pooling expects a 4-D (batch, channels, height, width) array, got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    if h % size or w % size:
        raise ValueError(f"x: spatial size {h}x{w} must be divisible by the pool size {size}")
    return reshape(x, (n, c, h // size, size, w // size, size))


def max_pool2d(x, size=2):
    """Max over non-overlapping size x size windows (the gradient goes to each window's maximum)."""
    return max(_pool_view(x, size), axis=(3, 5))


def avg_pool2d(x, size=2):
    """Mean over non-overlapping size x size windows."""
    return mean(_pool_view(x, size), axis=(3, 5))


def upsample_nearest(x, factor=2):
    """Nearest-neighbour upsampling: every pixel becomes a factor x factor block.
    A broadcast, so its VJP sums each block."""
    n, c, h, w = x.shape
    blocks = broadcast_to(reshape(x, (n, c, h, 1, w, 1)), (n, c, h, factor, w, factor))
    return reshape(blocks, (n, c, h * factor, w * factor))


def add_channel_bias(x, bias):
    """x + bias[None, :, None, None] for NCHW x."""
    return add(x, reshape(bias, (1, -1, 1, 1)))
