"""Diagnostics for vector quantizers: how many codes are used, how far the codes are from the
embeddings, which codes get gradient, and how wrong the straight-through gradient is.

Every function returns Python floats (or ints) computed from values, never traced. ``indices`` is
an integer array of code indices; a "window" is a list of such arrays from consecutive batches.
"""

import math

import numpy as np
from autograd import grad

from . import validate
from .autodiff import getval
from .backend import asarray, device_of, namespace_of, resolve_dtype
from .ops import one_hot
from .vq import as_rows


def _window(index_batches, num_codes):
    batches = list(index_batches) if isinstance(index_batches, (list, tuple)) else [index_batches]
    if not batches:
        raise ValueError("index_batches: empty window; pass at least one array of indices")
    for batch in batches:
        validate.indices(batch, num_codes, "index_batches")
    return batches


COUNT_CHUNK = 4096


def code_counts(index_batches, num_codes):
    """How often each code was chosen over a window: a float (K,) array of the backend,
    n_k = sum over batches of one_hot(indices)^T 1."""
    batches = _window(index_batches, num_codes)
    xp = namespace_of(getval(batches[0]))
    dtype = resolve_dtype(None)  # exact counts up to 2^24 per code in float32
    total = xp.zeros((num_codes,), dtype=dtype, device=device_of(batches[0]))
    for batch in batches:
        flat = xp.reshape(getval(batch), (-1,))
        # one-hot rows in chunks: a whole test set at once would be an N x K float array
        size = flat.shape[0]
        for start in range(0, size, COUNT_CHUNK):
            chunk = flat[start : min(start + COUNT_CHUNK, size)]
            total = total + xp.sum(one_hot(chunk, num_codes, dtype), axis=0)
    return total


def utilisation(index_batches, num_codes):
    """Fraction of the K codes chosen at least once over the window (one batch: "active %")."""
    return _utilisation(code_counts(index_batches, num_codes))


def dead_codes(index_batches, num_codes):
    """Number of codes never chosen over the window."""
    return _dead_codes(code_counts(index_batches, num_codes))


def perplexity(index_batches, num_codes):
    """exp(H(p)) of the code-usage distribution p_k = n_k / sum_j n_j over the window, with
    0 log 0 = 0: 1 when one code takes everything, K when usage is uniform."""
    return _perplexity(code_counts(index_batches, num_codes))


def code_usage(index_batches, num_codes):
    """{"utilisation", "perplexity", "dead_codes"} of the window, from one ``code_counts`` (the
    indices are checked and counted once)."""
    counts = code_counts(index_batches, num_codes)
    return {"utilisation": _utilisation(counts), "perplexity": _perplexity(counts), "dead_codes": _dead_codes(counts)}


def _utilisation(counts):
    xp = namespace_of(counts)
    return float(xp.sum(xp.astype(counts > 0, xp.float64))) / counts.shape[0]


def _dead_codes(counts):
    xp = namespace_of(counts)
    return int(xp.sum(xp.astype(counts == 0, xp.int64)))


def _perplexity(counts):
    xp = namespace_of(counts)
    total = xp.sum(counts)
    if float(total) == 0:
        raise ValueError("index_batches: the window holds no indices")
    p = counts / total
    entropy = -xp.sum(xp.where(p > 0, p * xp.log(xp.where(p > 0, p, xp.ones_like(p))), xp.zeros_like(p)))
    return math.exp(float(entropy))


def quantization_error(z_e, z_q):
    """Mean over vectors of the squared Euclidean distance ||z_e - z_q||^2 (summed over the last
    axis D, averaged over all other positions). This is D times the codebook loss's value."""
    validate.array(z_e, "z_e")
    validate.array(z_q, "z_q")
    if tuple(z_e.shape) != tuple(z_q.shape):
        raise ValueError(f"z_q: shape {tuple(z_q.shape)} does not match z_e's {tuple(z_e.shape)}")
    difference = as_rows(z_e) - as_rows(z_q)
    xp = namespace_of(difference)
    return float(xp.mean(xp.sum(difference * difference, axis=1)))


def _quantile_pairs(n, m):
    """For the empirical quantile functions of n and m points, the pieces on which both are
    constant: rank of each piece in the sorted n-sample, rank in the m-sample, and its length.
    Breakpoints i/n and j/m are written as integers over n*m to stay exact."""
    breaks = np.union1d(np.arange(0, n * m + 1, m), np.arange(0, n * m + 1, n))
    starts, lengths = breaks[:-1], np.diff(breaks)
    return starts // m, starts // n, lengths / (n * m)


def sliced_wasserstein(a, b, num_projections=128, seed=0):
    """Sliced 2-Wasserstein distance between two point clouds (N, D) and (M, D), N != M allowed:

        SW_2(a, b) = sqrt( mean over unit directions u of W_2^2(a . u, b . u) ),

    W_2 between two 1-D empirical distributions computed exactly from their quantile functions
    (sorted projections, integrated piece by piece). Directions: ``num_projections`` Gaussian
    vectors from numpy's default_rng(seed), normalised, the same on every backend.
    """
    validate.array(a, "a", ndim=2)
    validate.array(b, "b", ndim=2)
    validate.same_last_dim(a, "a", b, "b")
    validate.number(num_projections, "num_projections", low=1, integer=True)
    a, b = getval(a), getval(b)
    if a.shape[0] == 0 or b.shape[0] == 0:
        raise ValueError("a, b: need at least one point in each cloud")
    return _sliced_wasserstein(a, b, num_projections, seed)


def _sliced_wasserstein(a, b, num_projections, seed):
    xp = namespace_of(a)
    directions = np.random.default_rng(seed).standard_normal((num_projections, a.shape[1]))
    device = device_of(a)
    directions = asarray(directions / np.linalg.norm(directions, axis=1, keepdims=True), a.dtype, device)
    rank_a, rank_b, weight = _quantile_pairs(a.shape[0], b.shape[0])
    sorted_a = xp.sort(a @ xp.matrix_transpose(directions), axis=0)
    sorted_b = xp.sort(b @ xp.matrix_transpose(directions), axis=0)
    gap = xp.take(sorted_a, asarray(rank_a, device=device), axis=0) - xp.take(
        sorted_b, asarray(rank_b, device=device), axis=0
    )
    squared = xp.sum(xp.expand_dims(asarray(weight, a.dtype, device), axis=1) * gap * gap, axis=0)
    return math.sqrt(float(xp.mean(squared)))


def distribution_gap(z, codebook, num_projections=128, seed=0):
    """How far the codes are from the embeddings, as a dict of floats:

        mean_gap:           || mean(z) - mean(C) ||_2       (per-dimension means)
        var_gap:            || var(z) - var(C) ||_2         (per-dimension population variances)
        sliced_wasserstein: SW_2(z, C), see ``sliced_wasserstein``

    Each is 0 when the two clouds match in that respect. The affine fix of Huh et al. targets the
    first two directly; the sliced distance also sees shape."""
    validate.embeddings(z, codebook)
    validate.number(num_projections, "num_projections", low=1, integer=True)
    flat, table = as_rows(z), getval(codebook)
    if flat.shape[0] == 0:
        raise ValueError("z: need at least one embedding")
    xp = namespace_of(flat)
    mean_diff = xp.mean(flat, axis=0) - xp.mean(table, axis=0)
    var_diff = xp.var(flat, axis=0) - xp.var(table, axis=0)
    return {
        "mean_gap": math.sqrt(float(xp.sum(mean_diff * mean_diff))),
        "var_gap": math.sqrt(float(xp.sum(var_diff * var_diff))),
        "sliced_wasserstein": _sliced_wasserstein(flat, table, num_projections, seed),
    }


def gradient_coverage(codebook_gradient):
    """Fraction of codes (rows of a (K, D) codebook gradient) that received any non-zero gradient."""
    validate.codebook(codebook_gradient, "codebook_gradient")
    value = getval(codebook_gradient)
    xp = namespace_of(value)
    touched = xp.any(value != 0, axis=1)
    return float(xp.sum(xp.astype(touched, xp.float64))) / value.shape[0]


def ste_gradient_error(task_loss, z_e, z_q):
    """How far the straight-through gradient is from the gradient the encoder would get without
    quantisation. With g_q = dL/dz at z = z_q (what the STE hands the encoder) and g_e = dL/dz at
    z = z_e (the same task loss evaluated on the unquantised embeddings):

        relative_error = ||g_q - g_e|| / ||g_e||,   cosine = <g_q, g_e> / (||g_q|| ||g_e||),
        norm_ratio     = ||g_q|| / ||g_e||        (norms over all elements; nan if a norm is 0)

    ``task_loss(z) -> scalar`` is the part of the loss downstream of the quantizer (e.g. the
    decoder's reconstruction loss with the decoder parameters fixed).
    """
    validate.array(z_e, "z_e")
    validate.array(z_q, "z_q")
    if tuple(z_e.shape) != tuple(z_q.shape):
        raise ValueError(f"z_q: shape {tuple(z_q.shape)} does not match z_e's {tuple(z_e.shape)}")
    gradient = grad(task_loss)
    g_q, g_e = getval(gradient(getval(z_q))), getval(gradient(getval(z_e)))
    xp = namespace_of(g_e)
    norm = lambda v: math.sqrt(float(xp.sum(v * v)))
    norm_q, norm_e, norm_diff = norm(g_q), norm(g_e), norm(g_q - g_e)
    inner = float(xp.sum(g_q * g_e))
    nan = float("nan")
    return {
        "relative_error": norm_diff / norm_e if norm_e > 0 else nan,
        "cosine": inner / (norm_q * norm_e) if norm_q > 0 and norm_e > 0 else nan,
        "norm_ratio": norm_q / norm_e if norm_e > 0 else nan,
    }
