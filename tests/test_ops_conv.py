"""Gradient tests for convolution, its transpose, im2col/col2im, pooling and upsampling in
``stevq.ops``: values and gradients against autograd.numpy references written differently (sums
over kernel offsets, explicit dilation), finite differences, adjoint identities and hand
computations; on array_api_strict the gradients must equal NumPy's to 1e-10.
"""

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from support.op_cases import case, normal

import stevq
from stevq import ops
from stevq.testing import check_grads, check_op


def _conv2d_ref(x, weight, stride=1, padding=0):
    """Cross-correlation as a sum over kernel offsets (i, j) of strided slices times weight[:, :, i, j]."""
    out_channels, _, kh, kw = weight.shape
    padded = anp.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), mode="constant")
    out_h = (x.shape[2] + 2 * padding - kh) // stride + 1
    out_w = (x.shape[3] + 2 * padding - kw) // stride + 1
    out = 0.0
    for i in range(kh):
        for j in range(kw):
            patch = padded[:, :, i : i + stride * (out_h - 1) + 1 : stride, j : j + stride * (out_w - 1) + 1 : stride]
            out = out + anp.einsum("nchw,oc->nohw", patch, weight[:, :, i, j])
    return out


def _conv_transpose2d_ref(x, weight, stride=1, padding=0, output_padding=0):
    """Every input pixel scatters weight[c, :, :, :] * x onto the output at stride * (y, x) + (i, j)
    (the full output), which is then cropped by ``padding`` (PyTorch's ConvTranspose2d convention)."""
    n, _, h, w = x.shape
    _, out_channels, kh, kw = weight.shape
    full_h, full_w = (h - 1) * stride + kh + output_padding, (w - 1) * stride + kw + output_padding
    spread_h, spread_w = (h - 1) * stride + 1, (w - 1) * stride + 1
    first = np.zeros((1, 1, 1, stride, 1, stride))
    first[..., 0, :, 0] = 1.0  # keep the first of every stride x stride block: dilation by stride
    out = 0.0
    for i in range(kh):
        for j in range(kw):
            contribution = anp.einsum("nchw,co->nohw", x, weight[:, :, i, j])
            dilated = anp.reshape(
                contribution[:, :, :, None, :, None] * first, (n, out_channels, h * stride, w * stride)
            )
            dilated = dilated[:, :, :spread_h, :spread_w]
            out = out + anp.pad(
                dilated, ((0, 0), (0, 0), (i, full_h - i - spread_h), (j, full_w - j - spread_w)), mode="constant"
            )
    out_h = (h - 1) * stride - 2 * padding + kh + output_padding
    out_w = (w - 1) * stride - 2 * padding + kw + output_padding
    return out[:, :, padding : padding + out_h, padding : padding + out_w]


CONV_SETTINGS = [  # (x shape, weight shape (O, C, kh, kw), stride, padding)
    ((1, 2, 5, 5), (2, 2, 3, 3), 1, 0),
    ((2, 1, 5, 5), (2, 1, 3, 3), 2, 1),
    ((1, 2, 4, 5), (3, 2, 2, 3), 1, 1),
    ((1, 2, 6, 6), (2, 2, 2, 2), 2, 0),
    ((1, 1, 6, 5), (1, 1, 3, 3), 3, 2),
    # stride 1, fewer output than input channels: the tap-products route (_tap_conv2d)
    ((2, 3, 5, 4), (1, 3, 3, 3), 1, 1),
    ((1, 4, 5, 6), (2, 4, 2, 3), 1, 0),
    ((2, 3, 4, 4), (2, 3, 3, 2), 1, 2),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_SETTINGS)
def test_conv2d(backend, x_shape, w_shape, stride, padding):
    r = np.random.default_rng(0)
    check_op(
        lambda x, w: ops.conv2d(x, w, stride, padding),
        lambda x, w: _conv2d_ref(x, w, stride, padding),
        normal(r, *x_shape),
        normal(r, *w_shape),
    )


def test_conv2d_by_hand(backend):
    """A 1x1x3x3 image, a 2x2 kernel, padding 1, stride 2: each output is a 2x2 window sum."""
    x = stevq.asarray(np.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    w = stevq.asarray(np.array([[[[1.0, 10.0], [100.0, 1000.0]]]]))
    # padded image rows: [0 0 0 0 0], [0 1 2 3 0], [0 4 5 6 0], [0 7 8 9 0], [0 0 0 0 0]
    expected = [[[[1000 * 1, 100 * 2 + 1000 * 3], [10 * 4 + 1000 * 7, 1 * 5 + 10 * 6 + 100 * 8 + 1000 * 9]]]]
    np.testing.assert_array_equal(stevq.to_numpy(ops.conv2d(x, w, stride=2, padding=1)), expected)


CONV_TRANSPOSE_SETTINGS = [  # (x shape, weight shape (C_in, C_out, kh, kw), stride, padding, output_padding)
    ((1, 2, 3, 3), (2, 3, 3, 3), 1, 0, 0),
    ((1, 2, 3, 3), (2, 1, 4, 4), 2, 1, 0),
    ((2, 1, 3, 2), (1, 2, 3, 3), 2, 1, 1),
    ((1, 1, 2, 2), (1, 1, 2, 3), 3, 0, 2),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, output_padding", CONV_TRANSPOSE_SETTINGS)
def test_conv_transpose2d(backend, x_shape, w_shape, stride, padding, output_padding):
    r = np.random.default_rng(0)
    check_op(
        lambda x, w: ops.conv_transpose2d(x, w, stride, padding, output_padding),
        lambda x, w: _conv_transpose2d_ref(x, w, stride, padding, output_padding),
        normal(r, *x_shape),
        normal(r, *w_shape),
    )


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, output_padding", CONV_TRANSPOSE_SETTINGS)
def test_conv_transpose2d_is_the_adjoint_of_conv2d(backend, x_shape, w_shape, stride, padding, output_padding):
    """<conv2d(y, W), x> = <y, conv_transpose2d(x, W)> for every x and y."""
    r = np.random.default_rng(1)
    x, w = stevq.asarray(normal(r, *x_shape)), stevq.asarray(normal(r, *w_shape))
    y_host = normal(r, *ops.conv_transpose2d(x, w, stride, padding, output_padding).shape)
    y = stevq.asarray(y_host)
    left = np.sum(stevq.to_numpy(ops.conv2d(y, w, stride, padding)) * stevq.to_numpy(x))
    right = np.sum(y_host * stevq.to_numpy(ops.conv_transpose2d(x, w, stride, padding, output_padding)))
    assert abs(left - right) <= 1e-12 * max(1.0, abs(left))


def _im2col_ref(x, kh, kw, stride=1, padding=0):
    """Rows of patches, built from strided slices (one per kernel offset) and a transpose."""
    n, c, h, w = x.shape
    padded = anp.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), mode="constant")
    out_h, out_w = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    offsets = [
        padded[:, :, i : i + stride * (out_h - 1) + 1 : stride, j : j + stride * (out_w - 1) + 1 : stride]
        for i in range(kh)
        for j in range(kw)
    ]
    patches = anp.transpose(anp.stack(offsets, axis=2), (0, 3, 4, 1, 2))
    return anp.reshape(patches, (n * out_h * out_w, c * kh * kw))


@pytest.mark.parametrize("kh, kw, stride, padding", [(2, 2, 1, 0), (3, 2, 2, 1), (2, 3, 3, 2)])
def test_im2col_col2im(backend, kh, kw, stride, padding):
    """im2col against its reference; col2im (its adjoint, no reference) against finite differences
    and through the identity <im2col(x), C> = <x, col2im(C)>."""
    r = np.random.default_rng(0)
    x_host = normal(r, 1, 2, 4, 5)
    check_op(
        lambda x: ops.im2col(x, kh, kw, stride, padding), lambda x: _im2col_ref(x, kh, kw, stride, padding), x_host
    )
    cols_host = normal(r, *_im2col_ref(x_host, kh, kw, stride, padding).shape)
    cols = stevq.asarray(cols_host)
    left = np.sum(stevq.to_numpy(ops.im2col(stevq.asarray(x_host), kh, kw, stride, padding)) * cols_host)
    right = np.sum(x_host * stevq.to_numpy(ops.col2im(cols, x_host.shape, kh, kw, stride, padding)))
    assert abs(left - right) <= 1e-12 * max(1.0, abs(left))
    weights = stevq.asarray(normal(r, *x_host.shape))
    check_grads(lambda c: ops.sum(ops.multiply(ops.col2im(c, x_host.shape, kh, kw, stride, padding), weights)), cols)


def test_im2col_rows_are_patches(backend):
    """Row (n, y, x) of im2col is the (C, kh, kw) patch at (stride y, stride x), flattened."""
    host = normal(np.random.default_rng(6), 2, 2, 5, 4)
    cols = stevq.to_numpy(ops.im2col(stevq.asarray(host), 3, 2, 2, 0))
    out_h, out_w = ops.output_size(5, 3, 2, 0), ops.output_size(4, 2, 2, 0)
    assert cols.shape == (2 * out_h * out_w, 2 * 3 * 2)
    for n in range(2):
        for y in range(out_h):
            for x in range(out_w):
                patch = host[n, :, 2 * y : 2 * y + 3, 2 * x : 2 * x + 2].reshape(-1)
                np.testing.assert_array_equal(cols[(n * out_h + y) * out_w + x], patch)


def _pool_ref(reduce, size=2):
    def pool(x):
        n, c, h, w = x.shape
        return reduce(anp.reshape(x, (n, c, h // size, size, w // size, size)), axis=(3, 5))

    return pool


POOLING = [
    case("max_pool2d", ops.max_pool2d, _pool_ref(anp.max), lambda r: [normal(r, 2, 2, 4, 4)]),
    case("max_pool2d-3", lambda x: ops.max_pool2d(x, 3), _pool_ref(anp.max, 3), lambda r: [normal(r, 1, 2, 6, 3)]),
    case("avg_pool2d", ops.avg_pool2d, _pool_ref(anp.mean), lambda r: [normal(r, 2, 2, 4, 4)]),
    case("avg_pool2d-3", lambda x: ops.avg_pool2d(x, 3), _pool_ref(anp.mean, 3), lambda r: [normal(r, 1, 1, 3, 6)]),
    case(
        "upsample_nearest",
        ops.upsample_nearest,
        lambda x: anp.repeat(anp.repeat(x, 2, axis=2), 2, axis=3),
        lambda r: [normal(r, 1, 2, 2, 3)],
    ),
    case(
        "upsample_nearest-3",
        lambda x: ops.upsample_nearest(x, 3),
        lambda x: anp.repeat(anp.repeat(x, 3, axis=2), 3, axis=3),
        lambda r: [normal(r, 2, 1, 2, 2)],
    ),
    case(
        "global_max_pool2d", ops.global_max_pool2d, lambda x: anp.max(x, axis=(2, 3)), lambda r: [normal(r, 2, 3, 4, 5)]
    ),
    case(
        "add_channel_bias",
        ops.add_channel_bias,
        lambda x, b: x + b[None, :, None, None],
        lambda r: [normal(r, 2, 3, 2, 2), normal(r, 3)],
    ),
]


@pytest.mark.parametrize("op, reference, make_args", POOLING)
def test_pooling_and_upsampling(backend, op, reference, make_args):
    check_op(op, reference, *make_args(np.random.default_rng(0)))


def test_max_pool_ties_share_the_gradient(backend):
    """A window with two equal maxima sends half the gradient to each; a window with four, a quarter."""
    host = np.array([[[[1.0, 5.0, 2.0, 2.0], [5.0, 0.0, 2.0, 2.0]]]])
    gradient = stevq.to_numpy(grad(lambda x: ops.sum(ops.max_pool2d(x)))(stevq.asarray(host)))
    np.testing.assert_array_equal(gradient, [[[[0.0, 0.5, 0.25, 0.25], [0.5, 0.0, 0.25, 0.25]]]])
    oracle = grad(lambda x: anp.sum(_pool_ref(anp.max)(x)))(host)
    np.testing.assert_array_equal(gradient, oracle)


def test_pool_size_must_divide_the_image(backend):
    with pytest.raises(ValueError, match="divisible"):
        ops.max_pool2d(stevq.asarray(np.zeros((1, 1, 5, 4))), 2)
