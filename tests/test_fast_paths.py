"""The engine's speed-ups compute what the plain formulas compute: nearest codes in row blocks,
space-to-depth patches, channels-last pooling, optimizers that write only into new arrays, the
codebook gradient without a one-hot matrix."""

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

import stevq
from stevq import ops, optim, vq
from stevq.ops import patches
from stevq.testing import check_grads


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_nearest_code_in_blocks_equals_brute_force(backend, monkeypatch, metric):
    """Blocks of 3 rows (SCORE_BLOCK = 3 x K) give the brute-force argmin over all N x K x D differences."""
    r = np.random.default_rng(0)
    z, codebook = r.standard_normal((20, 3)), r.standard_normal((7, 3))
    whole = stevq.to_numpy(vq.nearest_code(stevq.asarray(z), stevq.asarray(codebook), metric))
    monkeypatch.setattr(vq.core, "SCORE_BLOCK", 3 * 7 + 2)
    blocked = stevq.to_numpy(vq.nearest_code(stevq.asarray(z), stevq.asarray(codebook), metric))
    if metric == "l2":
        expected = np.argmin(np.sum((z[:, None, :] - codebook[None, :, :]) ** 2, axis=-1), axis=1)
    else:
        unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)
        expected = np.argmax(unit(z) @ unit(codebook).T, axis=1)
    np.testing.assert_array_equal(blocked, expected)
    np.testing.assert_array_equal(whole, expected)


def _block_patches_by_hand(x, kh, kw, stride, padding):
    """Row (n, y, x), column block (a, b), sub-pixel (r, q): x_pad[n, s y + s a + r, s x + s b + q, :],
    zero outside the image (taps beyond the kernel, i >= kh or j >= kw, read pixels too: their
    weights are zero)."""
    n, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (padding, padding + 8), (padding, padding + 8), (0, 0)))
    out_h, out_w = ops.output_size(h, kh, stride, padding), ops.output_size(w, kw, stride, padding)
    bh, bw = -(-kh // stride), -(-kw // stride)
    rows = []
    for m in range(n):
        for y in range(out_h):
            for x_ in range(out_w):
                row = []
                for a in range(bh):
                    for b in range(bw):
                        for r in range(stride):
                            for q in range(stride):
                                row.append(padded[m, stride * (y + a) + r, stride * (x_ + b) + q])
                rows.append(np.concatenate(row))
    return np.array(rows)


@pytest.mark.parametrize(
    "shape, kh, kw, stride, padding",
    [
        ((2, 5, 6, 3), 3, 3, 2, 1),  # kernel not a multiple of the stride: padded taps
        ((1, 4, 4, 2), 4, 4, 2, 1),  # the VQ-VAE's 4x4 / 2
        ((1, 7, 5, 1), 2, 3, 3, 2),  # stride 3, a 7-pixel image cut into blocks of 3
        ((1, 1, 2, 2), 1, 1, 2, 0),  # an image smaller than a block
        ((2, 3, 3, 2), 3, 3, 1, 1),  # stride 1: plain (i, j, c) order
        # the cases above have fewer than FEW_CHANNELS channels (one strided copy per tap); these
        # have more and take the block copies
        ((2, 5, 6, 4), 3, 3, 2, 1),
        ((1, 6, 6, 5), 4, 4, 2, 1),
        ((1, 7, 5, 4), 2, 3, 3, 2),
        ((2, 3, 3, 6), 3, 3, 1, 1),
    ],
)
def test_block_patches_by_hand_adjoint_and_gradients(backend, shape, kh, kw, stride, padding):
    r = np.random.default_rng(1)
    x_host = r.standard_normal(shape)
    x = stevq.asarray(x_host)
    rows = patches.block_patches(x, kh, kw, stride, padding)
    got = stevq.to_numpy(rows)
    np.testing.assert_array_equal(got, _block_patches_by_hand(x_host, kh, kw, stride, padding))
    # <patches(x), R> = <x, add_patches(R)>
    rows_host = r.standard_normal(got.shape)
    image = stevq.to_numpy(patches.add_block_patches(stevq.asarray(rows_host), shape, kh, kw, stride, padding))
    assert image.shape == shape
    assert abs(np.sum(got * rows_host) - np.sum(x_host * image)) <= 1e-12 * max(1.0, abs(np.sum(got * rows_host)))
    weights = stevq.asarray(r.standard_normal(got.shape))
    check_grads(lambda v: ops.sum(ops.multiply(patches.block_patches(v, kh, kw, stride, padding), weights)), x)


def test_convolution_output_is_channels_last_in_memory():
    """The point of the channels-last patches on NumPy: conv2d returns an NCHW view of channels-last
    memory, and the next layer's transpose to channels last is free (no copy)."""
    r = np.random.default_rng(2)
    x = stevq.asarray(r.standard_normal((2, 3, 8, 8)).astype(np.float32))
    out = ops.add_channel_bias(
        ops.conv2d(x, stevq.asarray(r.standard_normal((4, 3, 3, 3)).astype(np.float32)), 2, 1),
        stevq.asarray(np.zeros(4, np.float32)),
    )
    assert np.transpose(out, (0, 2, 3, 1)).flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("size", [2, 3])
def test_max_pool_same_on_any_memory_layout(backend, size):
    """Inputs in NCHW memory and in channels-last memory give the same values and gradients,
    equal to autograd.numpy's reduction (ties included: the input is rounded to create them)."""
    r = np.random.default_rng(3)
    channels_last = np.round(r.standard_normal((2, 3 * size, 2 * size, 3)))
    host = np.ascontiguousarray(np.transpose(channels_last, (0, 3, 1, 2)))
    weights = r.standard_normal((2, 3, 3, 2))

    def reference(x):
        n, c, h, w = x.shape
        return anp.sum(anp.max(anp.reshape(x, (n, c, h // size, size, w // size, size)), axis=(3, 5)) * weights)

    f = lambda x: ops.sum(ops.multiply(ops.max_pool2d(x, size), stevq.asarray(weights)))
    expected_value, expected_grad = reference(host), grad(reference)(host)
    for layout in (stevq.asarray(host), ops.transpose(stevq.asarray(channels_last), (0, 3, 1, 2))):
        assert abs(float(f(layout)) - expected_value) < 1e-12
        np.testing.assert_allclose(stevq.to_numpy(grad(f)(layout)), expected_grad, rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    "make", [lambda: optim.adam(0.05, 0.8, 0.9, 1e-3), lambda: optim.sgd(0.1, 0.9)], ids=["adam", "sgd"]
)
def test_optimizers_leave_their_inputs_alone(backend, make):
    """The updates write only into arrays they create: old parameters, gradients and states keep
    their values (a training loop may hold on to them)."""
    r = np.random.default_rng(4)
    params = {"w": stevq.asarray(r.standard_normal((3, 2))), "b": [stevq.asarray(r.standard_normal(2))]}
    grads = {"w": stevq.asarray(r.standard_normal((3, 2))), "b": [stevq.asarray(r.standard_normal(2))]}
    snapshot = lambda tree: [stevq.to_numpy(leaf).copy() for leaf in optim.tree_leaves(tree)]
    opt_init, opt_update, get_params = make()
    state = opt_init(params)
    before = [snapshot(params), snapshot(grads)]
    state1 = opt_update(0, grads, state)
    state1_values = snapshot(state1)
    opt_update(1, grads, state1)
    assert all(np.array_equal(a, b) for a, b in zip(before[0], snapshot(params)))
    assert all(np.array_equal(a, b) for a, b in zip(before[1], snapshot(grads)))
    assert all(np.array_equal(a, b) for a, b in zip(state1_values, snapshot(state1)))
    assert not np.array_equal(snapshot(get_params(state1))[0], before[0][0])


def test_adam_float32_follows_the_float64_formula():
    """Ten float32 Adam steps stay within float32 rounding of the textbook formula in float64."""
    r = np.random.default_rng(5)
    p0, gradients = r.standard_normal(50), [r.standard_normal(50) for _ in range(10)]
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    opt_init, opt_update, get_params = optim.adam(lr, b1, b2, eps)
    state = opt_init(stevq.asarray(p0.astype(np.float32)))
    p, m, s = p0.copy(), np.zeros(50), np.zeros(50)
    for step, g in enumerate(gradients):
        state = opt_update(step, stevq.asarray(g.astype(np.float32)), state)
        t = step + 1
        m, s = b1 * m + (1 - b1) * g, b2 * s + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(s / (1 - b2**t)) + eps)
    got = get_params(state)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, p, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "count, codes, dim, index_shape",
    [
        (50, 7, 3, (50,)),  # more positions than codes: every row sums several gradients
        (6, 40, 2, (2, 3)),  # more codes than positions: most rows stay exactly zero
        (3, 80, 2, (3,)),  # K > 16 N: NumPy's scatter-add route
        (1, 1, 1, (1,)),
        (0, 4, 2, (0,)),  # no positions: an all-zero gradient
    ],
)
def test_take_rows_gradient_equals_one_hot_formula(backend, count, codes, dim, index_shape):
    """The VJP of take_rows (a bincount on NumPy, the one-hot matmul elsewhere) equals
    one_hot(q)^T @ g computed independently in float64, and its rows nobody picked are exactly 0."""
    r = np.random.default_rng(6)
    table = r.standard_normal((codes, dim))
    indices = r.integers(0, codes, count).reshape(index_shape)
    g = r.standard_normal(index_shape + (dim,))
    expected = (np.arange(codes)[:, None] == indices.reshape(-1)[None, :]).astype(float) @ g.reshape(-1, dim)
    for dtype, tolerance in (("float64", 1e-12), ("float32", 1e-5)):
        weights = stevq.asarray(g, dtype)
        f = lambda c: ops.sum(ops.multiply(ops.take_rows(c, stevq.asarray(indices)), weights))
        got = grad(f)(stevq.asarray(table, dtype))
        assert got.dtype == stevq.asarray(table, dtype).dtype
        got = stevq.to_numpy(got)
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)
        unpicked = np.setdiff1d(np.arange(codes), indices)
        assert np.all(got[unpicked] == 0.0)


def test_codebook_loss_gradient_through_take_rows_equals_codebook_grad(backend):
    """autograd through vq.codebook_loss(z_e, take_rows(C, q)) gives vq.codebook_grad, the explicit
    one-hot formula kept for teaching."""
    r = np.random.default_rng(7)
    z_e, codebook = stevq.asarray(r.standard_normal((30, 4))), stevq.asarray(r.standard_normal((9, 4)))
    indices = vq.nearest_code(z_e, codebook)
    by_autograd = grad(lambda c: vq.codebook_loss(z_e, ops.take_rows(c, indices)))(codebook)
    explicit = vq.codebook_grad(z_e, indices, 9, codebook)
    np.testing.assert_allclose(stevq.to_numpy(by_autograd), stevq.to_numpy(explicit), rtol=1e-12, atol=1e-14)


def test_adam_donated_state_gives_the_same_steps(backend):
    """adam(donate=True), which writes each step into the previous state's arrays (NumPy: no new
    arrays at all), gives bit for bit the steps of the functional adam, and never writes into the
    parameters handed to init."""
    r = np.random.default_rng(8)
    params = {"w": stevq.asarray(r.standard_normal((4, 3)), "float32"), "b": [stevq.asarray(r.standard_normal(3))]}
    original = [stevq.to_numpy(leaf).copy() for leaf in optim.tree_leaves(params)]
    plain, donated = optim.adam(0.05, 0.8, 0.9, 1e-3), optim.adam(0.05, 0.8, 0.9, 1e-3, donate=True)
    state, donated_state = plain[0](params), donated[0](params)
    for step in range(4):
        grads = {"w": stevq.asarray(r.standard_normal((4, 3)), "float32"), "b": [stevq.asarray(r.standard_normal(3))]}
        previous = optim.tree_leaves(donated_state)
        state, donated_state = plain[1](step, grads, state), donated[1](step, grads, donated_state)
        for a, b in zip(optim.tree_leaves(state), optim.tree_leaves(donated_state)):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(stevq.to_numpy(a), stevq.to_numpy(b))
        if backend == "numpy":
            assert all(a is b for a, b in zip(previous, optim.tree_leaves(donated_state)))
    assert all(np.array_equal(a, stevq.to_numpy(b)) for a, b in zip(original, optim.tree_leaves(params)))


def test_adam_donate_must_be_a_bool():
    with pytest.raises(TypeError, match="donate"):
        optim.adam(0.1, donate="yes")


@pytest.mark.parametrize(
    "layout, axes",
    [
        ("channels-last seen as NCHW", (0, 2, 3)),  # a conv bias gradient: rows @ ones
        ("contiguous", (0,)),  # a dense bias gradient
        ("contiguous", (1, 2)),  # kept axis first: table @ ones
        ("strided", (0, 2)),  # scattered memory: NumPy's own sum
    ],
)
def test_sum_axes_fast_path_equals_numpy_sum(layout, axes):
    from stevq.ops._util import sum_axes, unbroadcast

    r = np.random.default_rng(3)
    base = r.standard_normal((3, 5, 4, 6))
    g = {"channels-last seen as NCHW": base.transpose(0, 3, 1, 2), "contiguous": base, "strided": base[:, ::2, :, ::2]}[
        layout
    ]
    np.testing.assert_allclose(sum_axes(g, axes), np.sum(g, axis=axes), rtol=1e-13, atol=1e-13)
    like = np.zeros(tuple(1 if a in axes else n for a, n in enumerate(g.shape)))
    np.testing.assert_allclose(unbroadcast(g, like), np.sum(g, axis=axes, keepdims=True), rtol=1e-13, atol=1e-13)
    assert unbroadcast(g, like).shape == like.shape


def test_gelu_with_kept_tanh_equals_the_plain_primitive(backend):
    """ops.gelu, which keeps t = tanh(...) from its forward pass for the derivative, gives the plain
    primitive's value and gradient (same operations: bit for bit), and on NumPy (the backend whose
    arrays autograd nests) under a gradient of a gradient, where the kept t would be a wrong constant,
    the plain primitive's second derivative, which matches autograd.numpy's."""
    from stevq.ops import arith

    r = np.random.default_rng(14)
    host = r.standard_normal((3, 4)) * 3
    x = stevq.asarray(host)
    for f in (ops.gelu, arith._gelu):
        assert np.array_equal(stevq.to_numpy(f(x)), stevq.to_numpy(arith._gelu(x)))
        assert np.array_equal(
            stevq.to_numpy(grad(lambda v: ops.sum(f(v)))(x)), stevq.to_numpy(grad(lambda v: ops.sum(arith._gelu(v)))(x))
        )
    if backend != "numpy":
        return
    reference = lambda v: 0.5 * v * (1.0 + anp.tanh(np.sqrt(2.0 / np.pi) * (v + 0.044715 * v**3)))
    expected = grad(lambda v: anp.sum(grad(lambda u: anp.sum(reference(u)))(v)))(host)
    second = grad(lambda v: ops.sum(grad(lambda u: ops.sum(ops.gelu(u)))(v)))(x)
    np.testing.assert_allclose(stevq.to_numpy(second), expected, rtol=1e-9, atol=1e-12)
