"""Codebook maintenance: EMA updates by hand, dead-code replacement, k-means++ (its D^2 sampling by
Monte Carlo) and Lloyd steps, on both CPU backends with the same host random draws."""

import numpy as np
import pytest

import stevq
from stevq import vq


def test_ema_two_steps_by_hand(backend):
    rng = np.random.default_rng(0)
    codebook = rng.standard_normal((4, 2))
    batches = [
        (rng.standard_normal((5, 2)), np.array([0, 0, 2, 2, 2])),
        (rng.standard_normal((3, 2)), np.array([1, 0, 0])),
    ]
    decay, eps = 0.9, 1e-5
    counts, sums = np.ones(4), codebook.copy()
    state = vq.ema_init(stevq.asarray(codebook))
    for z, indices in batches:
        member_count = np.array([np.sum(indices == k) for k in range(4)], float)
        member_sum = np.array([z[indices == k].sum(0) for k in range(4)])
        counts = decay * counts + (1 - decay) * member_count
        sums = decay * sums + (1 - decay) * member_sum
        total = counts.sum()
        expected = sums / ((counts + eps) / (total + 4 * eps) * total)[:, None]
        state, got = vq.ema_update(state, stevq.asarray(z), stevq.asarray(indices), decay, eps)
        np.testing.assert_allclose(stevq.to_numpy(got), expected, rtol=1e-12)
    # code 3 was never chosen: it stays at its initial value up to the Laplace smoothing
    np.testing.assert_allclose(stevq.to_numpy(got)[3], codebook[3], rtol=1e-4)


def test_dead_code_replacement_only_touches_starved_codes(backend):
    rng = np.random.default_rng(1)
    codebook = rng.standard_normal((5, 3))
    z = 10.0 + rng.standard_normal((20, 3))
    steps = stevq.asarray(np.zeros(5, dtype=np.int64))
    for batch in ([0, 1, 2, 3], [0, 1, 2], [0, 2, 3], [1, 2, 3]):  # code 4 is never chosen
        steps = vq.track_usage(steps, stevq.asarray(np.array(batch)))
    np.testing.assert_array_equal(stevq.to_numpy(steps), [1, 0, 0, 0, 4])
    new, steps, replaced = vq.replace_dead_codes(
        stevq.asarray(codebook), steps, stevq.asarray(z), np.random.default_rng(2), threshold=4, noise=0.01
    )
    new = stevq.to_numpy(new)
    np.testing.assert_array_equal(stevq.to_numpy(replaced), [False, False, False, False, True])
    np.testing.assert_array_equal(new[:4], codebook[:4])
    np.testing.assert_array_equal(stevq.to_numpy(steps), [1, 0, 0, 0, 0])
    # the new code is one of the embeddings plus noise of scale 0.01 * std(z) (std ~ 1)
    assert np.min(np.linalg.norm(z - new[4], axis=1)) < 0.1
    assert np.min(np.linalg.norm(z - new[4], axis=1)) > 0


def test_kmeans_plus_plus_picks_data_points_with_d2_probabilities():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [4.0, 4.0]])
    squared = ((points[:, None] - points[None]) ** 2).sum(-1)
    expected = squared / squared.sum(1, keepdims=True) / len(points)  # P(first i, second j)
    counts = np.zeros((4, 4))
    rng = np.random.default_rng(3)
    x = stevq.asarray(points)
    draws = 3000
    for _ in range(draws):
        codebook = stevq.to_numpy(vq.kmeans_plus_plus(x, 2, rng))
        first, second = (int(np.flatnonzero((points == row).all(1))[0]) for row in codebook)
        counts[first, second] += 1
    sigma = np.sqrt(expected * (1 - expected) / draws)
    assert np.all(np.abs(counts / draws - expected) <= 4 * sigma + 1e-12)
    assert np.all(np.diag(counts) == 0)  # a chosen point has distance 0, never drawn again


def test_kmeans_plus_plus_same_on_both_backends_and_lloyd_step(backend):
    rng = np.random.default_rng(4)
    centres = np.array([[5.0, 5.0], [-5.0, 5.0], [0.0, -5.0]])
    z = np.concatenate([c + 0.3 * rng.standard_normal((30, 2)) for c in centres])
    got = stevq.to_numpy(vq.kmeans_plus_plus(stevq.asarray(z), 3, np.random.default_rng(5)))
    with stevq.use("numpy"):
        reference = stevq.to_numpy(vq.kmeans_plus_plus(stevq.asarray(z), 3, np.random.default_rng(5)))
    np.testing.assert_array_equal(got, reference)
    assert all(np.any(np.all(z == row, axis=1)) for row in got)
    refined = stevq.to_numpy(vq.kmeans_plus_plus(stevq.asarray(z), 3, np.random.default_rng(5), lloyd_steps=1))
    members = np.argmin(((z[:, None] - got[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_allclose(refined, [z[members == k].mean(0) for k in range(3)], rtol=1e-12)


def test_bad_input_names_the_argument(backend):
    table = stevq.asarray(np.ones((4, 2)))
    with pytest.raises(ValueError, match="indices"):
        vq.ema_update(vq.ema_init(table), stevq.asarray(np.ones((2, 2))), stevq.asarray(np.array([0, 4])))
    with pytest.raises(ValueError, match="z_e"):
        vq.ema_update(vq.ema_init(table), stevq.asarray(np.ones((2, 3))), stevq.asarray(np.array([0, 1])))
    with pytest.raises(ValueError, match="steps_unused"):
        vq.replace_dead_codes(
            table,
            stevq.asarray(np.zeros(3, dtype=np.int64)),
            stevq.asarray(np.ones((2, 2))),
            np.random.default_rng(0),
            threshold=2,
        )
    with pytest.raises(ValueError, match="codebook: empty"):
        vq.ema_init(stevq.asarray(np.ones((0, 2))))
