"""Part of the catalogue on array_api_strict's non-default device ("device1"): every array a
primitive or a VJP creates must be made next to its inputs (``device=``), or array_api_strict
refuses to mix the two devices. Results must match the default device's exactly."""

import numpy as np
import pytest

import stevq
from stevq import fsq, metrics, ops, ste, vq

xps = pytest.importorskip("array_api_strict")
DEVICE = xps.Device("device1")


def _put(host):
    return xps.asarray(np.asarray(host), device=DEVICE)


def _next_to(host, x):
    return stevq.asarray(host, device=stevq.backend.device_of(x))


def _host(x):
    return np.asarray(stevq.to_numpy(x))


def _loss_of(function):
    """A scalar of a list of inputs that depends on every output of ``function``."""

    def loss(args):
        return ops.sum(ops.square(function(*args)))

    return loss


rng = np.random.default_rng(0)
X, Y = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
CODEBOOK, IMAGES = rng.standard_normal((5, 4)), rng.standard_normal((2, 3, 6, 6))
INDICES = np.array([0, 3, 3, 1, 4, 0])
CASES = {
    "arith": (
        lambda x, y: ops.add(ops.multiply(ops.exp(x), ops.tanh(y)), ops.divide(ops.sqrt(ops.abs(x)), 2.0)),
        (X, Y),
    ),
    "relu clip where": (lambda x, y: ops.where(x > 0, ops.relu(x), ops.clip(y, -0.5, 0.5)), (X, Y)),
    "matmul": (lambda x, y: ops.matmul(x, ops.matrix_transpose(y)), (X, Y)),
    "reductions": (lambda x: ops.add(ops.max(x, axis=1), ops.mean(x, axis=1)), (X,)),
    "shape": (lambda x: ops.reshape(ops.concat([x[1:3], x[:2]], axis=0), (-1,)), (X,)),
    "take_rows": (lambda c: ops.take_rows(c, _next_to(INDICES, c)), (CODEBOOK,)),
    "one_hot": (lambda x: ops.matmul(ops.one_hot(_next_to(INDICES, x), 4, x.dtype), ops.matrix_transpose(x)), (X,)),
    "binary_step": (lambda x: ste.binary_step(x, "clipped_relu"), (X,)),
    "vq straight-through": (
        lambda z, c: ops.add(
            vq.straight_through(z, ops.take_rows(c, vq.nearest_code(z, c))),
            vq.vq_loss(z, ops.take_rows(c, vq.nearest_code(z, c))),
        ),
        (X, CODEBOOK),
    ),
    "fsq": (lambda z: fsq.quantize(z, (3, 4, 5, 8)), (X,)),
    "conv2d": (lambda x, w: ops.conv2d(x, w, stride=2, padding=1), (IMAGES, rng.standard_normal((2, 3, 3, 3)))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_on_device1_match_the_default_device(case):
    function, inputs = CASES[case]
    with stevq.use("array_api_strict"):
        expected = stevq.value_and_grad(_loss_of(function))([stevq.asarray(a) for a in inputs])
        value, grads = stevq.value_and_grad(_loss_of(function))([_put(a) for a in inputs])
    assert value.device == DEVICE and all(g.device == DEVICE for g in grads)
    np.testing.assert_allclose(_host(value), _host(expected[0]), rtol=1e-12)
    for got, want in zip(grads, expected[1]):
        np.testing.assert_allclose(_host(got), _host(want), rtol=1e-12, atol=1e-15)


def test_metrics_on_device1():
    with stevq.use("array_api_strict"):
        indices, z, codebook = _put(INDICES), _put(X), _put(CODEBOOK)
        counts = metrics.code_counts([indices], 5)
        assert counts.device == DEVICE
        np.testing.assert_array_equal(_host(counts), np.bincount(INDICES, minlength=5))
        gap = metrics.distribution_gap(z, codebook)
        expected = metrics.distribution_gap(stevq.asarray(X), stevq.asarray(CODEBOOK))
        assert gap == pytest.approx(expected, rel=1e-12)
