"""The VQ layer (channel layouts, float32, gradients equal to the functional pieces) and the toy
covariate-shift setting of Huh et al. (standard codes stay put, affine ones close the gap), with
the same numbers on both CPU backends."""

import numpy as np
import pytest
from autograd import grad

import stevq
from stevq import ops, theory, vq


def test_channel_first_and_channel_last_agree(backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5))  # NCHW with D = 3 channels
    init, apply_first = vq.VectorQuantizer(6, channel_axis=1)
    shape, params = init(np.random.default_rng(1), (3, 4, 5))
    assert shape == (3, 4, 5) and tuple(params["codebook"].shape) == (6, 3)
    _, apply_last = vq.VectorQuantizer(6, channel_axis=-1)
    out_first, aux_first = apply_first(params, stevq.asarray(x))
    out_last, aux_last = apply_last(params, stevq.asarray(np.transpose(x, (0, 2, 3, 1))))
    np.testing.assert_array_equal(np.transpose(stevq.to_numpy(out_first), (0, 2, 3, 1)), stevq.to_numpy(out_last))
    np.testing.assert_array_equal(stevq.to_numpy(aux_first["indices"]), stevq.to_numpy(aux_last["indices"]))
    codebook = stevq.to_numpy(params["codebook"])
    rows = np.transpose(x, (0, 2, 3, 1)).reshape(-1, 3)
    nearest = np.argmin(((rows[:, None] - codebook[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(stevq.to_numpy(aux_first["indices"]).ravel(), nearest)


@pytest.mark.parametrize("estimator", ["ste", "sync"])
def test_layer_codebook_gradient_is_the_explicit_one(backend, estimator):
    rng = np.random.default_rng(2)
    x, weights = stevq.asarray(rng.standard_normal((20, 4))), rng.standard_normal((20, 4))
    init, apply = vq.VectorQuantizer(8, estimator=estimator, nu=0.5, beta=0.25)
    _, params = init(np.random.default_rng(3), (4,))

    def loss(params):
        out, aux = apply(params, x)
        return ops.add(ops.sum(ops.multiply(stevq.asarray(weights), out)), aux["loss"])

    got = stevq.to_numpy(grad(loss)(params)["codebook"])
    indices = vq.nearest_code(x, params["codebook"])
    expected = stevq.to_numpy(vq.codebook_grad(x, indices, 8, params["codebook"]))
    if estimator == "sync":
        np.add.at(expected, stevq.to_numpy(indices), 0.5 * weights)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("estimator, affine", [("rotation", "learned"), ("sync", "running")])
def test_float32_stays_float32(backend, estimator, affine):
    init, apply = vq.VectorQuantizer(16, estimator=estimator, affine=affine, dtype="float32")
    _, params = init(np.random.default_rng(4), (8,))
    x = stevq.asarray(np.random.default_rng(5).standard_normal((32, 8)), "float32")
    stats = vq.update_running_affine(vq.init_running_affine(8), x, params["codebook"]) if affine == "running" else None
    loss = lambda p: ops.add(ops.mean(ops.square(apply(p, x, stats)[0])), apply(p, x, stats)[1]["loss"])
    out, aux = apply(params, x, stats)
    assert out.dtype == x.dtype and aux["loss"].dtype == x.dtype
    assert all(g.dtype == x.dtype for g in grad(loss)(params).values())


def test_running_affine_layer_needs_stats(backend):
    init, apply = vq.VectorQuantizer(4, affine="running")
    _, params = init(np.random.default_rng(6), (2,))
    x = stevq.asarray(np.random.default_rng(7).standard_normal((10, 2)))
    with pytest.raises(ValueError, match="stats"):
        apply(params, x)
    stats = vq.update_running_affine(vq.init_running_affine(2), x, params["codebook"])
    out, aux = apply(params, x, stats=stats)
    np.testing.assert_allclose(stevq.to_numpy(aux["codebook"]).mean(0), stevq.to_numpy(x).mean(0), atol=1e-12)


@pytest.fixture(scope="module")
def toy_numpy():
    with stevq.use("numpy"):
        return theory.covariate_shift(("standard", "affine", "running"))


def test_covariate_shift_standard_stays_affine_closes_the_gap(toy_numpy):
    standard, affine, running = toy_numpy["standard"], toy_numpy["affine"], toy_numpy["running"]
    # standard: most codes never chosen, hence never updated; the gap barely moves
    assert 0.5 <= standard["never_updated"] <= 0.9
    assert standard["never_updated"] == pytest.approx(1.0 - standard["ever_chosen"])
    sw = lambda run, when: run[f"gap_{when}"]["sliced_wasserstein"]
    assert sw(standard, "after") > 0.95 * sw(standard, "before")
    # affine and running statistics: every code moves, and most of the gap is closed
    for run in (affine, running):
        assert run["never_updated"] == 0.0
        assert run["ever_chosen"] > standard["ever_chosen"] + 0.3
        assert sw(run, "after") < 0.5 * sw(run, "before")
        assert run["gap_after"]["mean_gap"] < 0.5 * run["gap_before"]["mean_gap"]


def test_covariate_shift_same_numbers_on_array_api_strict(toy_numpy):
    with stevq.use("array_api_strict"):
        strict = theory.covariate_shift(("standard", "affine", "running"))
    for name, run in toy_numpy.items():
        assert strict[name]["never_updated"] == run["never_updated"]
        assert strict[name]["ever_chosen"] == run["ever_chosen"]
        for when in ("before", "after"):
            for key, value in run[f"gap_{when}"].items():
                assert strict[name][f"gap_{when}"][key] == pytest.approx(value, rel=1e-9)
