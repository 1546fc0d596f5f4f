"""Bring your own STE: any surrogate through ``ste.binary_step`` and Yin et al.'s theory. The
quadrature of E g against the three closed forms, and against the engine's Monte Carlo coarse
gradient for the added surrogates; a surrogate of one's own, given as mu or as mu', on every backend."""

import numpy as np
import pytest

import stevq
from stevq import ops, ste
from stevq.theory import yin2019

ADDED = ("leaky_clipped_relu", "tanh", "approx_sign")


def _point(rng, m, n):
    return (
        rng.standard_normal(m),
        rng.standard_normal(n) * rng.uniform(0.2, 3.0),
        rng.standard_normal(m),
        rng.standard_normal(n),
    )


def _near_the_axis(rng, m, n, gap, side):
    """A point with theta = gap or pi - gap (where Phi(u cot theta) is nearly a step)."""
    v, v_star, w_star = rng.standard_normal(m), rng.standard_normal(m), rng.standard_normal(n)
    unit = w_star / np.linalg.norm(w_star)
    other = rng.standard_normal(n)
    other -= (other @ unit) * unit
    theta = gap if side == 0 else np.pi - gap
    w = (np.cos(theta) * unit + np.sin(theta) * other / np.linalg.norm(other)) * rng.uniform(0.3, 3.0)
    return v, w, v_star, w_star


def test_quadrature_equals_the_three_closed_forms():
    """50 random points, and 10 within 1e-1 .. 1e-6 of theta = 0 and pi."""
    rng = np.random.default_rng(0)
    points = [_point(rng, 6, 5) for _ in range(50)]
    points += [_near_the_axis(rng, 6, 5, gap, side) for gap in (1e-1, 1e-2, 1e-3, 1e-4, 1e-6) for side in (0, 1)]
    for v, w, v_star, w_star in points:
        for name in ste.SURROGATES:
            closed = yin2019.expected_coarse_grad(v, w, v_star, w_star, name)
            quadrature = yin2019.expected_coarse_grad(v, w, v_star, w_star, ste.REGISTRY[name])
            np.testing.assert_allclose(quadrature, closed, rtol=0, atol=1e-10 * max(1.0, np.abs(closed).max()))


@pytest.mark.slow  # Monte Carlo with many samples
def test_quadrature_equals_the_engines_monte_carlo_for_the_added_surrogates():
    """10^6 Gaussian inputs per point (100 batch means), every coordinate within 4 standard errors."""
    rng = np.random.default_rng(1)
    m, n = 2, 3
    for _ in range(20):
        v, w, v_star, w_star = _point(rng, m, n)
        means = {name: [] for name in ADDED}
        for _ in range(100):
            Z = rng.standard_normal((10000, m, n))
            for name in ADDED:
                means[name].append(stevq.to_numpy(yin2019.coarse_grad(v, w, Z, v_star, w_star, name)[1]))
        for name in ADDED:
            batch = np.asarray(means[name])
            se = batch.std(axis=0, ddof=1) / np.sqrt(len(batch))
            expected = yin2019.expected_coarse_grad(v, w, v_star, w_star, name)
            assert np.all(np.abs(batch.mean(axis=0) - expected) < 4 * se), (name, batch.mean(axis=0), expected, se)


def _mine(given):
    """A surrogate of one's own (not registered): the smooth step x^2 (3 - 2x) on [0, 1]."""
    mu = lambda x: ops.multiply(
        ops.square(ops.clip(x, 0.0, 1.0)), ops.subtract(3.0, ops.multiply(2.0, ops.clip(x, 0.0, 1.0)))
    )
    mu_prime = lambda x: ops.multiply(
        6.0, ops.multiply(ops.clip(x, 0.0, 1.0), ops.subtract(1.0, ops.clip(x, 0.0, 1.0)))
    )
    if given == "mu":
        return ste.Surrogate("smoothstep", function=mu, kinks=(0.0, 1.0)), mu
    return ste.Surrogate("smoothstep", derivative=mu_prime, kinks=(0.0, 1.0)), mu


@pytest.mark.parametrize("given", ["mu", "mu'"])
def test_a_surrogate_of_ones_own_runs_everywhere(backend, given):
    surrogate, mu = _mine(given)
    x0 = np.array([-0.5, 0.1, 0.3, 0.5, 0.8, 1.4])
    g0 = np.array([1.0, -2.0, 0.5, 3.0, 1.5, 2.0])
    # the backward pass is g * mu'(x), mu' by central differences of mu
    grad = stevq.grad(lambda x: ops.sum(ops.multiply(ste.binary_step(x, surrogate), stevq.asarray(g0))))
    got = stevq.to_numpy(grad(stevq.asarray(x0)))
    h = 1e-6
    with stevq.use("numpy"):
        slope = (stevq.to_numpy(mu(x0 + h)) - stevq.to_numpy(mu(x0 - h))) / (2 * h)
    np.testing.assert_allclose(got, g0 * slope, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(stevq.to_numpy(ste.binary_step(stevq.asarray(x0), surrogate)), x0 > 0)
    # the theory: expectation by quadrature, the engine's Monte Carlo, coarse gradient descent
    rng = np.random.default_rng(2)
    v, w, v_star, w_star = _point(rng, 3, 4)
    expected = yin2019.expected_coarse_grad(
        stevq.asarray(v), stevq.asarray(w), stevq.asarray(v_star), stevq.asarray(w_star), surrogate
    )
    Z = rng.standard_normal((200000, 3, 4))
    sampled = yin2019.coarse_grad(
        stevq.asarray(v), stevq.asarray(w), stevq.asarray(Z), stevq.asarray(v_star), stevq.asarray(w_star), surrogate
    )[1]
    assert np.abs(stevq.to_numpy(sampled) - stevq.to_numpy(expected)).max() < 0.05
    trajectory = yin2019.coarse_gradient_descent(v, w, v_star, w_star, surrogate, 0.05, 20)
    sampled_run = yin2019.coarse_gradient_descent(v, w, v_star, w_star, surrogate, 0.05, 3, batch=64)
    assert np.all(np.isfinite(trajectory.f)) and trajectory.f.shape == (21,) and sampled_run.f.shape == (4,)


def test_mu_and_mu_prime_give_the_same_surrogate():
    from_mu, _ = _mine("mu")
    from_derivative, _ = _mine("mu'")
    x = np.linspace(-1, 2, 31)
    np.testing.assert_allclose(from_mu.mu_prime(x), from_derivative.mu_prime(x), atol=1e-12)
    rng = np.random.default_rng(3)
    v, w, v_star, w_star = _point(rng, 4, 3)
    np.testing.assert_allclose(
        yin2019.expected_coarse_grad(v, w, v_star, w_star, from_mu),
        yin2019.expected_coarse_grad(v, w, v_star, w_star, from_derivative),
        atol=1e-12,
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda x: x, r"^ste: expected a registered name .* or a stevq.ste.Surrogate, got function"),
        ("sigmoid", r"^ste: expected one of .*'approx_sign'\), got 'sigmoid'"),
        (
            ste.Surrogate("nan", derivative=lambda x: ops.log(ops.subtract(x, 10.0))),
            r"^ste: surrogate 'nan': mu' gave non-finite",
        ),
        (
            ste.Surrogate("short", derivative=lambda x: x[:2]),
            r"^ste: surrogate 'short': mu' must keep its input's shape",
        ),
    ],
)
def test_a_bad_surrogate_is_a_clear_error_naming_it(bad, message):
    rng = np.random.default_rng(4)
    v, w, v_star, w_star = _point(rng, 3, 4)
    with np.errstate(invalid="ignore"):
        with pytest.raises((TypeError, ValueError), match=message):
            yin2019.expected_coarse_grad(v, w, v_star, w_star, bad)
        with pytest.raises((TypeError, ValueError), match=message.replace("ste: ", "backward: ")):
            ste.binary_step(stevq.asarray(w), bad)
    with pytest.raises(TypeError, match="give function=mu or derivative=mu'"):
        ste.Surrogate("empty")
    with pytest.raises(TypeError, match="derivative must be a function"):
        ste.Surrogate("number", derivative=3.0)


def test_every_registered_surrogate_states_its_formula_and_source():
    for name, surrogate in ste.REGISTRY.items():
        assert surrogate.name == name and surrogate.formula and surrogate.source


def test_quant_act_and_the_layers_take_any_registered_surrogate(tmp_path, capsys):
    from test_cli import SYNTHETIC

    from stevq import nn
    from stevq.__main__ import main

    quick = ["run", "quant-act", "--quick", "--no-progress", *SYNTHETIC]
    three = ["--set", "stes=relu,tanh,approx_sign", "--set", "instability_from=relu"]
    assert main([*quick, "--out", str(tmp_path / "run"), *three]) == 0
    assert "| net | bits | relu | tanh | approx_sign |" in capsys.readouterr().out
    assert main([*quick, "--out", str(tmp_path / "bad"), "--set", "stes=relu,sigmoid"]) == 2
    assert "stes: expected one of" in capsys.readouterr().err
    mine, _ = _mine("mu'")
    _, apply = nn.serial(nn.QuantReLU(2, backward=mine))
    x = stevq.asarray(np.array([[-0.2, 0.3, 0.9]]))
    gradient = stevq.grad(lambda x: ops.sum(apply([{}], x)))(x)
    np.testing.assert_allclose(stevq.to_numpy(gradient), stevq.to_numpy(mine.mu_prime(np.array([[-0.2, 0.3, 0.9]]))))
    with pytest.raises(TypeError, match="^backward: expected a registered name"):
        nn.BinaryAct(backward=3)


def test_ste_check_gives_yin_et_al_s_verdicts_in_one_command(tmp_path, capsys):
    from stevq.__main__ import main
    from stevq.experiments.yin2019 import ste_check

    small = ["--set", "angles=4", "--set", "norms=3"]
    verdicts = {}
    for name in ("identity", "relu"):
        out = tmp_path / name
        assert (
            main(["run", "ste-check", "--quick", "--no-progress", "--set", f"ste={name}", *small, "--out", str(out)])
            == 0
        )
        verdicts[name] = __import__("json").loads((out / "metrics.json").read_text())["metrics"]
        assert (out / "map.png").stat().st_size > 10_000
    assert verdicts["identity"]["verdict"]["word"] == "like the identity STE"
    assert verdicts["relu"]["verdict"]["word"] == "like clipped ReLU"
    # the map is the correlation lemma: for ReLU, E g is a descent direction everywhere on it
    assert np.min(verdicts["relu"]["map"]["cosine"]) >= 0
    assert "**Verdict: like clipped ReLU.**" in capsys.readouterr().out
    assert (
        ste_check.verdict(
            {"grad_norm_at_spurious": 0.5, "identity_grad_norm_at_spurious": 0.9, "converged": True, "increases": 0},
            {"critical": 20, "runs": 20},
        )[0]
        == "mixed"
    )
    assert main(["run", "ste-check", "--quick", "--set", "ste=sigmoid", "--out", str(tmp_path / "bad")]) == 2
    assert "ste: expected one of" in capsys.readouterr().err
