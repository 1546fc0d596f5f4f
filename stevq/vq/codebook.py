"""Codebook maintenance in common use, all on values (no gradient): the EMA codebook update,
dead-code replacement and k-means initialisation (k-means++ or torchpq's
farthest-point seeding; docs/reference/vq.md, sections 1-2).
"""

import numpy as np

from .. import ops, validate
from ..autodiff import getval
from ..backend import asarray, device_of, namespace_of, to_numpy
from .core import _nearest_code, as_rows


def ema_init(codebook, initial_count=1.0):
    """EMA state {"counts": N (K,), "sums": m (K, D)} that reproduces ``codebook``.

    Counts start at ``initial_count`` (one pseudo-member per code) and sums at initial_count * c_k,
    so m_k / N_k is the initial code and an unused code stays where it is while both decay
    together (with counts starting at 0, an unused code would be divided by ~0 after smoothing).
    """
    validate.codebook(codebook)
    validate.number(initial_count, "initial_count", low=0.0, low_inclusive=False)
    return _ema_init(codebook, initial_count)


def _ema_init(codebook, initial_count=1.0):
    table = getval(codebook)
    xp = namespace_of(table)
    return {"counts": xp.full((table.shape[0],), initial_count, dtype=table.dtype), "sums": initial_count * table}


def ema_update(state, z_e, indices, decay=0.99, eps=1e-5):
    """One EMA codebook step (VQ-VAE appendix; Razavi et al. 2019). Returns (new_state, codebook).

        n_k = #{i : q_i = k},             s_k = sum_{i : q_i = k} z_i     (one_hot(q)^T @ Z)
        N_k <- d N_k + (1 - d) n_k,       m_k <- d m_k + (1 - d) s_k
        N~_k = (N_k + eps) / (sum_j N_j + K eps) * sum_j N_j              (Laplace smoothing)
        c_k = m_k / N~_k

    No bias correction. With an EMA codebook only the commitment loss is trained by gradient.
    Common decays: 0.99 (VQ-VAE), 0.8 (vector-quantize-pytorch).
    """
    sums = state["sums"]
    validate.embeddings(z_e, sums, "z_e")
    validate.indices(indices, sums.shape[0])
    validate.number(decay, "decay", low=0.0, high=1.0)
    validate.number(eps, "eps", low=0.0)
    return _ema_update(state, z_e, indices, decay, eps)


def _ema_update(state, z_e, indices, decay=0.99, eps=1e-5):
    sums, counts = state["sums"], state["counts"]
    flat = as_rows(z_e)
    xp = namespace_of(flat)
    picks = ops.one_hot(xp.reshape(getval(indices), (-1,)), sums.shape[0], flat.dtype)
    counts = decay * counts + (1.0 - decay) * xp.sum(picks, axis=0)
    sums = decay * sums + (1.0 - decay) * (xp.matrix_transpose(picks) @ flat)
    total = xp.sum(counts)
    smoothed = (counts + eps) / (total + sums.shape[0] * eps) * total
    return {"counts": counts, "sums": sums}, sums / xp.expand_dims(smoothed, axis=1)


def ema_reset_codes(state, codebook, replaced, initial_count=1.0):
    """EMA state with the codes flagged in the boolean (K,) array ``replaced`` restarted at
    ``codebook`` (as ``ema_init`` would), the others unchanged. Use after ``replace_dead_codes``."""
    validate.codebook(codebook)
    validate.array(replaced, "replaced", shape=(codebook.shape[0],), dtype=None)
    validate.number(initial_count, "initial_count", low=0.0, low_inclusive=False)
    return _ema_reset_codes(state, codebook, replaced, initial_count)


def _ema_reset_codes(state, codebook, replaced, initial_count=1.0):
    fresh = _ema_init(codebook, initial_count)
    xp = namespace_of(fresh["sums"])
    return {
        "counts": xp.where(replaced, fresh["counts"], state["counts"]),
        "sums": xp.where(xp.expand_dims(replaced, axis=1), fresh["sums"], state["sums"]),
    }


def track_usage(steps_unused, indices):
    """Steps since each code was last chosen: 0 for the codes in ``indices``, +1 for the others.
    ``steps_unused`` is an integer (K,) array (start from zeros)."""
    validate.array(steps_unused, "steps_unused", ndim=1, dtype="int")
    validate.indices(indices, steps_unused.shape[0])
    return _track_usage(steps_unused, indices)


def _track_usage(steps_unused, indices):
    xp = namespace_of(steps_unused)
    used = xp.sum(ops.one_hot(xp.reshape(getval(indices), (-1,)), steps_unused.shape[0], xp.float32), axis=0) > 0
    return xp.where(used, xp.zeros_like(steps_unused), steps_unused + 1)


def replace_dead_codes(codebook, steps_unused, z_e, rng, threshold, noise=0.01):
    """Re-seed codes unused for ``threshold`` or more steps (the LRU replacement of vqtorch):

        c_k <- z_j + noise * std(z) * eps,    j uniform over the current embeddings, eps ~ N(0, I)

    where std(z) is the embeddings' per-dimension standard deviation. Draws come from the numpy
    Generator ``rng`` on the host (the same for every backend). Returns (codebook, steps_unused,
    replaced): the new codebook, the counters with the replaced codes reset to 0, and the boolean
    (K,) mask of replaced codes. Other codes are returned unchanged.
    """
    validate.codebook(codebook)
    validate.array(steps_unused, "steps_unused", ndim=1, dtype="int")
    if steps_unused.shape[0] != codebook.shape[0]:
        raise ValueError(f"steps_unused: {steps_unused.shape[0]} counters for {codebook.shape[0]} codes")
    validate.embeddings(z_e, codebook, "z_e")
    validate.number(threshold, "threshold", low=1, integer=True)
    validate.number(noise, "noise", low=0.0)
    validate.generator(rng)
    return _replace_dead_codes(codebook, steps_unused, z_e, rng, threshold, noise)


def _replace_dead_codes(codebook, steps_unused, z_e, rng, threshold, noise=0.01):
    table, flat = getval(codebook), as_rows(z_e)
    xp = namespace_of(table)
    picked = asarray(rng.integers(flat.shape[0], size=table.shape[0]))
    jitter = asarray(rng.standard_normal(table.shape), table.dtype)
    seeds = xp.take(flat, picked, axis=0) + noise * xp.std(flat, axis=0) * jitter
    replaced = steps_unused >= threshold
    return (
        xp.where(xp.expand_dims(replaced, axis=1), xp.astype(seeds, table.dtype), table),
        xp.where(replaced, xp.zeros_like(steps_unused), steps_unused),
        replaced,
    )


def kmeans_plus_plus(z, num_codes, rng, lloyd_steps=0):
    """A (num_codes, D) codebook drawn from the embeddings ``z`` by k-means++ seeding (Arthur and
    Vassilvitskii 2007): the first code is a uniform draw; each next one is embedding i with
    probability D(z_i)^2 / sum_j D(z_j)^2, D the distance to the nearest code chosen so far.
    Then ``lloyd_steps`` k-means iterations (each code moves to the mean of its members; a code
    with no members stays). Random draws come from the numpy Generator ``rng`` on the host.
    The seeding is sequential (each draw needs the distances to the codes drawn before), so it runs
    on the host on one copy of the embeddings: one device-to-host transfer instead of one per code.
    """
    validate.number(lloyd_steps, "lloyd_steps", low=0, integer=True)

    def d2_sample(nearest, rng):
        weights = np.cumsum(nearest.astype(np.float64))
        if weights[-1] > 0:
            return min(int(np.searchsorted(weights, rng.random() * weights[-1], side="right")), nearest.shape[0] - 1)
        return int(rng.integers(nearest.shape[0]))  # every embedding already coincides with a code: uniform

    flat, codebook = _seed(z, num_codes, rng, d2_sample)
    for _ in range(lloyd_steps):
        codebook = _lloyd_step(flat, codebook)
    return codebook


def kmeans_farthest(z, num_codes, rng, max_steps=100, tol=1e-4):
    """A (num_codes, D) codebook as vqtorch's ``kmeans_init`` makes it with torchpq's
    ``KMeans(init_mode="kmeans++")``: *farthest-point* seeding (the first code a uniform draw,
    each next one the embedding farthest from every code chosen so far:
    argmax_i min_k |z_i - c_k|^2, deterministic after the first), then Lloyd iterations
    until sum_k |c_k^new - c_k|^2 <= ``tol`` or ``max_steps`` iterations. As in torchpq, a code
    left with no members moves to the origin (its new centroid is a sum over no embeddings).
    Unlike ``kmeans_plus_plus`` (D^2 sampling), the seeding picks outliers first.
    """
    validate.number(max_steps, "max_steps", low=0, integer=True)
    validate.number(tol, "tol", low=0.0)
    flat, codebook = _seed(z, num_codes, rng, lambda nearest, rng: int(np.argmax(nearest)))
    xp = namespace_of(flat)
    for _ in range(max_steps):
        moved = _lloyd_step(flat, codebook, empty="origin")
        change = float(xp.sum((moved - codebook) ** 2))
        codebook = moved
        if change <= tol:
            break
    return codebook


def _seed(z, num_codes, rng, next_pick):
    """(rows of z, the seeded codebook): the first code a uniform draw, each next one the row
    ``next_pick(squared distances to the nearest code so far, rng)`` returns; on the host, on one
    copy of the embeddings (each pick needs the distances to the codes picked before)."""
    validate.array(z, "z")
    validate.number(num_codes, "num_codes", low=1, integer=True)
    validate.generator(rng)
    flat = as_rows(z)
    if flat.shape[0] < 1:
        raise ValueError("z: need at least one embedding")
    xp, host = namespace_of(flat), to_numpy(getval(flat))
    chosen = [int(rng.integers(host.shape[0]))]
    nearest = np.sum((host - host[chosen[0]]) ** 2, axis=1)
    for _ in range(num_codes - 1):
        chosen.append(next_pick(nearest, rng))
        nearest = np.minimum(nearest, np.sum((host - host[chosen[-1]]) ** 2, axis=1))
    return flat, xp.take(flat, asarray(np.asarray(chosen), device=device_of(flat)), axis=0)


def _lloyd_step(flat, codebook, empty="stay"):
    """Move every code to the mean of the embeddings nearest to it; a code with no members stays
    (``empty="stay"``) or moves to the origin (``empty="origin"``, torchpq's rule)."""
    xp = namespace_of(flat)
    picks = ops.one_hot(_nearest_code(flat, codebook, "l2"), codebook.shape[0], flat.dtype)
    counts = xp.expand_dims(xp.sum(picks, axis=0), axis=1)
    means = (xp.matrix_transpose(picks) @ flat) / xp.where(counts > 0, counts, xp.ones_like(counts))
    return xp.where(counts > 0, means, codebook if empty == "stay" else xp.zeros_like(codebook))
