"""A small VQ layer as an ``(init, apply)`` pair, assembled from the functional pieces.

    init(rng, input_shape) -> (input_shape, params)      params = {"codebook": (K, D)}
                                                         (+ "scale", "shift" for affine="learned")
    apply(params, x, stats=None, indices=None) -> (out, aux)

The quantizer needs more than ``y = f(x)``: ``aux`` carries the chosen ``indices`` (shape of x without
the channel axis), the quantizer ``loss`` (``vq_loss``), the flattened ``z_e`` and ``z_q`` (M, D) and
the effective ``codebook``. State that is not learned by gradient stays with the caller:
``stats`` for affine="running" (``fixes.init_running_affine`` / ``update_running_affine``), EMA and
dead-code state (``stevq.vq.codebook``). Passing ``indices`` re-uses assignments made earlier, as
alternating optimisation does after ``refine_codebook``.
"""
import contextlib

import numpy as np

from .. import ops, validate
from ..autodiff import isbox
from ..backend import asarray, resolve_dtype
from .core import METRICS, VQ_LOSS_CONVENTIONS, nearest_code, straight_through, vq_loss
from .fixes import affine_codebook, init_affine, running_affine_codebook, sync_straight_through
from .rotation import rotation_trick

ESTIMATORS = ("ste", "sync", "rotation")
AFFINE = (None, "learned", "running")


def layer_codebook(params, stats=None, affine_lr=1.0, groups=1):
    """The codebook the layer quantizes with: params["codebook"], re-parameterised by the learned
    affine transform when params holds "scale" and "shift", or by running statistics when ``stats``
    is given. Use it as ``codebook_fn`` of ``refine_codebook``."""
    codebook = params["codebook"]
    if "scale" in params:
        codebook = affine_codebook(codebook, params["scale"], params["shift"], affine_lr, groups)
    if stats is not None:
        codebook = running_affine_codebook(codebook, stats)
    return codebook


def to_rows(x, channel_axis):
    """x with the channel axis moved last and flattened to (M, D); also returns the permutation used
    and the permuted shape, which ``from_rows`` needs to undo it."""
    axis = channel_axis % x.ndim
    order = tuple(i for i in range(x.ndim) if i != axis) + (axis,)
    moved = x if axis == x.ndim - 1 else ops.transpose(x, order)
    return ops.reshape(moved, (-1, x.shape[axis])), order, tuple(moved.shape)


def from_rows(rows, order, moved_shape):
    """The inverse of ``to_rows``: (M, D) rows back to the layout they came from."""
    moved = ops.reshape(rows, moved_shape)
    if order == tuple(range(len(order))):
        return moved
    inverse = tuple(order.index(i) for i in range(len(order)))
    return ops.transpose(moved, inverse)


def VectorQuantizer(num_codes, beta=0.25, estimator="ste", nu=1.0, affine=None, affine_lr=1.0,
                    groups=1, metric="l2", convention="vqvae", channel_axis=-1, init_scale=1.0,
                    dtype=None):
    """A vector-quantization layer with K = ``num_codes`` codes over the channel axis of its input.

    ``estimator``: "ste" (out = z_e + sg(z_q - z_e)), "sync" (``sync_straight_through`` with ``nu``)
    or "rotation" (``rotation_trick``). ``affine``: None, "learned" (``affine_codebook`` with
    ``affine_lr`` and ``groups``) or "running" (``running_affine_codebook``; pass ``stats``).
    ``channel_axis``: -1 for (..., D) inputs, 1 for NCHW feature maps. The codebook starts as
    N(0, init_scale^2) draws from the host Generator (replace it with ``kmeans_plus_plus`` if wanted).
    aux["loss"] = ``vq_loss(z_e, z_q, beta, convention)``.
    """
    validate.number(num_codes, "num_codes", low=1, integer=True)
    validate.choice(estimator, "estimator", ESTIMATORS)
    validate.choice(affine, "affine", AFFINE)
    validate.choice(metric, "metric", METRICS)
    validate.choice(convention, "convention", VQ_LOSS_CONVENTIONS)
    validate.choice(dtype, "dtype", ("float32", "float64", None))
    validate.number(init_scale, "init_scale", low=0.0, low_inclusive=False)
    validate.number(nu, "nu")
    validate.number(groups, "groups", low=1, integer=True)
    if num_codes % groups:
        raise ValueError(f"groups: {groups} groups do not divide the {num_codes} codes evenly")

    def init(rng, input_shape):
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
        dim = tuple(input_shape)[channel_axis if channel_axis < 0 else channel_axis - 1]
        params = {"codebook": asarray(init_scale * rng.standard_normal((num_codes, dim)), resolve_dtype(dtype))}
        if affine == "learned":
            params.update(init_affine(dim, groups, dtype))
        return tuple(input_shape), params

    def apply(params, x, stats=None, indices=None):
        # One check at this boundary. Under a gradient (x traced: a training step) the values are
        # left to the loop's one read of its loss per step, where a NaN anywhere shows up: scanning
        # x and the codebook here would cost a device-to-host read each on a GPU.
        training = isbox(x)
        validate.array(x, "x", ndim=(2, 3, 4, 5), finite=not training)
        if affine == "running" and stats is None:
            raise ValueError("stats: affine='running' needs the running statistics "
                             "(stevq.vq.init_running_affine / update_running_affine)")
        with validate.values_checked_by_caller() if training else contextlib.nullcontext():
            return _apply(params, x, stats, indices)

    def _apply(params, x, stats, indices):
        z_e, order, moved_shape = to_rows(x, channel_axis)
        codebook = layer_codebook(params, stats if affine == "running" else None, affine_lr, groups)
        if indices is None:
            indices = nearest_code(z_e, codebook, metric)
        else:
            validate.indices(indices, num_codes)
            indices = ops.reshape(indices, (-1,))
        z_q = ops.take_rows(codebook, indices)
        if estimator == "ste":
            out = straight_through(z_e, z_q)
        elif estimator == "sync":
            out = sync_straight_through(z_e, z_q, nu)
        else:
            out = rotation_trick(z_e, z_q)
        aux = {"indices": ops.reshape(indices, moved_shape[:-1]), "loss": vq_loss(z_e, z_q, beta, convention),
               "z_e": z_e, "z_q": z_q, "codebook": codebook}
        return from_rows(out, order, moved_shape), aux
    return init, apply
