"""stevq.vq core: nearest code, lookup, straight-through output, losses and the explicit codebook
gradient, on both CPU backends, against NumPy computations written independently here (the
N x K x D broadcast the library avoids, np.add.at for the scatter it writes as a matmul)."""

import numpy as np
import pytest
from autograd import grad

import stevq
from stevq import ops, vq


def host_problem(seed=0, n=40, k=7, d=5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((k, d))


def brute_nearest(z, codebook):
    return np.argmin(((z[:, None, :] - codebook[None, :, :]) ** 2).sum(-1), axis=1)


def test_nearest_code_matches_brute_force(backend):
    z, codebook = host_problem()
    got = stevq.to_numpy(vq.nearest_code(stevq.asarray(z), stevq.asarray(codebook)))
    np.testing.assert_array_equal(got, brute_nearest(z, codebook))
    distances = stevq.to_numpy(vq.squared_distances(stevq.asarray(z), stevq.asarray(codebook)))
    np.testing.assert_allclose(distances, ((z[:, None] - codebook[None]) ** 2).sum(-1), atol=1e-12)


def test_nearest_code_float32_leading_axes_and_cosine(backend):
    z, codebook = host_problem(seed=1, n=24)
    z32 = stevq.asarray(z.reshape(2, 3, 4, 5), "float32")
    got = vq.nearest_code(z32, stevq.asarray(codebook, "float32"))
    assert tuple(got.shape) == (2, 3, 4)
    np.testing.assert_array_equal(stevq.to_numpy(got).ravel(), brute_nearest(z, codebook))
    cosine = (z / np.linalg.norm(z, axis=1, keepdims=True)) @ (
        codebook / np.linalg.norm(codebook, axis=1, keepdims=True)
    ).T
    got = vq.nearest_code(stevq.asarray(z), stevq.asarray(codebook), metric="cosine")
    np.testing.assert_array_equal(stevq.to_numpy(got), np.argmax(cosine, axis=1))


def test_ties_go_to_the_lowest_index(backend):
    codebook = stevq.asarray([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    z = stevq.asarray([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0], [0.5, 0.5]])
    # rows 0/2 and 1/3 are duplicates; (1, 1) and (0.5, 0.5) are equidistant from all four codes
    np.testing.assert_array_equal(stevq.to_numpy(vq.nearest_code(z, codebook)), [0, 1, 0, 0])


def test_codebook_grad_equals_autograd_and_is_zero_on_unchosen_codes(backend):
    z, codebook = host_problem(seed=2, n=12, k=9)
    z_e, table = stevq.asarray(z), stevq.asarray(codebook)
    indices = vq.nearest_code(z_e, table)
    chosen = np.zeros(9, bool)
    chosen[stevq.to_numpy(indices)] = True
    assert not chosen.all(), "the test needs unchosen codes"
    automatic = stevq.to_numpy(grad(lambda c: vq.codebook_loss(z_e, vq.lookup(c, indices)))(table))
    explicit = stevq.to_numpy(vq.codebook_grad(z_e, indices, 9, table))
    # independent: 2/(N D) sum over members of (c_k - z_i), accumulated with np.add.at
    by_hand = np.zeros_like(codebook)
    np.add.at(by_hand, stevq.to_numpy(indices), codebook[stevq.to_numpy(indices)] - z)
    by_hand *= 2.0 / z.size
    np.testing.assert_allclose(automatic, by_hand, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(explicit, by_hand, rtol=1e-12, atol=1e-15)
    assert np.all(automatic[~chosen] == 0.0) and np.all(explicit[~chosen] == 0.0)
    assert np.all(np.any(explicit[chosen] != 0.0, axis=1))


# A gradient that is zero by construction makes autograd warn "Output seems independent of input".
independent_ok = pytest.mark.filterwarnings("ignore:Output seems independent of input")


@independent_ok
def test_straight_through_forward_and_backward(backend):
    z, codebook = host_problem(seed=3)
    weights = np.random.default_rng(4).standard_normal(z.shape)
    z_e, table, w = stevq.asarray(z), stevq.asarray(codebook), stevq.asarray(weights)
    indices = vq.nearest_code(z_e, table)
    out = vq.straight_through(z_e, vq.lookup(table, indices))
    np.testing.assert_array_equal(stevq.to_numpy(out), codebook[stevq.to_numpy(indices)])  # bit for bit

    def task(z_e, table):
        return ops.sum(ops.multiply(w, vq.straight_through(z_e, vq.lookup(table, indices))))

    np.testing.assert_array_equal(stevq.to_numpy(grad(task, 0)(z_e, table)), weights)
    assert np.all(stevq.to_numpy(grad(task, 1)(z_e, table)) == 0.0)


@independent_ok
def test_losses_values_and_which_side_they_train(backend):
    z, codebook = host_problem(seed=5)
    z_e, table = stevq.asarray(z), stevq.asarray(codebook)
    indices = vq.nearest_code(z_e, table)
    z_q_host = codebook[stevq.to_numpy(indices)]
    mse = np.mean((z - z_q_host) ** 2)
    loss = lambda fn: lambda z_e, table: fn(z_e, vq.lookup(table, indices))
    assert float(loss(vq.codebook_loss)(z_e, table)) == pytest.approx(mse, rel=1e-12)
    assert float(loss(vq.commitment_loss)(z_e, table)) == pytest.approx(mse, rel=1e-12)
    assert np.all(stevq.to_numpy(grad(loss(vq.codebook_loss), 0)(z_e, table)) == 0.0)
    assert np.all(stevq.to_numpy(grad(loss(vq.commitment_loss), 1)(z_e, table)) == 0.0)
    np.testing.assert_allclose(
        stevq.to_numpy(grad(loss(vq.commitment_loss), 0)(z_e, table)), 2.0 * (z - z_q_host) / z.size, rtol=1e-12
    )
    z_q = vq.lookup(table, indices)
    assert float(vq.vq_loss(z_e, z_q)) == pytest.approx(1.25 * mse, rel=1e-12)
    # vqtorch mix: (1 - beta) L_com + beta L_cb; check through the gradients, where the terms differ
    mixed = lambda z_e, table: vq.vq_loss(z_e, vq.lookup(table, indices), 0.9, convention="vqtorch")
    np.testing.assert_allclose(
        stevq.to_numpy(grad(mixed, 0)(z_e, table)), 0.1 * 2.0 * (z - z_q_host) / z.size, rtol=1e-12
    )
    np.testing.assert_allclose(
        stevq.to_numpy(grad(mixed, 1)(z_e, table)),
        0.9 * stevq.to_numpy(vq.codebook_grad(z_e, indices, 7, table)),
        rtol=1e-12,
    )


def test_bad_input_names_the_argument(backend):
    z, codebook = host_problem(n=4, k=3, d=2)
    z_e, table = stevq.asarray(z), stevq.asarray(codebook)
    with pytest.raises(ValueError, match="z"):
        vq.nearest_code(stevq.asarray(np.ones((4, 3))), table)
    with pytest.raises(ValueError, match="codebook: empty"):
        vq.nearest_code(z_e, stevq.asarray(np.ones((0, 2))))
    with pytest.raises(ValueError, match="indices"):
        vq.lookup(table, stevq.asarray(np.array([0, 3])))
    with pytest.raises(ValueError, match="indices"):
        vq.codebook_grad(z_e, stevq.asarray(np.array([0, 1, -1, 2])), 3, table)
    with pytest.raises(ValueError, match="num_codes"):
        vq.codebook_grad(z_e, stevq.asarray(np.array([0, 1, 1, 2])), 4, table)
    with pytest.raises(ValueError, match="z_q"):
        vq.straight_through(z_e, table)
    with pytest.raises(ValueError, match="metric"):
        vq.nearest_code(z_e, table, metric="l1")
