"""Gradient tests for the elementwise primitives, matmul, the reductions and the losses of ``stevq.ops``
(shape operations are in test_ops_shape.py; convolution, pooling and upsampling in test_ops_conv.py).

Each case is a stevq function and the same function written with ``autograd.numpy`` (the oracle).
A case is reduced to a scalar, sum(op(args) * R) with a fixed random R (so every output element
carries a different weight), and its gradient with respect to every float argument is checked
against central finite differences and against autograd.numpy's gradient; the forward value is
checked against the oracle too. On ``array_api_strict`` the gradient must also equal the one
computed on NumPy to 1e-10 (float64).
"""

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from support.op_cases import case, normal

import stevq
from stevq import ops
from stevq.testing import check_grads, check_op

# --- host data -----------------------------------------------------------------------------


def away_from(values, points, margin=1e-2):
    """Move values that lie within ``margin`` of a kink (a point in ``points``) past it, so central
    finite differences with eps = 1e-6 never straddle a kink."""
    values = np.array(values, dtype=np.float64)
    for point in points:
        close = np.abs(values - point) < margin
        values[close] = point + np.where(values[close] >= point, margin, -margin) * 2
    return values


def positive(rng, *shape):
    return rng.uniform(0.5, 2.0, shape)


def nonzero(rng, *shape):
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


# --- elementwise arithmetic and functions, with broadcasting ---------------------------------------


def _sigmoid_ref(x):
    return 1.0 / (1.0 + anp.exp(-x))


ELEMENTWISE = [
    case("add", ops.add, lambda x, y: x + y, lambda r: [normal(r, 3, 4), normal(r, 3, 4)]),
    case("add-row", ops.add, lambda x, y: x + y, lambda r: [normal(r, 3, 4), normal(r, 4)]),
    case("add-outer", ops.add, lambda x, y: x + y, lambda r: [normal(r, 3, 1), normal(r, 1, 4)]),
    case("add-scalar", lambda x: ops.add(2.5, x), lambda x: 2.5 + x, lambda r: [normal(r, 3)]),
    case("subtract-3d", ops.subtract, lambda x, y: x - y, lambda r: [normal(r, 2, 3, 4), normal(r, 3, 1)]),
    case("subtract-left-bcast", ops.subtract, lambda x, y: x - y, lambda r: [normal(r, 4), normal(r, 2, 4)]),
    case("subtract-scalar", lambda x: ops.subtract(x, 1.5), lambda x: x - 1.5, lambda r: [normal(r, 3)]),
    case("multiply-row", ops.multiply, lambda x, y: x * y, lambda r: [normal(r, 3, 4), normal(r, 4)]),
    case("multiply-3d", ops.multiply, lambda x, y: x * y, lambda r: [normal(r, 2, 1, 4), normal(r, 3, 1)]),
    case("divide-col", ops.divide, lambda x, y: x / y, lambda r: [normal(r, 3, 4), nonzero(r, 3, 1)]),
    case("divide-scalar-numerator", lambda y: ops.divide(1.0, y), lambda y: 1.0 / y, lambda r: [nonzero(r, 5)]),
    case("negative", ops.negative, lambda x: -x, lambda r: [normal(r, 2, 3)]),
    case("power-3", lambda x: ops.power(x, 3), lambda x: x**3, lambda r: [normal(r, 2, 3)]),
    case("power-half", lambda x: ops.power(x, 0.5), lambda x: x**0.5, lambda r: [positive(r, 2, 3)]),
    case("power-minus-2", lambda x: ops.power(x, -2), lambda x: x**-2, lambda r: [nonzero(r, 2, 3)]),
    case("power-exponent-too", ops.power, lambda x, p: x**p, lambda r: [positive(r, 2, 3), normal(r, 3)]),
    case("power-scalar-base", lambda p: ops.power(2.0, p), lambda p: 2.0**p, lambda r: [normal(r, 2, 3)]),
    case(
        "remainder",
        ops.remainder,
        lambda x, y: x % y,
        lambda r: [r.uniform(0.2, 0.8, (2, 3)), r.uniform(1.5, 2.5, (3,))],
    ),
    case("exp", ops.exp, anp.exp, lambda r: [normal(r, 2, 3)]),
    case("log", ops.log, anp.log, lambda r: [positive(r, 2, 3)]),
    case("tanh", ops.tanh, anp.tanh, lambda r: [2 * normal(r, 2, 3)]),
    case("sigmoid", ops.sigmoid, _sigmoid_ref, lambda r: [3 * normal(r, 2, 3)]),
    case("relu", ops.relu, lambda x: anp.maximum(x, 0.0), lambda r: [away_from(normal(r, 3, 4), [0.0])]),
    case("abs", ops.abs, anp.abs, lambda r: [away_from(normal(r, 3, 4), [0.0])]),
    case("square", ops.square, lambda x: x * x, lambda r: [normal(r, 3, 4)]),
    case("sqrt", ops.sqrt, anp.sqrt, lambda r: [positive(r, 3, 4)]),
    case(
        "gelu",
        ops.gelu,
        lambda x: 0.5 * x * (1.0 + anp.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3))),
        lambda r: [3 * normal(r, 3, 4)],
    ),
    case(
        "clip",
        lambda x: ops.clip(x, -0.5, 0.8),
        lambda x: anp.clip(x, -0.5, 0.8),
        lambda r: [away_from(2 * normal(r, 4, 5), [-0.5, 0.8])],
    ),
]

_CONDITION = np.random.default_rng(5).random((3, 4)) > 0.5

WHERE = [
    case(
        "where",
        lambda x, y: ops.where(stevq.asarray(_CONDITION), x, y),
        lambda x, y: anp.where(_CONDITION, x, y),
        lambda r: [normal(r, 3, 4), normal(r, 3, 4)],
    ),
    # autograd.numpy's where does not un-broadcast its gradient, so the oracle broadcasts y first
    case(
        "where-bcast",
        lambda x, y: ops.where(stevq.asarray(_CONDITION), x, y),
        lambda x, y: anp.where(_CONDITION, x, y + np.zeros((3, 4))),
        lambda r: [normal(r, 3, 4), normal(r, 4)],
    ),
    case(
        "where-scalar",
        lambda x: ops.where(stevq.asarray(_CONDITION), x, 0.0),
        lambda x: anp.where(_CONDITION, x, 0.0),
        lambda r: [normal(r, 3, 4)],
    ),
]

MATMUL = [
    case("matmul", ops.matmul, anp.matmul, lambda r: [normal(r, 3, 4), normal(r, 4, 2)]),
    case("matmul-batched", ops.matmul, anp.matmul, lambda r: [normal(r, 2, 3, 4), normal(r, 2, 4, 5)]),
    case("matmul-bcast-y", ops.matmul, anp.matmul, lambda r: [normal(r, 2, 3, 4), normal(r, 4, 5)]),
    case("matmul-bcast-x", ops.matmul, anp.matmul, lambda r: [normal(r, 3, 4), normal(r, 2, 4, 5)]),
    case("matmul-vector", ops.matmul, anp.matmul, lambda r: [normal(r, 3, 4), normal(r, 4)]),
    case("matmul-batched-vector", ops.matmul, anp.matmul, lambda r: [normal(r, 2, 3, 4), normal(r, 4)]),
]


@pytest.mark.parametrize("op, reference, make_args", ELEMENTWISE + WHERE + MATMUL)
def test_elementwise_and_matmul(backend, op, reference, make_args):
    check_op(op, reference, *make_args(np.random.default_rng(0)))


STEP_FUNCTIONS = [  # piecewise-constant primitives and their NumPy counterparts
    pytest.param(ops.heaviside, lambda x: np.heaviside(x, 0.0), id="heaviside"),
    pytest.param(ops.round, np.round, id="round"),
    pytest.param(ops.floor, np.floor, id="floor"),
    pytest.param(ops.ceil, np.ceil, id="ceil"),
]


@pytest.mark.parametrize("op, host_op", STEP_FUNCTIONS)
def test_step_functions_propagate_nan(backend, op, host_op):
    """NaN in, NaN out (as relu and NumPy do), infinities kept: a diverged network is not hidden."""
    host = np.array([np.nan, -np.inf, np.inf, -1.0, 0.0, 2.0])
    for dtype in ("float64", "float32"):
        got = stevq.to_numpy(op(stevq.asarray(host, dtype)))
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, host_op(host).astype(dtype))  # NaN == NaN here
        assert np.isnan(got[0]) and np.isnan(host_op(host)[0])


@pytest.mark.parametrize("op, host_op", STEP_FUNCTIONS)
def test_step_functions_have_zero_gradient(backend, op, host_op):
    """Piecewise-constant primitives: forward as NumPy computes it (round: half to even), and the
    gradient autograd sees is exactly zero, as finite differences between the kinks confirm."""
    host = np.array([-2.5, -1.5, -0.7, -0.5, 0.0, 0.3, 0.5, 1.5, 2.5, 3.2])
    x = stevq.asarray(host)
    np.testing.assert_array_equal(stevq.to_numpy(op(x)), host_op(host))
    gradient = stevq.to_numpy(grad(lambda x: ops.sum(ops.multiply(op(x), x)))(x))
    np.testing.assert_array_equal(gradient, host_op(host))  # d/dx [q(x) x] = q(x) + 0 * x
    assert np.all(stevq.to_numpy(grad(lambda x: ops.sum(op(x)))(x)) == 0.0)
    between_kinks = stevq.asarray(np.array([-0.7, 0.3, 1.2, 2.8]))
    check_grads(lambda x: ops.sum(op(x)), between_kinks)


def test_derivatives_at_the_kinks_follow_the_docstrings(backend):
    """Where a derivative does not exist the engine uses a stated convention: relu'(0) = 0,
    abs'(0) = sign(0) = 0, and clip's derivative is 0 on the bounds (1{low < x < high})."""
    x = stevq.asarray(np.array([-0.5, 0.0, 0.8, 1.0]))
    expectations = [
        (ops.relu, [0, 0, 1, 1]),
        (ops.abs, [-1, 0, 1, 1]),
        (lambda x: ops.clip(x, -0.5, 0.8), [0, 1, 0, 0]),
    ]
    for op, expected in expectations:
        np.testing.assert_array_equal(stevq.to_numpy(grad(lambda x: ops.sum(op(x)))(x)), expected)


def test_round_is_half_to_even(backend):
    x = stevq.asarray(np.array([-1.5, -0.5, 0.5, 1.5, 2.5]))
    np.testing.assert_array_equal(stevq.to_numpy(ops.round(x)), [-2.0, -0.0, 0.0, 2.0, 2.0])


# --- reductions ----------------------------------------------------------------------------------

REDUCTIONS = {
    "sum": (ops.sum, anp.sum),
    "mean": (ops.mean, anp.mean),
    "max": (ops.max, anp.max),
    "min": (ops.min, anp.min),
}


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)], ids=["all", "0", "-1", "0,2"])
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions(backend, name, axis, keepdims):
    op, reference = REDUCTIONS[name]
    host = normal(np.random.default_rng(1), 2, 3, 4)  # continuous values: no ties
    check_op(lambda x: op(x, axis=axis, keepdims=keepdims), lambda x: reference(x, axis=axis, keepdims=keepdims), host)


@pytest.mark.parametrize("name", ["max", "min"])
def test_extreme_ties_share_the_gradient(backend, name):
    """Tied extremes split the incoming gradient equally (autograd.numpy's rule too); finite
    differences do not apply at a tie, so the expectation is written by hand."""
    sign = 1.0 if name == "max" else -1.0
    host = sign * np.array([[3.0, 1.0, 3.0, 3.0], [2.0, 2.0, 0.0, -1.0]])
    op, reference = REDUCTIONS[name]
    x = stevq.asarray(host)
    row_weights = np.array([2.0, -1.0])
    loss = lambda x: ops.sum(ops.multiply(op(x, axis=1), stevq.asarray(row_weights)))
    expected = np.array([[2 / 3, 0.0, 2 / 3, 2 / 3], [-0.5, -0.5, 0.0, 0.0]])
    got = stevq.to_numpy(grad(loss)(x))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)
    oracle = grad(lambda x: anp.sum(reference(x, axis=1) * row_weights))(host)
    np.testing.assert_allclose(got, oracle, rtol=0, atol=1e-15)
    whole = stevq.to_numpy(grad(lambda x: op(x))(x))  # over all axes: three tied elements in row 0
    np.testing.assert_allclose(whole, np.array([[1, 0, 1, 1], [0, 0, 0, 0]]) / 3, rtol=0, atol=1e-15)


# --- losses ----------------------------------------------------------------------------------------


def _log_softmax_ref(x, axis=-1):
    shifted = x - anp.max(x, axis=axis, keepdims=True)
    return shifted - anp.log(anp.sum(anp.exp(shifted), axis=axis, keepdims=True))


_LABELS = np.array([2, 0, 1, 2])

LOSSES = [
    case("log_softmax", ops.log_softmax, _log_softmax_ref, lambda r: [normal(r, 4, 3)]),
    case(
        "log_softmax-axis0",
        lambda x: ops.log_softmax(x, axis=0),
        lambda x: _log_softmax_ref(x, axis=0),
        lambda r: [normal(r, 4, 3)],
    ),
    case(
        "cross_entropy",
        ops.cross_entropy,
        lambda logits, labels: -anp.mean(_log_softmax_ref(logits)[np.arange(len(labels)), labels]),
        lambda r: [2 * normal(r, 4, 3), _LABELS],
    ),
    case(
        "mean_absolute_error",
        ops.mean_absolute_error,
        lambda p, t: anp.mean(anp.abs(p - t)),
        lambda r: [normal(r, 2, 1, 3, 3), normal(r, 2, 1, 3, 3)],
    ),
]


@pytest.mark.parametrize("op, reference, make_args", LOSSES)
def test_losses(backend, op, reference, make_args):
    check_op(op, reference, *make_args(np.random.default_rng(0)))


def test_log_softmax_is_stable_for_large_logits(backend):
    x = stevq.asarray(np.array([[1000.0, 0.0, -1000.0]]))
    np.testing.assert_allclose(stevq.to_numpy(ops.log_softmax(x)), [[0.0, -1000.0, -2000.0]], atol=1e-12)
    labels = stevq.asarray(np.array([1]))
    gradient = stevq.to_numpy(grad(ops.cross_entropy)(x, labels))
    np.testing.assert_allclose(gradient, [[1.0, -1.0, 0.0]], atol=1e-12)  # softmax - one_hot


def test_every_public_op_is_covered():
    """A new function in stevq.ops must come with a case in this file, test_ops_shape.py or test_ops_conv.py."""
    covered = {
        "add",
        "subtract",
        "multiply",
        "divide",
        "negative",
        "power",
        "remainder",
        "exp",
        "log",
        "tanh",
        "sigmoid",
        "relu",
        "gelu",
        "abs",
        "square",
        "sqrt",
        "clip",
        "where",
        "heaviside",
        "round",
        "floor",
        "ceil",
        "matmul",
        "sum",
        "mean",
        "max",
        "min",
        "reshape",
        "transpose",
        "matrix_transpose",
        "broadcast_to",
        "expand_dims",
        "getitem",
        "concat",
        "stack",
        "take_rows",
        "one_hot",
        "stop_gradient",
        "log_softmax",
        "cross_entropy",
        "mean_absolute_error",
        "conv2d",
        "conv_transpose2d",
        "im2col",
        "col2im",
        "output_size",
        "max_pool2d",
        "global_max_pool2d",
        "avg_pool2d",
        "upsample_nearest",
        "add_channel_bias",
    }
    public = {name for name in dir(ops) if not name.startswith("_") and callable(getattr(ops, name))}
    assert public - covered == set()


def test_gelu_is_within_5e_4_of_the_exact_erf_form(backend):
    """The tanh form against x Phi(x) with math.erf (PyTorch's default GELU): the documented bound."""
    import math

    host = np.linspace(-8.0, 8.0, 4001)
    exact = np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in host])
    got = stevq.to_numpy(ops.gelu(stevq.asarray(host)))
    assert 1e-4 < np.max(np.abs(got - exact)) < 5e-4


def test_mean_absolute_error_rejects_mismatched_shapes(backend):
    with pytest.raises(ValueError, match="target"):
        ops.mean_absolute_error(stevq.asarray(np.zeros((2, 3))), stevq.asarray(np.zeros((3, 2))))
