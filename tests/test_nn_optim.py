"""Layers and optimizers: the strict array-API run is the proof that model code needs nothing but
stevq.ops. Small networks trained on array_api_strict end with NumPy's parameters (float64, 1e-8);
the optimizer equations are checked against a hand computation."""

import numpy as np
import pytest
from autograd import grad, value_and_grad

import stevq
from stevq import nn, ops, optim
from stevq.testing import check_grads

STRICT = "array_api_strict"


def mlp():
    return nn.serial(nn.Dense(16), nn.Tanh, nn.Dense(16), nn.Relu, nn.Dense(3))


def cnn():
    return nn.serial(
        nn.Conv(4, kernel=3, padding=1),
        nn.Relu,
        nn.MaxPool(2),
        nn.Conv(4, kernel=3, stride=2, padding=1),
        nn.Sigmoid,
        nn.Flatten,
        nn.Dense(3),
    )


def quantized_autoencoder_classifier():
    """Every other layer once: conv, quantized and binary activations, transposed conv, upsampling,
    average pooling, reshape."""
    return nn.serial(
        nn.Conv(3, kernel=3, stride=2, padding=1),
        nn.QuantReLU(bits=2, backward="clipped_relu"),
        nn.ConvTranspose(2, kernel=4, stride=2, padding=1),
        nn.BinaryAct("identity"),
        nn.AvgPool(2),
        nn.Upsample(2),
        nn.Conv(2, kernel=2, stride=2),
        nn.Flatten,
        nn.Reshape((2, 16)),
        nn.Flatten,
        nn.Dense(3),
    )


def data(input_shape, batch=8, seed=1):
    r = np.random.default_rng(seed)
    return r.standard_normal((batch,) + input_shape), r.integers(0, 3, batch)


def train(backend_name, model, input_shape, optimizer, steps=20, seed=0):
    """Train with cross-entropy; returns final parameters (host copies) and the losses."""
    x_host, labels_host = data(input_shape)
    with stevq.use(backend_name):
        init, apply = model
        _, params = init(np.random.default_rng(seed), input_shape)
        x, labels = stevq.asarray(x_host), stevq.asarray(labels_host)
        loss = lambda p: ops.cross_entropy(apply(p, x), labels)
        opt_init, opt_update, get_params = optimizer
        state = opt_init(params)
        losses = []
        for step in range(steps):
            value, gradients = value_and_grad(loss)(get_params(state))
            losses.append(float(stevq.to_numpy(value)))
            state = opt_update(step, gradients, state)
        return optim.tree_map(stevq.to_numpy, get_params(state)), losses


def assert_same_trees(a, b, tolerance):
    leaves_a, leaves_b = optim.tree_leaves(a), optim.tree_leaves(b)
    assert len(leaves_a) == len(leaves_b) > 0
    for left, right in zip(leaves_a, leaves_b):
        assert left.shape == right.shape
        assert np.max(np.abs(left - right)) <= tolerance


@pytest.mark.parametrize(
    "model, input_shape, optimizer, steps",
    [
        pytest.param(mlp, (8,), lambda: optim.adam(1e-2), 20, id="mlp-adam"),
        pytest.param(mlp, (8,), lambda: optim.sgd(0.1, momentum=0.9), 20, id="mlp-sgd-momentum"),
        pytest.param(cnn, (1, 8, 8), lambda: optim.adam(1e-2), 20, id="cnn-adam"),
        pytest.param(quantized_autoencoder_classifier, (1, 8, 8), lambda: optim.adam(1e-2), 5, id="quantized-adam"),
    ],
)
def test_strict_training_ends_with_numpy_parameters(model, input_shape, optimizer, steps):
    on_numpy, losses_numpy = train("numpy", model(), input_shape, optimizer(), steps)
    on_strict, losses_strict = train(STRICT, model(), input_shape, optimizer(), steps)
    assert_same_trees(on_strict, on_numpy, 1e-8)
    np.testing.assert_allclose(losses_strict, losses_numpy, rtol=0, atol=1e-10)
    assert losses_numpy[-1] < losses_numpy[0]  # and training did something


@pytest.mark.parametrize(
    "model, input_shape",
    [(mlp, (8,)), (cnn, (1, 8, 8)), (quantized_autoencoder_classifier, (1, 8, 8))],
    ids=["mlp", "cnn", "quantized"],
)
def test_same_seed_same_init_on_both_backends(model, input_shape):
    trees = []
    for name in ("numpy", STRICT):
        with stevq.use(name):
            out_shape, params = model()[0](np.random.default_rng(7), input_shape)
            trees.append(optim.tree_map(stevq.to_numpy, params))
    assert out_shape == (3,)
    assert_same_trees(trees[0], trees[1], 0.0)
    with stevq.use("numpy"):
        _, other = model()[0](np.random.default_rng(8), input_shape)
    assert np.any(optim.tree_leaves(other)[0] != optim.tree_leaves(trees[0])[0])  # the seed matters


LAYERS = {
    "Dense": (nn.Dense(5), (2, 4)),
    "Dense-3d": (nn.Dense(5), (3, 2, 4)),
    "Conv": (nn.Conv(3, kernel=3, stride=2, padding=1), (2, 2, 7, 7)),
    "ConvTranspose": (nn.ConvTranspose(2, kernel=4, stride=2, padding=1), (2, 3, 3, 3)),
    "MaxPool": (nn.MaxPool(2), (2, 2, 4, 6)),
    "AvgPool": (nn.AvgPool(3), (1, 2, 6, 3)),
    "Upsample": (nn.Upsample(3), (1, 2, 2, 3)),
    "Flatten": (nn.Flatten, (2, 3, 2, 2)),
    "Reshape": (nn.Reshape((4, 3)), (2, 12)),
    "Relu": (nn.Relu, (2, 5)),
    "Gelu": (nn.Gelu, (2, 5)),
    "GlobalMaxPool": (nn.GlobalMaxPool(), (2, 3, 4, 5)),
    "Clip": (nn.Clip(-1.0, 1.0), (2, 5)),
    "Dense-uniform": (nn.Dense(5, weight_init="uniform"), (2, 4)),
    "Conv-uniform": (nn.Conv(3, kernel=3, padding=1, weight_init="uniform"), (2, 2, 5, 5)),
    "BinaryAct": (nn.BinaryAct("relu"), (2, 5)),
    "QuantReLU": (nn.QuantReLU(4), (2, 5)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_init_output_shape_matches_apply(backend, name):
    (init, apply), shape = LAYERS[name]
    out_shape, params = init(np.random.default_rng(0), shape[1:])
    x = stevq.asarray(np.random.default_rng(1).standard_normal(shape))
    assert tuple(apply(params, x).shape) == (shape[0],) + tuple(out_shape)


def test_dense_and_conv_compute_their_formulas(backend):
    r = np.random.default_rng(3)
    init, apply = nn.Dense(4)
    _, params = init(r, (3,))
    params = {"W": params["W"], "b": stevq.asarray(r.standard_normal(4))}
    x_host = r.standard_normal((2, 3))
    expected = x_host @ stevq.to_numpy(params["W"]) + stevq.to_numpy(params["b"])
    np.testing.assert_allclose(stevq.to_numpy(apply(params, stevq.asarray(x_host))), expected, rtol=1e-13)
    init, apply = nn.Conv(2, kernel=2)
    _, params = init(r, (1, 3, 3))
    params = {"W": params["W"], "b": stevq.asarray(np.array([0.5, -1.0]))}
    x_host = r.standard_normal((1, 1, 3, 3))
    weight = stevq.to_numpy(params["W"])
    expected = np.zeros((1, 2, 2, 2))
    for o in range(2):
        for y in range(2):
            for x in range(2):
                expected[0, o, y, x] = np.sum(weight[o, 0] * x_host[0, 0, y : y + 2, x : x + 2]) + [0.5, -1.0][o]
    np.testing.assert_allclose(stevq.to_numpy(apply(params, stevq.asarray(x_host))), expected, rtol=1e-13)


def test_dtype_float32_layers_stay_float32(backend):
    init, apply = nn.serial(nn.Conv(2, dtype="float32"), nn.Relu, nn.Flatten, nn.Dense(3, dtype="float32"))
    _, params = init(np.random.default_rng(0), (1, 5, 5))
    x = stevq.asarray(np.ones((2, 1, 5, 5)), "float32")
    labels = stevq.asarray(np.array([0, 2]))
    float32 = stevq.backend.resolve_dtype("float32")
    assert all(leaf.dtype == float32 for leaf in optim.tree_leaves(params))
    gradients = grad(lambda p: ops.cross_entropy(apply(p, x), labels))(params)
    assert all(leaf.dtype == float32 for leaf in optim.tree_leaves(gradients))


def test_model_gradient_matches_finite_differences(backend):
    """The whole MLP's loss, differentiated with respect to the first weight matrix."""
    init, apply = nn.serial(nn.Dense(4), nn.Tanh, nn.Dense(3))
    _, params = init(np.random.default_rng(0), (3,))
    x_host, labels_host = data((3,), batch=5)
    x, labels = stevq.asarray(x_host), stevq.asarray(labels_host)
    loss = lambda first, rest: ops.cross_entropy(apply([first] + rest, x), labels)
    check_grads(lambda weight: loss({"W": weight, "b": params[0]["b"]}, params[1:]), params[0]["W"])


# --- optimizers by hand ---------------------------------------------------------------------------------


def _tree(values):
    return {"a": stevq.asarray(values[0]), "nested": [stevq.asarray(values[1])]}


HOST_PARAMS = [np.array([1.0, -2.0]), np.array([[0.5]])]
HOST_GRADS = [[np.array([0.3, -0.1]), np.array([[2.0]])], [np.array([-0.2, 0.4]), np.array([[-1.0]])]]


def _run_two_steps(optimizer):
    opt_init, opt_update, get_params = optimizer
    state = opt_init(_tree(HOST_PARAMS))
    for step, gradients in enumerate(HOST_GRADS):
        state = opt_update(step, _tree(gradients), state)
    params = get_params(state)
    return [stevq.to_numpy(params["a"]), stevq.to_numpy(params["nested"][0])]


def test_sgd_momentum_two_steps_by_hand(backend):
    lr, momentum = 0.1, 0.9
    for p0, g0, g1, got in zip(HOST_PARAMS, *HOST_GRADS, _run_two_steps(optim.sgd(lr, momentum))):
        v1 = g0  # v <- momentum v + g from v = 0
        p1 = p0 - lr * v1
        v2 = momentum * v1 + g1
        np.testing.assert_allclose(got, p1 - lr * v2, rtol=1e-15, atol=1e-15)


def test_plain_sgd_is_gradient_descent(backend):
    for p0, g0, g1, got in zip(HOST_PARAMS, *HOST_GRADS, _run_two_steps(optim.sgd(0.5))):
        np.testing.assert_allclose(got, p0 - 0.5 * g0 - 0.5 * g1, rtol=1e-15, atol=1e-15)


def test_adam_two_steps_by_hand(backend):
    lr, b1, b2, eps = 0.01, 0.8, 0.9, 1e-3
    for p0, g0, g1, got in zip(HOST_PARAMS, *HOST_GRADS, _run_two_steps(optim.adam(lr, b1, b2, eps))):
        # step 1 (t = 1): bias correction undoes the (1 - b) factors, so the move is lr g / (|g| + eps)
        p1 = p0 - lr * g0 / (np.abs(g0) + eps)
        # step 2 (t = 2)
        m2 = b1 * (1 - b1) * g0 + (1 - b1) * g1
        s2 = b2 * (1 - b2) * g0**2 + (1 - b2) * g1**2
        p2 = p1 - lr * (m2 / (1 - b1**2)) / (np.sqrt(s2 / (1 - b2**2)) + eps)
        np.testing.assert_allclose(got, p2, rtol=1e-14, atol=1e-15)


def test_adamw_two_steps_by_hand(backend):
    """Decoupled weight decay: p <- (1 - lr wd) p, then Adam's move (PyTorch's AdamW)."""
    lr, b1, b2, eps, wd = 0.01, 0.8, 0.9, 1e-3, 0.5
    for p0, g0, g1, got in zip(HOST_PARAMS, *HOST_GRADS, _run_two_steps(optim.adamw(lr, b1, b2, eps, wd))):
        p1 = (1 - lr * wd) * p0 - lr * g0 / (np.abs(g0) + eps)
        m2 = b1 * (1 - b1) * g0 + (1 - b1) * g1
        s2 = b2 * (1 - b2) * g0**2 + (1 - b2) * g1**2
        p2 = (1 - lr * wd) * p1 - lr * (m2 / (1 - b1**2)) / (np.sqrt(s2 / (1 - b2**2)) + eps)
        np.testing.assert_allclose(got, p2, rtol=1e-14, atol=1e-15)


def test_adamw_defaults_are_pytorchs_and_zero_decay_is_adam():
    import inspect

    defaults = {k: v.default for k, v in inspect.signature(optim.adamw).parameters.items() if k not in ("lr", "donate")}
    assert defaults == {"b1": 0.9, "b2": 0.999, "eps": 1e-8, "weight_decay": 0.01}
    for left, right in zip(_run_two_steps(optim.adamw(0.01, weight_decay=0.0)), _run_two_steps(optim.adam(0.01))):
        np.testing.assert_array_equal(left, right)
    with pytest.raises(ValueError, match="weight_decay"):
        optim.adamw(0.01, weight_decay=-1.0)


def test_uniform_init_is_pytorchs_default_range():
    """weight_init="uniform": weights and biases inside +-1/sqrt(fan_in) and filling that range."""
    for layer, shape, fan_in in [
        (nn.Conv(8, 3, weight_init="uniform"), (4, 9, 9), 36),
        (nn.Dense(50, weight_init="uniform"), (40,), 40),
    ]:
        _, params = layer[0](np.random.default_rng(0), shape)
        for value in (params["W"], params["b"]):
            assert np.max(np.abs(value)) <= 1 / np.sqrt(fan_in)
        assert np.max(np.abs(params["W"])) > 0.95 / np.sqrt(fan_in)
    with pytest.raises(ValueError, match="weight_init"):
        nn.Conv(8, 3, weight_init="he")


def test_tree_map_and_leaves():
    tree = {"a": 1, "b": [2, (3, 4)], "c": {"d": 5}}
    assert optim.tree_leaves(tree) == [1, 2, 3, 4, 5]
    doubled = optim.tree_map(lambda v, w: v * 10 + w, tree, tree)
    assert doubled == {"a": 11, "b": [22, (33, 44)], "c": {"d": 55}}


@pytest.mark.parametrize("make", [lambda: stevq.optim.adam(0.1), lambda: stevq.optim.sgd(0.1, momentum=0.5)])
def test_optimizers_pair_gradients_with_parameters_by_key(make):
    """A gradient dict whose keys come in another order than the parameters' must still update
    each parameter with its own gradient: the result equals the update with matching order."""
    init, update, get_params = make()
    params = {"a": np.zeros(2), "b": np.zeros(3)}
    same_order = {"a": -np.ones(2), "b": np.full(3, 2.0)}
    other_order = {"b": np.full(3, 2.0), "a": -np.ones(2)}
    expected = get_params(update(0, same_order, init(params)))
    got = get_params(update(0, other_order, init(params)))
    assert expected["a"][0] > 0 and expected["b"][0] < 0
    for key in params:
        np.testing.assert_array_equal(got[key], expected[key])
