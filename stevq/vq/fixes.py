"""The three fixes of Huh, Cheung, Agrawal and Isola (ICML 2023), "Straightening Out the
Straight-Through Estimator: Overcoming Optimization Challenges in Vector Quantized Networks"
(formulas in docs/reference/vq.md, section 2).

Their diagnosis: codebook updates are sparse (only chosen codes move), so the code distribution
drifts away from the embedding distribution and fewer and fewer codes are chosen.

1. Affine re-parameterisation: every code moves at every step through a shared scale and shift,
   learned by gradient (``affine_codebook``) or set from running statistics (``running_affine_codebook``).
2. Alternating optimisation: update the codebook for the current assignments before the
   encoder/decoder step that uses it (``refine_codebook``).
3. Synchronised update: the chosen codes also receive nu times the task gradient
   (``sync_straight_through``).
"""

from collections import namedtuple

import numpy as np
from autograd import value_and_grad

from .. import ops, optim, ste, validate
from ..autodiff import getval
from ..backend import asarray, namespace_of, resolve_dtype
from .core import _codebook_loss, as_rows


def sync_straight_through(z_e, z_q, nu):
    """Straight-through output with the synchronised codebook update (fix 3):

        out = z_e + sg(z_q - z_e) + nu z_q - sg(nu z_q)
        forward:  out = z_q
        backward: dL/dz_e = dL/dout,   dL/dz_q = nu dL/dout

    so a chosen code c_k receives nu * sum_{i: q_i = k} dL/dout_i and moves with its members.
    nu = 0 is the plain STE. Built as ``stevq.ste.straight_through(sg(z_q), z_e + nu z_q)``, which
    has exactly these derivatives and returns z_q bit for bit. (Applying nu to the STE output
    instead, nu * (z_e + sg(z_q - z_e)), only rescales the encoder gradient: a known pitfall.)
    """
    validate.embedding_pair(z_e, z_q)
    nu = validate.number(nu, "nu")
    return _sync_straight_through(z_e, z_q, nu)


def _sync_straight_through(z_e, z_q, nu):
    return ste.straight_through(ops.stop_gradient(z_q), ops.add(z_e, ops.multiply(nu, z_q)))


def _grouped(codebook, multiplier, offset):
    """multiplier_g * c_k + offset_g for codes split into G equal consecutive groups;
    ``multiplier`` and ``offset`` have shape (G, D)."""
    num_codes, dim = codebook.shape
    groups = multiplier.shape[0]
    grouped = ops.reshape(codebook, (groups, num_codes // groups, dim))
    moved = ops.add(ops.multiply(grouped, ops.expand_dims(multiplier, 1)), ops.expand_dims(offset, 1))
    return ops.reshape(moved, (num_codes, dim))


def init_affine(dim, groups=1, dtype=None):
    """Parameters of the learned affine codebook: {"scale": 0, "shift": 0}, each (groups, dim),
    so that the re-parameterised codebook starts equal to the plain one."""
    validate.number(dim, "dim", low=1, integer=True)
    validate.number(groups, "groups", low=1, integer=True)
    zeros, dtype = np.zeros((groups, dim)), resolve_dtype(dtype)
    return {"scale": asarray(zeros, dtype), "shift": asarray(zeros, dtype)}


def affine_codebook(codebook, scale, shift, lr_scale=1.0, groups=1):
    """Learned affine re-parameterisation of the codes (fix 1, vqtorch's AffineTransform):

        c~_k = (1 + a s_g) * c_k + a b_g          (element-wise over the D dimensions)

    s_g = ``scale``, b_g = ``shift`` of shape (groups, D) (or (D,) for one group), shared by the
    codes of group g = k // (K / groups); a = ``lr_scale`` multiplies their effective learning rate.
    Because every code of a group shares s_g and b_g, a gradient from any chosen code moves all
    of them, including codes nobody chose.
    """
    validate.codebook(codebook)
    validate.codebook_groups(codebook, groups)
    validate.number(lr_scale, "lr_scale")
    validate.affine(codebook, scale, shift, groups)
    return _affine_codebook(codebook, scale, shift, lr_scale, groups)


def _affine_codebook(codebook, scale, shift, lr_scale=1.0, groups=1):
    pieces = [
        ops.multiply(lr_scale, value if value.ndim == 2 else ops.reshape(value, (1, value.shape[0])))
        for value in (scale, shift)
    ]
    return _grouped(codebook, ops.add(1.0, pieces[0]), pieces[1])


def init_running_affine(dim, groups=1, dtype=None):
    """Running statistics for ``running_affine_codebook``: embedding mean/variance (D,), code
    mean/variance per group (groups, D), and the number of updates so far."""
    validate.number(dim, "dim", low=1, integer=True)
    validate.number(groups, "groups", low=1, integer=True)
    dtype = resolve_dtype(dtype)
    return {
        "z_mean": asarray(np.zeros(dim), dtype),
        "z_var": asarray(np.ones(dim), dtype),
        "code_mean": asarray(np.zeros((groups, dim)), dtype),
        "code_var": asarray(np.ones((groups, dim)), dtype),
        "updates": 0,
    }


def update_running_affine(stats, z_e, codebook, momentum=0.1):
    """New running statistics after one batch (values only, no gradient):

        mean <- (1 - momentum) mean + momentum batch_mean,  same for the (population) variance,

    for the embeddings z_e (over all vectors) and for the raw codes of each group. The first update
    copies the batch statistics, so the initial 0/1 do not linger for ~1/momentum steps.
    """
    validate.codebook(codebook)
    validate.array(z_e, "z_e")
    validate.same_last_dim(codebook, "codebook", z_e, "z_e")
    validate.number(momentum, "momentum", low=0.0, high=1.0)
    validate.on_backend({key: stats[key] for key in ("z_mean", "z_var", "code_mean", "code_var")}, "stats")
    validate.codebook_groups(codebook, stats["code_mean"].shape[0])
    return _update_running_affine(stats, z_e, codebook, momentum)


def _update_running_affine(stats, z_e, codebook, momentum=0.1):
    groups = stats["code_mean"].shape[0]
    flat, table = as_rows(z_e), getval(codebook)
    xp = namespace_of(flat)
    grouped = xp.reshape(table, (groups, table.shape[0] // groups, table.shape[1]))
    batch = {
        "z_mean": xp.mean(flat, axis=0),
        "z_var": xp.var(flat, axis=0),
        "code_mean": xp.mean(grouped, axis=1),
        "code_var": xp.var(grouped, axis=1),
    }
    weight = 1.0 if stats["updates"] == 0 else momentum
    new = {key: (1.0 - weight) * stats[key] + weight * batch[key] for key in batch}
    new["updates"] = stats["updates"] + 1
    return new


def running_affine_codebook(codebook, stats, eps=1e-8):
    """Affine codebook set from running statistics (the variant in vqtorch and in
    vector-quantize-pytorch): per group and dimension

        scale = sqrt(var_z / (var_c + eps)),   shift = mean_z - scale * mean_c,
        c~_k  = scale_g * c_k + shift_g,

    so the codes' per-dimension mean and variance match the embeddings'. scale and shift are
    constants (statistics, not parameters); the raw codes still get the gradient scale_g * g.
    """
    validate.codebook(codebook)
    validate.codebook_groups(codebook, stats["code_mean"].shape[0])
    return _running_affine_codebook(codebook, stats, eps)


def _running_affine_codebook(codebook, stats, eps=1e-8):
    xp = namespace_of(stats["z_var"])
    scale = xp.sqrt(stats["z_var"] / (stats["code_var"] + eps))
    shift = stats["z_mean"] - scale * stats["code_mean"]
    # statistics may be kept in float64; the codes keep their own dtype (float32 stays float32)
    return _grouped(codebook, xp.astype(scale, codebook.dtype), xp.astype(shift, codebook.dtype))


Refinement = namedtuple("Refinement", "params velocity losses")


def refine_codebook(params, z_e, indices, lr, inner_steps=1, momentum=0.0, velocity=None, codebook_fn=None):
    """Alternating optimisation (fix 2): with the assignments ``indices`` held fixed, take
    ``inner_steps`` SGD steps on the codebook loss

        L(params) = mean over elements of (C(params)[indices] - sg(z_e))^2

    before the encoder/decoder step, which should then re-use ``indices`` with the updated codebook
    (``vq.lookup(C(new_params), indices)``), as the official code does. ``params`` is the codebook
    itself or any parameter tree with ``codebook_fn(params) -> codebook`` (e.g. an affine one);
    ``momentum`` and ``velocity`` (returned, to carry to the next call) give heavy-ball SGD.

    ``lr`` is a number or a 0-d array on the device (``alternating_lr`` computes one from the batch).

    Returns Refinement(params, velocity, losses) with losses[t] the loss before step t + 1 and
    losses[-1] the loss after the last step (inner_steps + 1 0-d arrays, left on the device:
    ``float`` them to read them, which on a GPU waits for the device).
    """
    validate.rate(lr, "lr")
    validate.number(inner_steps, "inner_steps", low=0, integer=True)
    codebook_fn = (lambda p: p) if codebook_fn is None else codebook_fn
    start = codebook_fn(params)
    validate.codebook(start)
    validate.same_last_dim(start, "codebook", z_e, "z_e")
    validate.indices(indices, start.shape[0])
    if tuple(indices.shape) != tuple(getval(z_e).shape[:-1]):
        raise ValueError(f"indices: shape {tuple(indices.shape)} does not match z_e's {tuple(getval(z_e).shape[:-1])}")
    return _refine_codebook(params, z_e, indices, lr, inner_steps, momentum, velocity, codebook_fn)


def _refine_codebook(params, z_e, indices, lr, inner_steps=1, momentum=0.0, velocity=None, codebook_fn=None):
    codebook_fn = (lambda p: p) if codebook_fn is None else codebook_fn
    target = ops.stop_gradient(getval(z_e))

    def loss(p):
        return _codebook_loss(target, ops.take_rows(codebook_fn(p), indices))

    opt_init, opt_update, get_params = optim.sgd(lr, momentum)
    state = opt_init(params) if velocity is None else (params, velocity)
    losses = []
    for step in range(inner_steps):
        value, grads = value_and_grad(loss)(get_params(state))
        losses.append(value)
        state = opt_update(step, grads, state)
    losses.append(loss(get_params(state)))
    return Refinement(get_params(state), state[1], losses)
