"""Convolution's NumPy fast paths compute what the plain compositions compute, on every backend and,
in float32 (the experiments' dtype), bit for bit: the patches in one strided copy, the products tap
by tap (``ops/taps.py``) in conv2d's two routes and in the transposed convolution, the max-pool
gradient along image rows."""

import numpy as np
import pytest
from autograd import grad

import stevq
from stevq import ops
from stevq.ops import patches

# conv2d's NumPy fast paths against the plain compositions every other backend runs: the patches
# written by one strided copy (patches._strided_patches), the patch route's input gradient tap by
# tap (taps.patch_conv), the tap route's products tap by tap and its products' gradient by one
# strided copy (taps.tap_conv), all of them a few images at a time (taps.CHUNK_NUMBERS).
CONV_CASES = [
    ((3, 16, 6, 5), (32, 16, 3, 3), 1, 1),  # patch route, the input gradient tap by tap
    ((2, 6, 7, 7), (5, 6, 4, 4), 2, 1),  # stride 2: taps of s x s blocks
    ((2, 5, 7, 6), (6, 5, 3, 3), 2, 1),  # stride 2, a kernel padded to whole blocks
    ((3, 8, 6, 6), (4, 8, 3, 3), 1, 1),  # tap route, products tap by tap
    ((2, 8, 5, 4), (3, 8, 2, 3), 1, 0),  # tap route, a rectangular kernel, no padding
    ((1, 8, 5, 5), (1, 8, 3, 3), 1, 1),  # one output channel: the tap route's plain version
]


def _plain_conv_routes(monkeypatch):
    """Switch conv2d's fast paths off: every backend then runs the plain compositions."""
    from stevq.ops import conv

    monkeypatch.setattr(conv, "FEW_CHANNELS", 10**9)
    monkeypatch.setattr(conv, "TAP_PRODUCTS_MIN_CHANNELS", 10**9)
    monkeypatch.setattr(patches, "_rows_are_runs", lambda blocks: False)


def _conv_value_and_grads(x_host, w_host, g_host, stride, padding):
    x, w, g = stevq.asarray(x_host), stevq.asarray(w_host), stevq.asarray(g_host)
    f = lambda x, w: ops.sum(ops.multiply(ops.conv2d(x, w, stride, padding), g))
    return [stevq.to_numpy(v) for v in (ops.conv2d(x, w, stride, padding), grad(f, 0)(x, w), grad(f, 1)(x, w))]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_conv2d_fast_paths_equal_the_plain_routes(backend, monkeypatch, x_shape, w_shape, stride, padding):
    """conv2d's value and both gradients on NumPy's fast paths (computed in one image per chunk, so
    that the chunks are exercised) equal those of the plain routes on this backend."""
    from stevq.ops import taps

    r = np.random.default_rng(9)
    x_host, w_host = r.standard_normal(x_shape), r.standard_normal(w_shape)
    out_size = [ops.output_size(n, k, stride, padding) for n, k in zip(x_shape[2:], w_shape[2:])]
    g_host = r.standard_normal((x_shape[0], w_shape[0], *out_size))
    monkeypatch.setattr(taps, "CHUNK_NUMBERS", 1)
    with stevq.use("numpy", dtype="float64"):
        fast = _conv_value_and_grads(x_host, w_host, g_host, stride, padding)
    _plain_conv_routes(monkeypatch)
    plain = _conv_value_and_grads(x_host, w_host, g_host, stride, padding)
    for got, expected in zip(fast, plain):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_conv2d_fast_paths_are_bit_for_bit_in_float32(monkeypatch):
    """On NumPy in float32 (the experiments' dtype) the fast paths make the same products and add
    them in the same order: the same bits as the plain routes (which the golden metrics rely on)."""
    r = np.random.default_rng(10)
    results = []
    for plain in (False, True):
        if plain:
            _plain_conv_routes(monkeypatch)
        with stevq.use("numpy", dtype="float32"):
            for x_shape, w_shape, stride, padding in CONV_CASES[:5]:
                q = np.random.default_rng(len(results) % 5)
                x, w = q.standard_normal(x_shape).astype(np.float32), q.standard_normal(w_shape).astype(np.float32)
                size = [ops.output_size(n, k, stride, padding) for n, k in zip(x_shape[2:], w_shape[2:])]
                g = q.standard_normal((x_shape[0], w_shape[0], *size)).astype(np.float32)
                results.append(_conv_value_and_grads(x, w, g, stride, padding))
    del r
    half = len(results) // 2
    for fast, plain in zip(results[:half], results[half:]):
        for got, expected in zip(fast, plain):
            np.testing.assert_array_equal(got, expected)


# The transposed convolution's forward pass tap by tap (taps.scatter_conv) against add_block_patches
# of one matmul: stride 2 with 4 x 4 kernels as in the decoders, an output padding, one output channel
# (s s C_out = 4 numbers a tap), stride 1.
CONV_TRANSPOSE_CASES = [
    ((3, 8, 4, 4), (8, 6, 4, 4), 2, 1, 0),
    ((2, 5, 4, 3), (5, 7, 3, 3), 2, 1, 1),
    ((2, 6, 5, 5), (6, 1, 4, 4), 2, 1, 0),
    ((2, 6, 4, 5), (6, 3, 3, 3), 1, 1, 0),
]


def _conv_transpose_value_and_grads(x_host, w_host, g_host, stride, padding, output_padding):
    x, w, g = stevq.asarray(x_host), stevq.asarray(w_host), stevq.asarray(g_host)
    conv_t = lambda x, w: ops.conv_transpose2d(x, w, stride, padding, output_padding)
    f = lambda x, w: ops.sum(ops.multiply(conv_t(x, w), g))
    return [stevq.to_numpy(v) for v in (conv_t(x, w), grad(f, 0)(x, w), grad(f, 1)(x, w))]


def _conv_transpose_operands(rng, x_shape, w_shape, stride, padding, output_padding, dtype):
    size = [(n - 1) * stride - 2 * padding + k + output_padding for n, k in zip(x_shape[2:], w_shape[2:])]
    g_shape = (x_shape[0], w_shape[1], *size)
    return [rng.standard_normal(shape).astype(dtype) for shape in (x_shape, w_shape, g_shape)]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, output_padding", CONV_TRANSPOSE_CASES)
def test_conv_transpose2d_fast_path_equals_the_plain_route(
    backend, monkeypatch, x_shape, w_shape, stride, padding, output_padding
):
    """conv_transpose2d's value and both gradients on NumPy's tap-by-tap forward pass (one image per
    chunk) equal those of add_block_patches(rows @ K) on this backend."""
    from stevq.ops import taps

    operands = _conv_transpose_operands(
        np.random.default_rng(16), x_shape, w_shape, stride, padding, output_padding, np.float64
    )
    monkeypatch.setattr(taps, "CHUNK_NUMBERS", 1)
    with stevq.use("numpy", dtype="float64"):
        fast = _conv_transpose_value_and_grads(*operands, stride, padding, output_padding)
    _plain_conv_routes(monkeypatch)
    plain = _conv_transpose_value_and_grads(*operands, stride, padding, output_padding)
    for got, expected in zip(fast, plain):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, output_padding", CONV_TRANSPOSE_CASES)
def test_conv_transpose2d_fast_path_is_bit_for_bit_in_float32(
    monkeypatch, x_shape, w_shape, stride, padding, output_padding
):
    """In float32 on NumPy the tap-by-tap forward pass and its gradients give the plain route's bits."""
    operands = _conv_transpose_operands(
        np.random.default_rng(17), x_shape, w_shape, stride, padding, output_padding, np.float32
    )
    with stevq.use("numpy", dtype="float32"):
        fast = _conv_transpose_value_and_grads(*operands, stride, padding, output_padding)
        _plain_conv_routes(monkeypatch)
        plain = _conv_transpose_value_and_grads(*operands, stride, padding, output_padding)
    for got, expected in zip(fast, plain):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)


def test_tap_functions_equal_their_plain_versions(backend):
    """The tap-by-tap functions themselves, on every backend: tap_conv equals one matmul and the
    shifted sums (conv._shift_add), add_tap_products equals add_block_patches(g K^T), and the tap
    route's products gradient built window by window equals NumPy's strided copy."""
    from stevq.ops import conv, taps

    r = np.random.default_rng(11)
    xp = stevq.backend.xp()
    padded, kernel = stevq.asarray(r.standard_normal((2, 6, 7, 5))), stevq.asarray(r.standard_normal((5, 9 * 4)))
    plain = conv._shift_add(xp.reshape(xp.reshape(padded, (-1, 5)) @ kernel, (2, 6, 7, 9, 4)), 3, 3, 4, 5)
    np.testing.assert_allclose(
        stevq.to_numpy(taps.tap_conv(padded, kernel, 3, 3, 4, 5)), stevq.to_numpy(plain), rtol=1e-12, atol=1e-12
    )
    g, patch_kernel = stevq.asarray(r.standard_normal((2 * 4 * 3, 6))), stevq.asarray(r.standard_normal((9 * 5, 6)))
    expected = patches.add_block_patches(g @ xp.matrix_transpose(patch_kernel), (2, 4, 3, 5), 3, 3, 1, 1)
    got = taps.add_tap_products(g, patch_kernel, (2, 4, 3, 5), 3, 3, 1, 1)
    np.testing.assert_allclose(stevq.to_numpy(got), stevq.to_numpy(expected), rtol=1e-12, atol=1e-12)
    g_host = r.standard_normal((2, 4, 5, 3))
    by_window = taps._tap_gradient_by_window(stevq.asarray(g_host), 3, 2, 6, 6)
    np.testing.assert_array_equal(stevq.to_numpy(by_window), taps._tap_gradient_strided(g_host, 3, 2, 6, 6))


def test_strided_patches_equal_the_stacked_ones():
    """NumPy's one-copy patches equal the stacked shifted copies, for stride 1 and for blocks."""
    r = np.random.default_rng(12)
    for shape, kh, kw, stride, padding in [((2, 5, 6, 4), 3, 3, 1, 1), ((2, 7, 5, 5), 4, 3, 2, 1)]:
        x = r.standard_normal(shape).astype(np.float32)
        (out_h, bh, hb), (out_w, bw, wb) = (
            patches._grid(shape[1], kh, stride, padding),
            patches._grid(shape[2], kw, stride, padding),
        )
        blocks = patches._to_blocks(x, stride, padding, hb, wb)
        assert patches._rows_are_runs(blocks)
        np.testing.assert_array_equal(
            patches._strided_patches(blocks, out_h, out_w, bh, bw),
            patches._stacked_patches(blocks, out_h, out_w, bh, bw),
        )


@pytest.mark.parametrize("size", [2, 3])
def test_max_pool_gradient_by_rows_equals_the_plain_one(size):
    """NumPy's max-pool gradient along image rows gives the plain formula's numbers, ties and the
    signs of zeros included (float32, as in the experiments)."""
    from stevq.ops import conv

    r = np.random.default_rng(13)
    windows = np.round(r.standard_normal((2, 3, size, 4, size, 5))).astype(np.float32)  # rounded: ties
    ans = conv._over_windows(np.maximum, windows)
    g = r.standard_normal(ans.shape).astype(np.float32)
    by_rows, plain = conv._window_max_grad_rows(ans, windows, g), conv._window_max_grad(ans, windows, g)
    assert by_rows.dtype == plain.dtype == np.float32
    np.testing.assert_array_equal(by_rows, plain)
    np.testing.assert_array_equal(np.signbit(by_rows), np.signbit(plain))


def test_large_tap_gradient_reuses_one_array_and_is_rewritten_whole():
    """Above 32 MiB the tap route's products gradient is written into one reused array (no fresh
    pages per step); every call rewrites all of it, zeros included, so a second call with another
    gradient gives that gradient's array, equal to the plain window-by-window one."""
    from stevq.ops import taps

    r = np.random.default_rng(15)
    first = r.standard_normal((256, 14, 14, 16)).astype(np.float32)
    a = taps._tap_gradient_strided(first, 3, 3, 16, 16)
    assert a.nbytes >= taps._LARGE
    second = r.standard_normal((256, 14, 14, 16)).astype(np.float32)
    b = taps._tap_gradient_strided(second, 3, 3, 16, 16)
    assert np.shares_memory(a, b)
    np.testing.assert_array_equal(b, taps._tap_gradient_by_window(second, 3, 3, 16, 16))
