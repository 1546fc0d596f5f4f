"""The straight-through estimators obey their stated rules, elementwise, on both CPU backends.

Forward values are recomputed here in NumPy from the stated rule (written differently from the
library's formula); backward values are compared with the surrogate derivative mu'(x) written out
by hand, with finite differences of the surrogate mu itself, and with autograd.numpy's gradient of
mu. Inputs stay away from the kinks (0, the top of the clip, the quantization thresholds), where
the surrogate derivatives are not defined.
"""

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

import stevq
from stevq import ops, ste
from stevq.testing import numerical_grad


def away_from(values, points, margin=1e-3):
    values = np.array(values, dtype=np.float64)
    for point in points:
        close = np.abs(values - point) < margin
        values[close] = point + 2 * margin
    return values


def host_inputs(seed=0, shape=(6, 7), scale=1.5, kinks=(0.0, 1.0)):
    """Normal inputs spread over the interesting range, kept 1e-3 away from every kink."""
    return away_from(scale * np.random.default_rng(seed).standard_normal(shape), kinks)


def weights_like(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


# --- what the rules say, written independently --------------------------------------------------


def mu_prime(x, backward, top=1.0):
    """mu'(x) from the notes (yin2019.md): identity 1, ReLU 1{x>0}, clipped ReLU 1{0<x<top}."""
    if backward == "identity":
        return np.ones_like(x)
    if backward == "relu":
        return (x > 0).astype(np.float64)
    return ((x > 0) & (x < top)).astype(np.float64)


def mu_anp(x, backward, top=1.0):
    """The surrogate mu itself, in autograd.numpy."""
    if backward == "identity":
        return x
    if backward == "relu":
        return anp.maximum(x, 0.0)
    return anp.minimum(anp.maximum(x, 0.0), top)


def quantized_levels(x, bits, step):
    """k-bit quantized ReLU as a staircase: q(x) = step * #{k in 1..2^bits - 1 : x > (k - 1) step}."""
    thresholds = step * np.arange(2**bits - 1)
    return step * np.sum(x[..., None] > thresholds, axis=-1)


def ste_gradient(function, host_x, weights_host):
    """d/dx sum(function(x) * R) by the engine on the active backend, as a NumPy array."""
    x, weights = stevq.asarray(host_x), stevq.asarray(weights_host)
    return stevq.to_numpy(grad(lambda x: ops.sum(ops.multiply(function(x), weights)))(x))


def agrees_with_numpy(function, host_x, weights_host, got):
    """Off NumPy, the gradient equals NumPy's to 1e-10."""
    if stevq.backend.name() != "numpy":
        with stevq.use("numpy"):
            on_numpy = ste_gradient(function, host_x, weights_host)
        assert np.max(np.abs(got - on_numpy)) <= 1e-10


def check_backward_is_surrogate(function, host_x, backward, top):
    """The estimator's gradient equals R * mu'(x) exactly, equals finite differences of mu, and
    equals autograd.numpy's gradient of mu."""
    weights_host = weights_like(host_x.shape)
    got = ste_gradient(function, host_x, weights_host)
    np.testing.assert_array_equal(got, weights_host * mu_prime(host_x, backward, top))
    surrogate_loss = lambda x: ops.sum(ops.multiply(ste._surrogate(x, backward, top), stevq.asarray(weights_host)))
    numeric = numerical_grad(surrogate_loss, [stevq.asarray(host_x)], 0)
    np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-8)
    oracle = grad(lambda x: anp.sum(mu_anp(x, backward, top) * weights_host))(host_x)
    np.testing.assert_array_equal(got, oracle)
    agrees_with_numpy(function, host_x, weights_host, got)


# --- the true gradient of a step is zero ----------------------------------------------------------


def test_heaviside_true_gradient_is_exactly_zero(backend):
    host_x = host_inputs()
    got = ste_gradient(ops.heaviside, host_x, weights_like(host_x.shape))
    assert got.shape == host_x.shape and np.all(got == 0.0)
    # and so is the finite-difference gradient between the kinks
    numeric = numerical_grad(lambda x: ops.sum(ops.heaviside(x)), [stevq.asarray(host_x)], 0)
    assert np.all(numeric == 0.0)


def test_quantizer_without_ste_has_zero_gradient(backend):
    """quantize_relu_levels is the bare quantizer: its true gradient vanishes, which is the problem
    the straight-through estimator solves."""
    host_x = host_inputs(kinks=np.arange(4) / 3)
    got = ste_gradient(lambda x: ste.quantize_relu_levels(x, 2, 1 / 3), host_x, weights_like(host_x.shape))
    assert np.all(got == 0.0)


# --- straight_through ------------------------------------------------------------------------------


def test_straight_through_returns_forward_value_and_routes_gradient(backend):
    """y = forward_value exactly; dL/d(surrogate) = dL/dy; dL/d(forward_value) = 0."""
    r = np.random.default_rng(2)
    forward_host, surrogate_host, weights_host = (r.standard_normal((3, 4)) for _ in range(3))
    forward_value, surrogate, weights = (stevq.asarray(a) for a in (forward_host, surrogate_host, weights_host))
    np.testing.assert_array_equal(stevq.to_numpy(ste.straight_through(forward_value, surrogate)), forward_host)
    loss = lambda a, b: ops.sum(ops.multiply(ste.straight_through(a, b), weights))
    assert np.all(stevq.to_numpy(grad(loss, 0)(forward_value, surrogate)) == 0.0)
    np.testing.assert_array_equal(stevq.to_numpy(grad(loss, 1)(forward_value, surrogate)), weights_host)


def test_straight_through_composes_with_the_chain_rule(backend):
    """With surrogate = x^3 the estimator's gradient is g * 3x^2 (the surrogate's derivative)."""
    host_x = host_inputs()
    weights_host = weights_like(host_x.shape)
    function = lambda x: ste.straight_through(ops.heaviside(x), ops.power(x, 3))
    got = ste_gradient(function, host_x, weights_host)
    np.testing.assert_allclose(got, weights_host * 3 * host_x**2, rtol=1e-14, atol=0)
    agrees_with_numpy(function, host_x, weights_host, got)


# --- binary step (Yin et al. 2019) ------------------------------------------------------------------


@pytest.mark.parametrize("backward", ste.SURROGATES)
def test_binary_step(backend, backward):
    host_x = host_inputs()
    out = stevq.to_numpy(ste.binary_step(stevq.asarray(host_x), backward))
    np.testing.assert_array_equal(out, np.where(host_x > 0, 1.0, 0.0))
    check_backward_is_surrogate(lambda x: ste.binary_step(x, backward), host_x, backward, top=1.0)


def test_binary_step_at_the_kinks(backend):
    """At x = 0 the step is 0 (1{x > 0}); the ReLU and clipped-ReLU surrogate derivatives are 0 at
    x = 0 and the clipped one also at x = 1 (strict inequalities), the identity's is 1 everywhere."""
    x = stevq.asarray(np.array([0.0, 1.0]))
    np.testing.assert_array_equal(stevq.to_numpy(ste.binary_step(x)), [0.0, 1.0])
    for backward, expected in [("identity", [1, 1]), ("relu", [0, 1]), ("clipped_relu", [0, 0])]:
        gradient = grad(lambda x: ops.sum(ste.binary_step(x, backward)))(x)
        np.testing.assert_array_equal(stevq.to_numpy(gradient), expected)
        np.testing.assert_array_equal(stevq.to_numpy(ste.surrogate_derivative(x, backward)), expected)


@pytest.mark.parametrize("backward", ste.SURROGATES)
def test_binary_step_coarse_gradient_of_the_two_layer_model(backend, backward):
    """Yin et al.'s coarse gradient: for y = v^T sigma(Z w) and l = (y - y*)^2 / 2, the STE gives
    dl/dw = Z^T (mu'(Z w) * v) r with r = y - y*, and the exact dl/dv = sigma(Z w) r."""
    r = np.random.default_rng(3)
    z_host, w_host, v_host = r.standard_normal((5, 4)), r.standard_normal(4), r.standard_normal(5)
    target = 0.7
    z = stevq.asarray(z_host)

    def loss(w, v):
        y = ops.sum(ops.multiply(v, ste.binary_step(ops.matmul(z, w), backward)))
        return ops.multiply(0.5, ops.square(ops.subtract(y, target)))

    w, v = stevq.asarray(w_host), stevq.asarray(v_host)
    pre = z_host @ w_host
    residual = v_host @ (pre > 0) - target
    np.testing.assert_allclose(
        stevq.to_numpy(grad(loss, 0)(w, v)),
        z_host.T @ (mu_prime(pre, backward) * v_host) * residual,
        rtol=1e-12,
        atol=1e-14,
    )
    np.testing.assert_allclose(stevq.to_numpy(grad(loss, 1)(w, v)), (pre > 0) * residual, rtol=1e-12, atol=1e-14)


# --- k-bit quantized ReLU ----------------------------------------------------------------------------


@pytest.mark.parametrize("backward", ste.SURROGATES)
@pytest.mark.parametrize("bits, step", [(1, None), (2, None), (4, None), (2, 0.3), (4, 0.05)])
def test_quantized_relu(backend, bits, step, backward):
    levels = 2**bits - 1
    step_value = 1.0 / levels if step is None else step
    top = levels * step_value
    spread = np.random.default_rng(4).uniform(-0.3 * top, 1.2 * top, (8, 16))
    host_x = away_from(spread, step_value * np.arange(levels + 1), margin=1e-3 * step_value)
    out = stevq.to_numpy(ste.quantized_relu(stevq.asarray(host_x), bits, step, backward))
    np.testing.assert_allclose(out, quantized_levels(host_x, bits, step_value), rtol=1e-15, atol=0)
    assert len(np.unique(out)) == levels + 1  # every level is reached by these inputs
    check_backward_is_surrogate(lambda x: ste.quantized_relu(x, bits, step, backward), host_x, backward, top)


def test_one_bit_quantized_relu_is_the_binary_step(backend):
    host_x = host_inputs()
    x = stevq.asarray(host_x)
    np.testing.assert_array_equal(stevq.to_numpy(ste.quantized_relu(x, bits=1)), stevq.to_numpy(ste.binary_step(x)))


def test_quantized_relu_levels_by_hand(backend):
    """2 bits, step 1/3: levels 0, 1/3, 2/3, 1; x in ((k-1)/3, k/3] goes to k/3."""
    x = stevq.asarray(np.array([-1.0, 0.0, 0.1, 1 / 3 + 1e-9, 0.5, 0.9, 1.0 + 1e-9, 5.0]))
    expected = np.array([0, 0, 1, 2, 2, 3, 3, 3]) / 3
    np.testing.assert_allclose(stevq.to_numpy(ste.quantized_relu(x, bits=2)), expected, rtol=1e-15, atol=0)


# --- rounding ------------------------------------------------------------------------------------------


def test_round_ste(backend):
    """Forward round(x) (half to even, like NumPy); backward the identity: dL/dx = dL/dy."""
    host_x = 3 * host_inputs(kinks=np.arange(-10, 11) + 0.5)
    out = stevq.to_numpy(ste.round_ste(stevq.asarray(host_x)))
    np.testing.assert_array_equal(out, np.round(host_x))
    halves = stevq.asarray(np.array([-0.5, 0.5, 1.5, 2.5]))
    np.testing.assert_array_equal(stevq.to_numpy(ste.round_ste(halves)), [-0.0, 0.0, 2.0, 2.0])
    check_backward_is_surrogate(ste.round_ste, host_x, "identity", top=None)


# --- surrogate_derivative and dtypes --------------------------------------------------------------------


@pytest.mark.parametrize("backward", ste.SURROGATES)
def test_surrogate_derivative(backend, backward):
    host_x = host_inputs(kinks=(0.0, 0.6))
    got = stevq.to_numpy(ste.surrogate_derivative(stevq.asarray(host_x), backward, top=0.6))
    np.testing.assert_array_equal(got, mu_prime(host_x, backward, top=0.6))


@pytest.mark.parametrize(
    "function",
    [lambda x: ste.binary_step(x), lambda x: ste.quantized_relu(x, 2), ste.round_ste],
    ids=["binary_step", "quantized_relu", "round_ste"],
)
def test_float32_stays_float32(backend, function):
    """No silent upcast: float32 in, float32 out, float32 gradient."""
    x = stevq.asarray(host_inputs(), "float32")
    assert function(x).dtype == stevq.backend.resolve_dtype("float32")
    assert grad(lambda x: ops.sum(function(x)))(x).dtype == stevq.backend.resolve_dtype("float32")
