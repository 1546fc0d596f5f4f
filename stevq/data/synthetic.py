"""Synthetic Gaussian data for the toy experiments, reproducible from a seed.

Every function draws from ``numpy.random.default_rng(seed)`` on the host and returns host NumPy
arrays (move them to the active backend with ``stevq.asarray``), so a seed gives the same numbers on
every backend.

    points = gaussian(512, mean=[0, 0], variance=0.5, seed=0)          # data ~ N([0,0], 0.5 I)
    codes = gaussian(128, mean=[-1, -1], variance=0.3, seed=1)         # a shifted codebook
    x, y, centers = gaussian_clusters(1000, dim=2, n_clusters=8, seed=0)
"""

import numpy as np

from .. import validate


def _check_dtype(dtype):
    return np.dtype(validate.choice(dtype, "dtype", ("float32", "float64")))


def gaussian(n, mean, variance=1.0, seed=0, dtype="float64"):
    """``n`` independent samples of N(mean, variance * I), an (n, D) array with D = len(mean).

    ``variance`` is the variance of every coordinate (the covariance is variance times the
    identity), not the standard deviation.
    """
    validate.number(n, "n", low=1, integer=True)
    validate.number(variance, "variance", low=0)
    mean = np.asarray(mean, dtype=np.float64)
    if mean.ndim != 1 or mean.size == 0 or not np.all(np.isfinite(mean)):
        raise ValueError(f"mean: expected a non-empty 1-D sequence of finite numbers, got {mean!r}")
    noise = np.random.default_rng(seed).standard_normal((n, mean.size))
    return (mean + np.sqrt(variance) * noise).astype(_check_dtype(dtype))


def gaussian_clusters(n, dim, n_clusters=8, center_std=3.0, cluster_std=0.5, seed=0, dtype="float64"):
    """A mixture of ``n_clusters`` isotropic Gaussians in ``dim`` dimensions, equal weights.

    The centers are drawn from N(0, center_std^2 I); point i belongs to cluster ``i % n_clusters``
    (so the clusters are as balanced as ``n`` allows) and is its center plus N(0, cluster_std^2 I)
    noise; the points are then shuffled. Returns ``(points (n, dim), labels (n,) int64,
    centers (n_clusters, dim))``.
    """
    validate.number(n, "n", low=1, integer=True)
    validate.number(dim, "dim", low=1, integer=True)
    validate.number(n_clusters, "n_clusters", low=1, integer=True)
    validate.number(center_std, "center_std", low=0)
    validate.number(cluster_std, "cluster_std", low=0)
    dtype = _check_dtype(dtype)
    rng = np.random.default_rng(seed)
    centers = center_std * rng.standard_normal((n_clusters, dim))
    labels = rng.permutation(np.arange(n) % n_clusters)
    points = centers[labels] + cluster_std * rng.standard_normal((n, dim))
    return points.astype(dtype), labels.astype(np.int64), centers.astype(dtype)
