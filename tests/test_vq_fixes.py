"""The fixes of Huh et al. 2023 and the rotation trick, checked against hand computations on both
CPU backends: the sync update's code gradient, the affine codebook (values, gradients, unused codes
moving), running statistics, alternating optimisation, and the rotation trick's R^T g."""

import numpy as np
import pytest
from autograd import grad

import stevq
from stevq import ops, vq
from stevq.testing import check_grads

independent_ok = pytest.mark.filterwarnings("ignore:Output seems independent of input")


def problem(seed=0, n=30, k=8, d=3):
    rng = np.random.default_rng(seed)
    z, codebook, weights = rng.standard_normal((n, d)), rng.standard_normal((k, d)), rng.standard_normal((n, d))
    return z, codebook, weights


@independent_ok
@pytest.mark.parametrize("nu", [0.0, 0.2, 2.0])
def test_sync_update_sends_nu_times_the_members_task_gradients(backend, nu):
    z, codebook, weights = problem()
    z_e, table, w = stevq.asarray(z), stevq.asarray(codebook), stevq.asarray(weights)
    indices = vq.nearest_code(z_e, table)
    chosen = stevq.to_numpy(indices)

    def task(z_e, table):  # L = sum(w * out), so the task gradient at each output row is w_i
        return ops.sum(ops.multiply(w, vq.sync_straight_through(z_e, vq.lookup(table, indices), nu)))

    expected = np.zeros_like(codebook)
    for i, k in enumerate(chosen):  # by hand: code k collects nu * w_i from each member i
        expected[k] += nu * weights[i]
    np.testing.assert_allclose(stevq.to_numpy(grad(task, 1)(z_e, table)), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(stevq.to_numpy(grad(task, 0)(z_e, table)), weights)
    out = vq.sync_straight_through(z_e, vq.lookup(table, indices), nu)
    np.testing.assert_array_equal(stevq.to_numpy(out), codebook[chosen])
    if nu == 0.0:
        assert np.all(stevq.to_numpy(grad(task, 1)(z_e, table)) == 0.0)


def test_affine_codebook_formula_and_gradients(backend):
    rng = np.random.default_rng(1)
    codebook, scale, shift = rng.standard_normal((6, 3)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    got = vq.affine_codebook(
        stevq.asarray(codebook), stevq.asarray(scale), stevq.asarray(shift), lr_scale=0.5, groups=2
    )
    group = np.repeat([0, 1], 3)
    expected = (1 + 0.5 * scale[group]) * codebook + 0.5 * shift[group]
    np.testing.assert_allclose(stevq.to_numpy(got), expected, rtol=1e-14)
    weights = stevq.asarray(rng.standard_normal((6, 3)))
    f = lambda c, s, b: ops.sum(ops.multiply(weights, vq.affine_codebook(c, s, b, 0.5, 2)))
    check_grads(f, stevq.asarray(codebook), stevq.asarray(scale), stevq.asarray(shift))


def test_affine_moves_unused_codes_where_the_standard_update_cannot(backend):
    z, codebook, _ = problem(seed=2, n=10, k=16, d=2)
    z_e, table = stevq.asarray(z), stevq.asarray(codebook)
    params = {"codebook": table, **vq.init_affine(2)}
    effective = lambda p: vq.affine_codebook(p["codebook"], p["scale"], p["shift"], 2.0)
    indices = vq.nearest_code(z_e, effective(params))
    unused = np.setdiff1d(np.arange(16), stevq.to_numpy(indices))
    assert unused.size > 0
    loss = lambda p: vq.codebook_loss(z_e, vq.lookup(effective(p), indices))
    grads = grad(loss)(params)
    stepped = {key: params[key] - 0.1 * grads[key] for key in params}
    moved = stevq.to_numpy(effective(stepped)) - codebook
    assert np.all(np.abs(moved[unused]).sum(axis=1) > 0)
    # the raw codes of unused entries still get zero gradient: they move only through (s, b)
    assert np.all(stevq.to_numpy(grads["codebook"])[unused] == 0.0)
    standard = stevq.to_numpy(grad(lambda c: vq.codebook_loss(z_e, vq.lookup(c, indices)))(table))
    assert np.all(standard[unused] == 0.0)


def test_running_statistics_match_the_embeddings(backend):
    rng = np.random.default_rng(3)
    z1, z2 = 2.0 + 0.5 * rng.standard_normal((50, 3)), rng.standard_normal((40, 3))
    codebook = -1.0 + 3.0 * rng.standard_normal((8, 3))
    table = stevq.asarray(codebook)
    stats = vq.update_running_affine(vq.init_running_affine(3), stevq.asarray(z1), table)
    effective = stevq.to_numpy(vq.running_affine_codebook(table, stats))
    np.testing.assert_allclose(effective.mean(0), z1.mean(0), atol=1e-12)
    np.testing.assert_allclose(effective.var(0), z1.var(0), rtol=1e-6)
    stats = vq.update_running_affine(stats, stevq.asarray(z2), table, momentum=0.1)
    np.testing.assert_allclose(stevq.to_numpy(stats["z_mean"]), 0.9 * z1.mean(0) + 0.1 * z2.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stevq.to_numpy(stats["z_var"]), 0.9 * z1.var(0) + 0.1 * z2.var(0), rtol=1e-12)


def test_alternating_optimisation_lowers_the_loss_and_the_encoder_step_sees_new_codes(backend):
    z, codebook, weights = problem(seed=4, n=32, k=6, d=3)
    x = stevq.asarray(z)
    init, apply = vq.VectorQuantizer(6)
    _, params = init(np.random.default_rng(0), (3,))
    params = {"codebook": stevq.asarray(codebook)}
    indices = vq.nearest_code(x, params["codebook"])
    refined = vq.refine_codebook(params, x, indices, lr=2.0, inner_steps=3, momentum=0.5, codebook_fn=vq.layer_codebook)
    assert len(refined.losses) == 4 and refined.losses[-1] <= refined.losses[0]
    # by hand: plain loss of the refined codebook with the same assignments
    new_codebook = stevq.to_numpy(refined.params["codebook"])
    chosen = stevq.to_numpy(indices)
    assert np.mean((new_codebook[chosen] - z) ** 2) == pytest.approx(float(refined.losses[-1]), rel=1e-12)
    assert not np.allclose(new_codebook, codebook)
    out, aux = apply(refined.params, x, indices=indices)
    np.testing.assert_array_equal(stevq.to_numpy(out), new_codebook[chosen])
    np.testing.assert_array_equal(stevq.to_numpy(aux["indices"]), chosen)
    # also through an affine parameterisation
    affine = {"codebook": stevq.asarray(codebook), **vq.init_affine(3)}
    refined = vq.refine_codebook(affine, x, indices, lr=1.0, inner_steps=2, codebook_fn=vq.layer_codebook)
    assert refined.losses[-1] <= refined.losses[0]
    assert np.any(stevq.to_numpy(refined.params["shift"]) != 0)


def rotation_by_hand(e, q, g):
    """(||q|| / ||e||) R^T g with the D x D matrix R = I - 2 r r^T + 2 q^ e^^T formed explicitly."""
    e_hat, q_hat = e / np.linalg.norm(e), q / np.linalg.norm(q)
    r = (e_hat + q_hat) / np.linalg.norm(e_hat + q_hat)
    rotation = np.eye(e.size) - 2 * np.outer(r, r) + 2 * np.outer(q_hat, e_hat)
    np.testing.assert_allclose(rotation @ e_hat, q_hat, atol=1e-12)  # R really maps e^ to q^
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(e.size), atol=1e-12)  # and is orthogonal
    return np.linalg.norm(q) / np.linalg.norm(e) * rotation.T @ g


@independent_ok
def test_rotation_trick_forward_exact_and_gradient_is_scaled_rotation(backend):
    z, codebook, weights = problem(seed=5, n=12, k=5, d=4)
    z_e, table, w = stevq.asarray(z), stevq.asarray(codebook), stevq.asarray(weights)
    indices = vq.nearest_code(z_e, table)
    chosen = stevq.to_numpy(indices)
    out = vq.rotation_trick(z_e, vq.lookup(table, indices))
    np.testing.assert_array_equal(stevq.to_numpy(out), codebook[chosen])
    task = lambda z_e, table: ops.sum(ops.multiply(w, vq.rotation_trick(z_e, vq.lookup(table, indices))))
    got = stevq.to_numpy(grad(task, 0)(z_e, table))
    expected = np.stack([rotation_by_hand(z[i], codebook[chosen[i]], weights[i]) for i in range(len(z))])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert np.all(stevq.to_numpy(grad(task, 1)(z_e, table)) == 0.0)
    # gradient norm is rescaled by ||q|| / ||e|| (R is orthogonal)
    ratio = np.linalg.norm(codebook[chosen], axis=1) / np.linalg.norm(z, axis=1)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), ratio * np.linalg.norm(weights, axis=1), rtol=1e-10)


def test_rotation_trick_degenerate_directions(backend):
    e = np.array([[1.0, 2.0, -1.0], [0.0, 0.0, 0.0]])
    q = np.array([[-2.0, -4.0, 2.0], [1.0, 1.0, 1.0]])  # row 0: q antiparallel to e; row 1: e = 0
    g = np.array([[0.3, -0.2, 0.5], [1.0, -2.0, 3.0]])
    f = lambda e: ops.sum(ops.multiply(stevq.asarray(g), vq.rotation_trick(e, stevq.asarray(q))))
    got = stevq.to_numpy(grad(f)(stevq.asarray(e)))
    # antiparallel: r = 0, R = I + 2 q^ e^^T = I - 2 e^ e^^T (a reflection), scale 2
    e_hat = e[0] / np.linalg.norm(e[0])
    np.testing.assert_allclose(got[0], 2.0 * (np.eye(3) - 2 * np.outer(e_hat, e_hat)) @ g[0], atol=1e-12)
    np.testing.assert_array_equal(got[1], g[1])  # e = 0 falls back to the STE


def test_bad_input_names_the_argument(backend):
    table = stevq.asarray(np.ones((6, 3)))
    zeros = stevq.asarray(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="groups"):
        vq.affine_codebook(table, zeros, zeros, groups=4)
    with pytest.raises(ValueError, match="scale"):
        vq.affine_codebook(table, stevq.asarray(np.zeros((3, 3))), zeros, groups=2)
    with pytest.raises(ValueError, match="z_q"):
        vq.sync_straight_through(zeros, table, 1.0)
    with pytest.raises(ValueError, match="indices"):
        vq.refine_codebook(table, zeros, stevq.asarray(np.array([0, 6])), lr=0.1)
