"""Convolution as im2col + matmul, its transpose, pooling and nearest upsampling.

Layout NCHW; weights (out_channels, in_channels, kh, kw). ``im2col`` copies every kh x kw patch
of the (zero-padded) input into a row, so a convolution is one matmul with the flattened kernel.
Its VJP, ``col2im``, adds each row back onto the patch it came from; and ``col2im`` is in turn the
forward pass of the transposed convolution, whose VJP is ``im2col``. Only slicing, stack, reshape
and matmul are used, so it runs on every backend.
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


def _patch(i, j, out_h, out_w, stride):
    """Index of the input pixels under kernel offset (i, j) for every output position."""
    return (slice(None), slice(None),
            slice(i, i + stride * (out_h - 1) + 1, stride), slice(j, j + stride * (out_w - 1) + 1, stride))


@primitive
def im2col(x, kh, kw, stride=1, padding=0):
    """Rows of patches: (N, C, H, W) -> (N * Ho * Wo, C * kh * kw)."""
    xp = namespace_of(x)
    n, c, h, w = x.shape
    if padding:
        padded = xp.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=x.dtype)
        padded[:, :, padding:padding + h, padding:padding + w] = x
        x = padded
    out_h, out_w = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    patches = xp.stack([x[_patch(i, j, out_h, out_w, stride)] for i in range(kh) for j in range(kw)], axis=2)
    patches = xp.permute_dims(patches, (0, 3, 4, 1, 2))  # (N, Ho, Wo, C, kh*kw)
    return xp.reshape(patches, (n * out_h * out_w, c * kh * kw))


@primitive
def col2im(cols, image_shape, kh, kw, stride=1, padding=0):
    """The adjoint of ``im2col``: add every row of patches back onto an image of ``image_shape``."""
    xp = namespace_of(cols)
    n, c, h, w = image_shape
    out_h, out_w = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    patches = xp.reshape(cols, (n, out_h, out_w, c, kh * kw))
    patches = xp.permute_dims(patches, (0, 3, 4, 1, 2))  # (N, C, kh*kw, Ho, Wo)
    image = xp.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            where = _patch(i, j, out_h, out_w, stride)
            image[where] = image[where] + patches[:, :, i * kw + j, ...]
    return image[:, :, padding:padding + h, padding:padding + w]


defvjp(im2col, lambda ans, x, kh, kw, stride=1, padding=0: lambda g: col2im(g, x.shape, kh, kw, stride, padding))
defvjp(col2im, lambda ans, cols, shape, kh, kw, stride=1, padding=0: lambda g: im2col(g, kh, kw, stride, padding))


def conv2d(x, weight, stride=1, padding=0):
    """2-D cross-correlation, as in every deep-learning library:
    out[n, o, y, x] = sum_{c, i, j} weight[o, c, i, j] * x_padded[n, c, stride*y + i, stride*x + j].
    Computed as im2col(x) @ weight_flat^T."""
    _check_conv_shapes(x, weight, "conv2d", 1)
    n, _, h, w = x.shape
    out_channels, in_channels, kh, kw = weight.shape
    if output_size(h, kh, stride, padding) < 1 or output_size(w, kw, stride, padding) < 1:
        raise ValueError(f"x: conv2d of a {h}x{w} image with a {kh}x{kw} kernel and padding {padding} is empty")
    cols = im2col(x, kh, kw, stride, padding)
    out = matmul(cols, transpose(reshape(weight, (out_channels, in_channels * kh * kw))))
    out = reshape(out, (n, output_size(h, kh, stride, padding), output_size(w, kw, stride, padding), out_channels))
    return transpose(out, (0, 3, 1, 2))


def conv_transpose2d(x, weight, stride=1, padding=0, output_padding=0):
    """Transposed convolution (the adjoint of ``conv2d`` in its input), for upsampling decoders.

    ``weight`` has shape (in_channels, out_channels, kh, kw) as in PyTorch's ConvTranspose2d; the
    output size is (H - 1) stride - 2 padding + kh + output_padding, with 0 <= output_padding < stride.
    """
    _check_conv_shapes(x, weight, "conv_transpose2d", 0)
    if not 0 <= output_padding < stride:
        raise ValueError(f"output_padding: expected 0 <= output_padding < stride = {stride}, got {output_padding}")
    n, in_channels, h, w = x.shape
    _, out_channels, kh, kw = weight.shape
    out_h = (h - 1) * stride - 2 * padding + kh + output_padding
    out_w = (w - 1) * stride - 2 * padding + kw + output_padding
    rows = reshape(transpose(x, (0, 2, 3, 1)), (n * h * w, in_channels))
    cols = matmul(rows, reshape(weight, (in_channels, out_channels * kh * kw)))
    return col2im(cols, (n, out_channels, out_h, out_w), kh, kw, stride, padding)


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
