"""stevq.data's synthetic data and batches: Gaussian points and clusters checked by Monte Carlo,
their arguments validated, and minibatch indices that cover each epoch once."""

import numpy as np
import pytest

from stevq import data


def test_gaussian_moments_by_monte_carlo():
    n, mean, variance = 40000, np.array([-1.0, 2.0, 0.5]), 0.3
    points = data.gaussian(n, mean, variance, seed=3)
    assert points.shape == (n, 3) and points.dtype == np.float64
    standard_error = np.sqrt(variance / n)
    assert np.all(np.abs(points.mean(axis=0) - mean) < 5 * standard_error)
    covariance = np.cov(points, rowvar=False)
    # Var of a sample variance of Gaussians is 2 sigma^4 / (n - 1); off-diagonals have sd sigma^2/sqrt(n).
    assert np.all(np.abs(np.diag(covariance) - variance) < 5 * variance * np.sqrt(2 / (n - 1)))
    assert np.all(np.abs(covariance - np.diag(np.diag(covariance))) < 5 * variance / np.sqrt(n))
    np.testing.assert_array_equal(points, data.gaussian(n, mean, variance, seed=3))
    assert not np.array_equal(points, data.gaussian(n, mean, variance, seed=4))
    assert data.gaussian(5, [0, 0], dtype="float32").dtype == np.float32


def test_gaussian_clusters_balanced_labelled_and_reproducible():
    points, labels, centers = data.gaussian_clusters(
        4003, dim=3, n_clusters=5, center_std=10.0, cluster_std=0.2, seed=1
    )
    assert points.shape == (4003, 3) and centers.shape == (5, 3) and labels.dtype == np.int64
    counts = np.bincount(labels, minlength=5)
    assert counts.max() - counts.min() <= 1
    nearest = np.argmin(((points[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
    assert np.min(np.linalg.norm(centers[:, None] - centers[None] + 100 * np.eye(5)[..., None], axis=-1)) > 2
    np.testing.assert_array_equal(nearest, labels)
    residual = points - centers[labels]
    assert abs(residual.std() - 0.2) < 5 * 0.2 / np.sqrt(2 * residual.size)
    again = data.gaussian_clusters(4003, dim=3, n_clusters=5, center_std=10.0, cluster_std=0.2, seed=1)
    np.testing.assert_array_equal(again[0], points)


def test_synthetic_arguments_are_validated():
    with pytest.raises(ValueError, match="n: expected a value >= 1"):
        data.gaussian(0, [0.0])
    with pytest.raises(ValueError, match="variance: expected a value >= 0"):
        data.gaussian(3, [0.0], variance=-1)
    with pytest.raises(ValueError, match="mean: expected a non-empty 1-D"):
        data.gaussian(3, [[0.0, 1.0]])
    with pytest.raises(TypeError, match="dim: expected an integer"):
        data.gaussian_clusters(3, dim=2.5)
    with pytest.raises(ValueError, match="dtype: expected one of"):
        data.gaussian_clusters(3, dim=2, dtype="int32")


def test_minibatch_indices_cover_each_epoch_once_and_repeat_with_the_seed():
    from stevq.data import minibatch_indices

    batches = minibatch_indices(np.random.default_rng(3), 10, 3)
    epoch = np.concatenate([next(batches) for _ in range(3)])  # 3 full batches, 1 index dropped
    assert len(set(epoch.tolist())) == 9 and epoch.max() < 10
    again = minibatch_indices(np.random.default_rng(3), 10, 3)
    np.testing.assert_array_equal(next(again), epoch[:3])
    with pytest.raises(ValueError, match="batch_size"):
        next(minibatch_indices(np.random.default_rng(0), 2, 3))
