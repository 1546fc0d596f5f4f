"""stevq.autodiff.value_and_grad (every leaf of a parameter tree its own trace root) against
autograd's own value_and_grad, which traces the container: same values, same gradients."""

import warnings

import autograd
import numpy as np
import pytest

import stevq
from stevq import autodiff, nn, ops, vq
from stevq.optim import tree_leaves


def _assert_same(expected, got, tolerance=0.0):
    assert type(expected) is type(got)
    if isinstance(expected, dict):
        assert list(expected) == list(got)
        for key in expected:
            _assert_same(expected[key], got[key], tolerance)
    elif isinstance(expected, (list, tuple)):
        assert len(expected) == len(got)
        for a, b in zip(expected, got):
            _assert_same(a, b, tolerance)
    else:
        a, b = stevq.to_numpy(expected), stevq.to_numpy(got)
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(b, a, rtol=tolerance, atol=tolerance)


def _tree(rng):
    return {
        "w": stevq.asarray(rng.standard_normal((3, 2))),
        "layers": [{"a": stevq.asarray(rng.standard_normal(2))}, {}, (stevq.asarray(rng.standard_normal(())),)],
        "unused": stevq.asarray(rng.standard_normal(4)),
    }


def _uses_leaves_twice(params, x, scale=1.0):
    """w is read twice and the scalar leaf three times; "unused" never: its gradient is zero."""
    h = ops.tanh(ops.add(ops.matmul(x, params["w"]), params["layers"][0]["a"]))
    s = params["layers"][2][0]
    return ops.multiply(scale, ops.sum(ops.multiply(ops.square(ops.add(h, s)), ops.add(ops.matmul(x, params["w"]), s))))


def test_tree_gradients_equal_autograds(backend):
    r = np.random.default_rng(0)
    params, x = _tree(r), stevq.asarray(r.standard_normal((5, 3)))
    expected = autograd.value_and_grad(_uses_leaves_twice)(params, x, scale=0.5)
    got = autodiff.value_and_grad(_uses_leaves_twice)(params, x, scale=0.5)
    assert float(got[0]) == float(expected[0])
    _assert_same(expected[1], got[1], tolerance=1e-14)
    assert not np.any(stevq.to_numpy(got[1]["unused"]))


def test_other_argnum_and_plain_array(backend):
    r = np.random.default_rng(1)
    params, x = _tree(r), stevq.asarray(r.standard_normal((5, 3)))
    f = lambda x, params: _uses_leaves_twice(params, x)
    _assert_same(autograd.grad(f, 0)(x, params), autodiff.grad(f, 0)(x, params), tolerance=1e-14)
    _assert_same(autograd.grad(f, 1)(x, params), autodiff.grad(f, 1)(x, params), tolerance=1e-14)


@pytest.mark.parametrize("float32", [False, True])
def test_conv_vq_model_gradients_equal_autograds(backend, float32):
    """A small conv encoder -> VQ layer -> conv decoder: params a list of dicts inside a dict."""
    dtype = "float32" if float32 else "float64"
    rng = np.random.default_rng(2)
    enc_init, encoder = nn.serial(nn.Conv(3, 3, 1, 1, dtype), nn.Relu, nn.Conv(2, 1, dtype=dtype))
    vq_init, quantizer = vq.VectorQuantizer(4, channel_axis=1, dtype=dtype)
    dec_init, decoder = nn.serial(nn.ConvTranspose(1, 4, 2, 1, dtype))
    shape, enc = enc_init(rng, (1, 4, 4))
    _, codes = vq_init(rng, shape)
    _, dec = dec_init(rng, shape)
    params = {"encoder": enc, "quantizer": codes, "decoder": dec}
    x = stevq.asarray(rng.standard_normal((2, 1, 4, 4)), dtype)

    def loss(p):
        z, aux = quantizer(p["quantizer"], encoder(p["encoder"], x))
        x_hat = ops.avg_pool2d(decoder(p["decoder"], z))  # 8 x 8 -> 4 x 4
        return ops.add(ops.mean(ops.square(ops.subtract(x_hat, x))), aux["loss"])

    expected = autograd.value_and_grad(loss)(params)
    got = autodiff.value_and_grad(loss)(params)
    assert float(got[0]) == float(expected[0])
    _assert_same(expected[1], got[1], tolerance=1e-6 if float32 else 1e-13)
    assert len(tree_leaves(got[1])) == 7  # two convolutions, the codebook, one transposed convolution


def test_errors_like_autograds():
    x = stevq.asarray(np.ones(3))
    with pytest.raises(TypeError, match="must return a scalar"):
        autodiff.value_and_grad(lambda v: ops.multiply(v, 2.0))(x)
    with pytest.raises(TypeError, match="argnum"):
        autodiff.value_and_grad(lambda v: ops.sum(v), argnum=(0,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value, gradient = autodiff.value_and_grad(lambda tree: 3.0)({"a": x})
    assert value == 3.0 and not np.any(stevq.to_numpy(gradient["a"]))
    assert any("independent" in str(w.message) for w in caught)
