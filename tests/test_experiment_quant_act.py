"""The quantized-activation experiment's pieces: the fixed quantizer step, the networks, the
standardisation layer, parameter files, the training loop and its NaN guard (synthetic data; the
quick run on real Fashion-MNIST is in test_cli.py)."""

import math

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

import stevq
from stevq import ops, optim, runio, testing
from stevq.experiments import training
from stevq.experiments.yin2019 import activation_quantizer, models, quant_act, quant_act_data


def test_half_gaussian_step_one_bit_is_the_half_normal_mean():
    # For 1 bit q(x) = s for every x > 0, so the best s is E|z| = sqrt(2 / pi).
    assert quant_act.half_gaussian_step(1) == pytest.approx(math.sqrt(2 / math.pi), abs=1e-6)


@pytest.mark.parametrize("bits,step", [(1, 0.5), (2, 0.4), (4, 0.1), (4, 0.3)])
def test_half_gaussian_error_matches_monte_carlo(bits, step):
    x = np.abs(np.random.default_rng(bits).standard_normal(400_000))
    squared = (np.minimum(np.ceil(x / step), 2**bits - 1) * step - x) ** 2
    standard_error = squared.std() / np.sqrt(len(x))
    assert abs(activation_quantizer.half_gaussian_error(step, bits) - squared.mean()) < 5 * standard_error


@pytest.mark.parametrize("bits", [2, 4])
def test_half_gaussian_step_minimises_a_monte_carlo_error(bits):
    x = np.abs(np.random.default_rng(bits).standard_normal(400_000))
    top = 2**bits - 1

    def error(step):
        return np.mean((np.minimum(np.ceil(x / step), top) * step - x) ** 2)

    best = quant_act.half_gaussian_step(bits)
    assert error(best) < error(best * 0.9) and error(best) < error(best * 1.1)


def test_standardize_moments_and_gradient(backend, rng):
    _, apply = models.Standardize()
    x = stevq.asarray(rng.normal(3.0, 2.0, (6, 4)))
    y = stevq.to_numpy(apply({}, x))
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-12)
    host = stevq.to_numpy(x)
    np.testing.assert_allclose(y.var(axis=0), host.var(0) / (host.var(0) + models.EPSILON), rtol=1e-12)
    np.testing.assert_allclose(y, (host - host.mean(0)) / np.sqrt(host.var(0) + models.EPSILON), rtol=1e-12)
    weights = stevq.asarray(rng.standard_normal((6, 4)))

    def reference(x, w):
        centred = x - anp.mean(x, axis=0, keepdims=True)
        return anp.sum(w * centred / anp.sqrt(anp.mean(centred**2, axis=0, keepdims=True) + models.EPSILON))

    testing.check_grads(
        lambda x, w: ops.sum(ops.multiply(w, apply({}, x))), x, weights, argnums=[0], reference=reference
    )


def test_standardize_uses_channel_statistics_on_images(rng):
    _, apply = models.Standardize()
    x = stevq.asarray(rng.normal(1.0, 3.0, (4, 3, 5, 5)))
    y = stevq.to_numpy(apply({}, x))
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1.0, rtol=1e-3)


@pytest.mark.parametrize("net", ["mlp", "lenet5"])
def test_float_and_quantized_networks_share_their_parameters(backend, net):
    config = quant_act.Config(quick=True, data="synthetic", dtype="float64")
    init_float, apply_float = quant_act.build(net, models.relu_activation, config)
    init_quant, apply_quant = quant_act.build(net, quant_act.quantized_activation(2, "relu"), config)
    shape, params = init_float(np.random.default_rng(0), (1, 28, 28))
    _, other = init_quant(np.random.default_rng(0), (1, 28, 28))
    assert shape == (10,)
    assert [sorted(layer) for layer in params] == [sorted(layer) for layer in other]
    x = stevq.asarray(np.random.default_rng(1).uniform(0, 1, (3, 1, 28, 28)))
    assert apply_quant(params, x).shape == (3, 10) and apply_float(params, x).shape == (3, 10)


def test_quantized_network_emits_only_the_quantizer_levels():
    # The hidden activations of the 2-bit MLP take the values k * step, k = 0..3, and nothing else.
    step = quant_act.half_gaussian_step(2)
    seen = []

    def recording(position):
        init, apply = quant_act.quantized_activation(2, "clipped_relu")(position)
        return init, lambda params, x: seen.append(stevq.to_numpy(apply(params, x))) or apply(params, x)

    init, apply = models.mlp(recording, hidden=(16,), normalize=True, dtype="float64")
    _, params = init(np.random.default_rng(0), (1, 28, 28))
    apply(params, stevq.asarray(np.random.default_rng(1).uniform(0, 1, (50, 1, 28, 28))))
    levels = np.unique(np.round(seen[0] / step, 9))
    assert set(levels) <= {0.0, 1.0, 2.0, 3.0} and len(levels) == 4


def test_params_round_trip(tmp_path, rng):
    params = [
        {"W": stevq.asarray(rng.standard_normal((3, 2)), "float32"), "b": stevq.asarray(np.zeros(2), "float32")},
        {},
        {"W": stevq.asarray(rng.standard_normal((2, 1)), "float32")},
    ]
    quant_act.save_params(tmp_path / "p.npz", params)
    loaded = quant_act.load_params(tmp_path / "p.npz", "float32")
    assert [sorted(layer) for layer in loaded] == [sorted(layer) for layer in params]
    for a, b in zip(optim.tree_leaves(loaded), optim.tree_leaves(params)):
        np.testing.assert_array_equal(stevq.to_numpy(a), stevq.to_numpy(b))


def _small_problem(count=256, seed=0, normalize=True):
    config = quant_act.Config(
        quick=True,
        data="synthetic",
        train_size=count,
        test_size=64,
        loss_eval_size=count,
        mlp_hidden=(32,),
        seed=seed,
        normalize=normalize,
    )
    images, labels, _, _ = quant_act_data.load_data(config)
    init, apply = quant_act.build("mlp", quant_act.quantized_activation(2, "clipped_relu"), config)
    _, params = init(np.random.default_rng(seed), (1, 28, 28))
    return training.Data(images, labels, "float32"), apply, params


def test_annealed_schedule_divides_the_rate_for_the_last_third():
    phases = quant_act.annealed(30, 0.5, 0.9)
    assert [steps for steps, _ in phases] == [20, 10]
    params = {"w": stevq.asarray(np.zeros(1))}
    moved = [get(update(0, {"w": stevq.asarray(np.ones(1))}, init(params)))["w"] for _, (init, update, get) in phases]
    np.testing.assert_allclose([stevq.to_numpy(m)[0] for m in moved], [-0.5, -0.05])


def test_training_lowers_the_loss_and_records_it(backend):
    dataset, apply, params = _small_problem()
    _, history = quant_act.train(
        apply, params, dataset, quant_act.annealed(30, 0.05, 0.9), 32, 0, dataset.size, 10, show_progress=False
    )
    assert history["step"] == [0, 10, 20, 30]
    start, _ = quant_act.evaluate(apply, params, dataset)
    assert history["train_loss"][0] == pytest.approx(start, rel=1e-5)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_training_stops_on_nan_naming_the_step():
    dataset, apply, params = _small_problem()
    with pytest.raises(runio.NonFiniteError, match=r"at step \d+.*last good metrics: \{'step'"):
        quant_act.train(apply, params, dataset, [(50, optim.sgd(1e38))], 32, 0, 64, 10, show_progress=False)
    images = stevq.to_numpy(dataset.x)
    images[5, 0, 3, 3] = np.nan  # one poisoned example: the first batch holding it has a NaN loss
    poisoned = training.Data(images, stevq.to_numpy(dataset.y), "float32")
    order = np.random.default_rng(0).permutation(dataset.size)
    first = int(np.nonzero(order == 5)[0][0]) // 32 + 1  # steps count from 1: step n trains on the n-th batch
    with pytest.raises(runio.NonFiniteError, match=rf"at step {first}:"):
        quant_act.train(
            apply, params, poisoned, [(dataset.size // 32, optim.sgd(0.01))], 32, 0, 1, 1000, show_progress=False
        )


def test_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="nets"):
        quant_act.Config(nets=("resnet",))
    with pytest.raises(ValueError, match="bits"):
        quant_act.Config(bits=(0,))
    with pytest.raises(TypeError, match="lr"):
        quant_act.Config(lr="fast")
    with pytest.raises(ValueError, match="loss_eval_size"):
        quant_act.Config(quick=True, train_size=100, loss_eval_size=200)
    with pytest.raises(ValueError, match="batch_size"):
        quant_act.Config(quick=True, train_size=100, loss_eval_size=50, batch_size=128)
    assert quant_act.Config(quick=True, bits=2).bits == (2,)


def test_summary_reports_the_table_and_the_instability_by_hand():
    from stevq.experiments.yin2019 import quant_act_report as report

    config = quant_act.Config(quick=True, bits=(2,), instability_lrs=(0.05,))

    def result(ste, loss, accuracy):
        return {
            "net": "mlp",
            "bits": 2,
            "ste": ste,
            "train_loss": loss,
            "test_accuracy": accuracy,
            "history": {"step": [0, 10], "train_loss": [1.0, loss]},
        }

    def continued(backward, losses):
        return {
            "net": "mlp",
            "bits": 2,
            "from": "relu",
            "continued_with": backward,
            "lr": 0.05,
            "test_accuracy": 0.8,
            "history": {"step": [0, 5, 10], "train_loss": losses},
        }

    floats = [dict(result("-", 0.25, 0.88), bits="float")]
    grid = [result("identity", 0.338, 0.8497), result("relu", 0.254, 0.8783), result("clipped_relu", 0.246, 0.879)]
    instability = [continued("identity", [0.20, 0.30, 0.25]), continued("relu", [0.20, 0.198, 0.199])]
    gradients = [
        {
            "net": "mlp",
            "bits": 2,
            "from": "relu",
            "coarse_gradient_norm": {"identity": 0.47, "relu": 0.21, "clipped_relu": 0.2},
        }
    ]
    metrics = report.metrics(floats, grid, instability, gradients)
    rows = {r["continued_with"]: r for r in metrics["instability"]}
    assert rows["identity"]["change_percent"] == pytest.approx(25.0)
    assert rows["identity"]["loss_max"] == 0.30 and rows["identity"]["grad_norm_at_start"] == 0.47
    assert rows["relu"]["change_percent"] == pytest.approx(-0.5)
    text = report.summary(config, metrics, "numpy")
    assert "| mlp | 2 | 0.338 / 84.97 | 0.254 / 87.83 | 0.246 / 87.90 |" in text
    assert "mlp, 2 bit: highest training loss with the identity STE." in text
    assert "identity STE the training loss rises (0.2 -> 0.25, +25.0%, peak 0.3)" in text
    assert "with the relu STE: 0.2 -> 0.199 (-0.5%, peak 0.2)" in text
    assert set(metrics["curves"]) == {
        "mlp-float",
        "mlp-2bit-identity",
        "mlp-2bit-relu",
        "mlp-2bit-clipped_relu",
        "mlp-2bit-relu-then-identity-lr0.05",
        "mlp-2bit-relu-then-relu-lr0.05",
    }


def test_coarse_gradient_norm_sums_the_chunks(backend):
    # Three chunks of at most 1000 examples; no batch standardisation, whose statistics would
    # differ between a chunk and the whole set.
    dataset, apply, params = _small_problem(count=2300, normalize=False)
    whole = autograd.grad(lambda p: ops.cross_entropy(apply(p, dataset.x), dataset.y))(params)
    expected = np.sqrt(sum(np.sum(stevq.to_numpy(g).astype(np.float64) ** 2) for g in optim.tree_leaves(whole)))
    got = quant_act.coarse_gradient_norm(apply, params, dataset, dataset.size)
    assert got == pytest.approx(expected, rel=1e-4)
