"""stevq.metrics on small cases computed by hand, and the sliced Wasserstein distance against an
independent computation (equal-size clouds by replicating points, then sorted matching)."""

import math

import numpy as np
import pytest

import stevq
from stevq import metrics, ops


def test_usage_metrics_by_hand(backend):
    window = [stevq.asarray(np.array([0, 0, 1])), stevq.asarray(np.array([[1, 3], [3, 3]]))]
    # counts over the window: code 0: 2, 1: 2, 2: 0, 3: 3, 4: 0
    np.testing.assert_array_equal(stevq.to_numpy(metrics.code_counts(window, 5)), [2, 2, 0, 3, 0])
    assert metrics.utilisation(window, 5) == pytest.approx(3 / 5)
    assert metrics.utilisation(window[0], 5) == pytest.approx(2 / 5)
    assert metrics.dead_codes(window, 5) == 2
    p = np.array([2, 2, 3]) / 7
    assert metrics.perplexity(window, 5) == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-12)
    assert metrics.perplexity(stevq.asarray(np.arange(8)), 8) == pytest.approx(8.0)
    assert metrics.perplexity(stevq.asarray(np.zeros(8, dtype=np.int64)), 8) == pytest.approx(1.0)


def test_quantization_error_and_gradient_coverage(backend):
    z_e = np.array([[0.0, 0.0], [1.0, 1.0], [3.0, -1.0]])
    z_q = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 3.0]])
    assert metrics.quantization_error(stevq.asarray(z_e), stevq.asarray(z_q)) == pytest.approx((1 + 0 + 25) / 3)
    gradient = np.zeros((4, 2))
    gradient[1, 0], gradient[3] = 1e-30, [1.0, -2.0]
    assert metrics.gradient_coverage(stevq.asarray(gradient)) == 0.5


def sliced_by_replication(a, b, directions):
    """SW_2 through equal-size clouds: a repeated len(b) times, b repeated len(a) times."""
    big_a, big_b = np.repeat(a, len(b), axis=0), np.repeat(b, len(a), axis=0)
    per_direction = [np.mean((np.sort(big_a @ u) - np.sort(big_b @ u)) ** 2) for u in directions]
    return math.sqrt(np.mean(per_direction))


def test_sliced_wasserstein_against_replication_and_in_one_dimension(backend):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((12, 3)), 1.0 + 2.0 * rng.standard_normal((8, 3))
    directions = np.random.default_rng(7).standard_normal((16, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    got = metrics.sliced_wasserstein(stevq.asarray(a), stevq.asarray(b), num_projections=16, seed=7)
    assert got == pytest.approx(sliced_by_replication(a, b, directions), rel=1e-12)
    # one dimension: every direction is +-1, W_2 between a point cloud and its shift by 3 is 3
    x = rng.standard_normal((10, 1))
    assert metrics.sliced_wasserstein(stevq.asarray(x), stevq.asarray(x + 3.0), 4) == pytest.approx(3.0)
    assert metrics.sliced_wasserstein(stevq.asarray(a), stevq.asarray(a)) == 0.0


def test_distribution_gap_by_hand(backend):
    rng = np.random.default_rng(1)
    z, codes = rng.standard_normal((30, 2)), 2.0 + 0.5 * rng.standard_normal((9, 2))
    gap = metrics.distribution_gap(stevq.asarray(z), stevq.asarray(codes))
    assert gap["mean_gap"] == pytest.approx(np.linalg.norm(z.mean(0) - codes.mean(0)), rel=1e-12)
    assert gap["var_gap"] == pytest.approx(np.linalg.norm(z.var(0) - codes.var(0)), rel=1e-12)
    assert gap["sliced_wasserstein"] > 0
    same = metrics.distribution_gap(stevq.asarray(z), stevq.asarray(z))
    assert same == {"mean_gap": 0.0, "var_gap": 0.0, "sliced_wasserstein": 0.0}


def test_ste_gradient_error_by_hand(backend):
    target = np.array([[1.0, 2.0], [0.0, -1.0]])
    z_e, z_q = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[0.5, 0.0], [1.0, 3.0]])
    task = lambda z: ops.multiply(0.5, ops.sum(ops.square(ops.subtract(z, stevq.asarray(target)))))
    got = metrics.ste_gradient_error(task, stevq.asarray(z_e), stevq.asarray(z_q))
    g_q, g_e = (z_q - target).ravel(), (z_e - target).ravel()  # gradient of 0.5 ||z - t||^2 is z - t
    assert got["relative_error"] == pytest.approx(np.linalg.norm(g_q - g_e) / np.linalg.norm(g_e), rel=1e-12)
    assert got["cosine"] == pytest.approx(g_q @ g_e / np.linalg.norm(g_q) / np.linalg.norm(g_e), rel=1e-12)
    assert got["norm_ratio"] == pytest.approx(np.linalg.norm(g_q) / np.linalg.norm(g_e), rel=1e-12)
    same = metrics.ste_gradient_error(task, stevq.asarray(z_e), stevq.asarray(z_e))
    assert same["relative_error"] == 0.0 and same["cosine"] == pytest.approx(1.0)


def test_bad_input_names_the_argument(backend):
    with pytest.raises(ValueError, match="index_batches"):
        metrics.utilisation([stevq.asarray(np.array([0, 5]))], 5)
    with pytest.raises(ValueError, match="index_batches"):
        metrics.utilisation([], 5)
    with pytest.raises(ValueError, match="codebook"):
        metrics.distribution_gap(stevq.asarray(np.ones((4, 2))), stevq.asarray(np.ones((3, 3))))
    with pytest.raises(ValueError, match="z_q"):
        metrics.quantization_error(stevq.asarray(np.ones((4, 2))), stevq.asarray(np.ones((3, 2))))


def test_code_counts_in_chunks_equal_bincount(backend, monkeypatch):
    """Counting in chunks (as for a whole test set) gives np.bincount's counts."""
    monkeypatch.setattr(metrics, "COUNT_CHUNK", 7)
    indices = np.random.default_rng(1).integers(0, 5, size=(3, 11))
    counts = metrics.code_counts([stevq.asarray(indices)], 5)
    np.testing.assert_array_equal(stevq.to_numpy(counts), np.bincount(indices.ravel(), minlength=5))


def test_code_usage_counts_once_and_agrees_with_a_host_count(backend, monkeypatch):
    """``code_usage`` gives the three usage metrics from one count of the window, equal to a NumPy
    bincount of the same indices."""
    rng = np.random.default_rng(4)
    host = [rng.integers(0, 7, size=n) for n in (30, 11)]
    window = [stevq.asarray(h) for h in host]
    counted = []
    counts_once = metrics.code_counts
    monkeypatch.setattr(metrics, "code_counts", lambda *args: counted.append(1) or counts_once(*args))
    usage = metrics.code_usage(window, 9)
    assert len(counted) == 1 and list(usage) == ["utilisation", "perplexity", "dead_codes"]
    n = np.bincount(np.concatenate(host), minlength=9)
    p = n[n > 0] / n.sum()
    assert usage["utilisation"] == pytest.approx(np.mean(n > 0), rel=1e-15)
    assert usage["dead_codes"] == int(np.sum(n == 0))
    assert usage["perplexity"] == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-12)
