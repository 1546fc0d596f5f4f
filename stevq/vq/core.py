"""Vector quantization with every step explicit: nearest code, lookup, straight-through output,
the two VQ-VAE losses and the codebook gradient written out (van den Oord et al. 2017, "Neural
Discrete Representation Learning"; formulas in docs/reference/vq.md, section 1).

Notation: z_e (N, D) encoder outputs (any leading shape (..., D) is accepted), codebook C (K, D),
q_i = argmin_k ||z_i - c_k||^2 the chosen index, z_q = C[q] the chosen codes, sg = stop-gradient.

Loss normalisation used throughout stevq.vq: a *mean over all N * D elements* (PyTorch's
``mse_loss``, and the convention of the reference notes), so

    L_cb  = 1/(N D) sum_i ||sg(z_i) - c_{q_i}||^2,    L_com = 1/(N D) sum_i ||z_i - sg(c_{q_i})||^2.

Checks. Each public function checks its inputs once (``stevq.validate``) and calls its kernel, the
same name with a leading underscore, which checks nothing; the layer and the other modules of
stevq.vq call the kernels, and ``stevq.vq.unchecked`` hands them to training loops.
"""

import numpy as np

from .. import ops, ste, validate
from ..autodiff import getval
from ..backend import device_of, namespace_of

METRICS = ("l2", "cosine")


def as_rows(z):
    """The raw value of ``z`` as an (N, D) matrix."""
    value = getval(z)
    return namespace_of(value).reshape(value, (-1, value.shape[-1]))


def _unit_rows(matrix):
    """Rows scaled to unit length; all-zero rows stay zero (their norm is replaced by 1)."""
    xp = namespace_of(matrix)
    norm = xp.sqrt(xp.sum(matrix * matrix, axis=-1, keepdims=True))
    return matrix / xp.where(norm > 0, norm, xp.ones_like(norm))


def squared_distances(z, codebook):
    """||z_i - c_k||^2 for every embedding and code, shape z.shape[:-1] + (K,). Not differentiable.

    Computed with one matmul through the expansion ||z||^2 - 2 z . c + ||c||^2, never by forming the
    N x K x D array of differences; tiny negative values from rounding are set to 0.
    """
    validate.embeddings(z, codebook)
    flat, table = as_rows(z), getval(codebook)
    xp = namespace_of(flat)
    squared = (
        xp.sum(flat * flat, axis=1, keepdims=True)
        - 2.0 * (flat @ xp.matrix_transpose(table))
        + xp.sum(table * table, axis=1)
    )
    squared = xp.where(squared > 0, squared, xp.zeros_like(squared))
    return xp.reshape(squared, tuple(getval(z).shape[:-1]) + (table.shape[0],))


# Scores are computed for this many (embedding, code) pairs at a time: a 4 MB float32 block stays
# in the CPU cache between the matmul that writes it and the argmin that reads it, where one (N, K)
# array would go through main memory twice and cost page faults on first touch (block sizes
# measured: benchmarks/README.md, "(c) nearest code").
SCORE_BLOCK = 1 << 20


def nearest_code(z, codebook, metric="l2"):
    """Index of the nearest code for every embedding: integer array of shape z.shape[:-1].

        l2:      q_i = argmin_k ||z_i - c_k||^2 = argmin_k (||c_k||^2 - 2 z_i . c_k)
        cosine:  q_i = argmax_k (z_i . c_k) / (||z_i|| ||c_k||)

    ||z_i||^2 is the same for every k, so the L2 search skips it (fewer roundings, same argmin).
    The scores come from (N, D) x (D, K) matmuls over blocks of ``SCORE_BLOCK // K`` rows, never an
    N x K x D broadcast. For L2 the code norms ride in the matmul: each block of rows gets a column
    of ones and the weights a row ||c_k||^2 under -2 C^T (an exact scaling), so that the scores
    need no second pass over memory. Ties go to the lowest index (argmin returns the first
    minimum). Not differentiable: it works on the values, never on the trace.
    """
    validate.embeddings(z, codebook)
    validate.choice(metric, "metric", METRICS)
    return _nearest_code(z, codebook, metric)


def _nearest_code(z, codebook, metric="l2"):
    """``nearest_code`` on checked arguments."""
    flat, table = as_rows(z), getval(codebook)
    xp = namespace_of(flat)
    if metric == "l2":  # [z_i, 1] . [-2 c_k, ||c_k||^2] = ||c_k||^2 - 2 z_i . c_k
        weights = xp.concat([xp.matrix_transpose(-2.0 * table), xp.sum(table * table, axis=1)[None, :]], axis=0)
        ones = xp.ones((1, 1), dtype=flat.dtype, device=device_of(flat))
    else:
        flat, weights = _unit_rows(flat), xp.matrix_transpose(-_unit_rows(table))
    count, rows = flat.shape[0], max(1, SCORE_BLOCK // table.shape[0])
    if xp is np and count:
        return np.reshape(
            _nearest_in_buffers(flat, weights, min(rows, count), metric == "l2"), tuple(getval(z).shape[:-1])
        )
    blocks = []
    for start in range(0, max(count, 1), rows):  # an empty z still gets its (empty) argmin
        block = flat if rows >= count else flat[start : min(start + rows, count), ...]
        if metric == "l2":
            block = xp.concat([block, xp.broadcast_to(ones, (block.shape[0], 1))], axis=1)
        blocks.append(xp.argmin(block @ weights, axis=1))
    indices = blocks[0] if len(blocks) == 1 else xp.concat(blocks)
    return xp.reshape(indices, tuple(getval(z).shape[:-1]))


def _nearest_in_buffers(flat, weights, rows, with_ones):
    """NumPy: the same search with one (rows, K) score buffer and one (rows, D [+ 1])
    block buffer for all blocks (``matmul(..., out=)``): a fresh 4 MB array per block would cost
    page faults and writes to memory that a reused, cached buffer does not (benchmarks/README.md,
    "(c) nearest code")."""
    count, dim = flat.shape
    scores = np.empty((rows, weights.shape[1]), dtype=np.result_type(flat, weights))
    block = np.empty((rows, weights.shape[0]), dtype=flat.dtype)
    if with_ones:
        block[:, dim] = 1.0
    indices = np.empty(count, dtype=np.intp)
    for start in range(0, count, rows):
        size = min(rows, count - start)
        block[:size, :dim] = flat[start : start + size]
        np.matmul(block[:size], weights, out=scores[:size])
        np.argmin(scores[:size], axis=1, out=indices[start : start + size])
    return indices


def lookup(codebook, indices):
    """z_q = codebook[indices], differentiable in the codebook: the gradient reaching code k is the
    sum of the gradients of the positions that chose it, one_hot(indices)^T @ g (``ops.take_rows``);
    codes nobody chose get exactly zero."""
    validate.codebook(codebook)
    validate.indices(indices, codebook.shape[0])
    return ops.take_rows(codebook, indices)


def quantize(z_e, codebook, metric="l2"):
    """(z_q, indices): the nearest codes of ``z_e`` (differentiable in the codebook) and their indices."""
    validate.embeddings(z_e, codebook, "z_e")
    validate.choice(metric, "metric", METRICS)
    indices = _nearest_code(z_e, codebook, metric)
    return ops.take_rows(codebook, indices), indices


def straight_through(z_e, z_q):
    """The VQ-VAE straight-through output, out = z_e + sg(z_q - z_e).

        forward:  out = z_q (exactly)
        backward: dL/dz_e = dL/dout,   dL/dcodebook = 0 (the task sends nothing to the codes)

    Built as ``stevq.ste.straight_through(sg(z_q), z_e)``: the primitive returns its first argument
    and routes the gradient to its second, so the forward value is z_q bit for bit instead of
    z_e + (z_q - z_e) with its rounding error; sg(z_q) keeps the codebook out of the trace.
    """
    validate.embedding_pair(z_e, z_q)
    return _straight_through(z_e, z_q)


def _straight_through(z_e, z_q):
    return ste.straight_through(ops.stop_gradient(z_q), z_e)


def codebook_loss(z_e, z_q):
    """L_cb = mean over all elements of (sg(z_e) - z_q)^2: pulls the chosen codes towards their
    members and leaves the encoder alone."""
    validate.embedding_pair(z_e, z_q)
    return _codebook_loss(z_e, z_q)


def _codebook_loss(z_e, z_q):
    return ops.mean(ops.square(ops.subtract(z_q, ops.stop_gradient(z_e))))


def commitment_loss(z_e, z_q):
    """L_com = mean over all elements of (z_e - sg(z_q))^2: pulls the encoder towards its codes
    and leaves the codebook alone."""
    validate.embedding_pair(z_e, z_q)
    return _commitment_loss(z_e, z_q)


def _commitment_loss(z_e, z_q):
    return ops.mean(ops.square(ops.subtract(z_e, ops.stop_gradient(z_q))))


VQ_LOSS_CONVENTIONS = ("vqvae", "vqtorch")


def vq_loss(z_e, z_q, beta=0.25, convention="vqvae"):
    """The quantizer's share of the training loss.

    convention="vqvae"   (default; van den Oord et al. 2017, beta = 0.25):
        L = L_cb + beta * L_com
    convention="vqtorch" (Huh et al.'s code; beta in [0, 1], their default 0.95):
        L = (1 - beta) * L_com + beta * L_cb
    """
    validate.embedding_pair(z_e, z_q)
    check_vq_loss_settings(beta, convention)
    return _vq_loss(z_e, z_q, beta, convention)


def check_vq_loss_settings(beta, convention):
    """The hyperparameters of ``vq_loss`` (checked once, where a layer is built)."""
    validate.number(beta, "beta", low=0.0)
    validate.choice(convention, "convention", VQ_LOSS_CONVENTIONS)
    if convention == "vqtorch":
        validate.number(beta, "beta", low=0.0, high=1.0)


def _vq_loss(z_e, z_q, beta, convention):
    if convention == "vqtorch":
        return ops.add(
            ops.multiply(1.0 - beta, _commitment_loss(z_e, z_q)), ops.multiply(beta, _codebook_loss(z_e, z_q))
        )
    return ops.add(_codebook_loss(z_e, z_q), ops.multiply(beta, _commitment_loss(z_e, z_q)))


def codebook_grad(z_e, indices, num_codes, codebook):
    """The gradient of ``codebook_loss`` with respect to the codebook, written out (no autograd):

        dL_cb/dc_k = 2 / (N D) * sum_{i : q_i = k} (c_k - z_i)
                   = 2 / (N D) * (one_hot(q)^T @ (C[q] - Z))[k]

    N vectors of D elements (the loss is a mean over N * D elements). Only chosen codes get a
    non-zero row: the gradient is sparse, the root of the codebook's covariate shift (Huh et al. 2023).
    """
    validate.embeddings(z_e, codebook, "z_e")
    num_codes = validate.number(num_codes, "num_codes", low=1, integer=True)
    if codebook.shape[0] != num_codes:
        raise ValueError(f"num_codes: {num_codes} does not match the codebook's {codebook.shape[0]} codes")
    validate.indices(indices, num_codes)
    flat, table = as_rows(z_e), getval(codebook)
    xp = namespace_of(flat)
    index_values = xp.reshape(getval(indices), (-1,))
    if index_values.shape[0] != flat.shape[0]:
        raise ValueError(f"indices: {index_values.shape[0]} indices for {flat.shape[0]} embeddings")
    picks = ops.one_hot(index_values, num_codes, table.dtype)
    residual = xp.take(table, index_values, axis=0) - flat
    return (2.0 / (flat.shape[0] * flat.shape[1])) * (xp.matrix_transpose(picks) @ residual)
