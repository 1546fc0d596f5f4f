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

from .. import ops, validate
from ..autodiff import isbox
from ..backend import asarray, resolve_dtype
from .core import METRICS, VQ_LOSS_CONVENTIONS, _nearest_code, _straight_through, _vq_loss, check_vq_loss_settings
from .fixes import _affine_codebook, _running_affine_codebook, _sync_straight_through, init_affine
from .rotation import _rotate_onto_code

ESTIMATORS = ("ste", "sync", "rotation")
AFFINE = (None, "learned", "running")


def layer_codebook(params, stats=None, affine_lr=1.0, groups=1):
    """The codebook the layer quantizes with: params["codebook"], re-parameterised by the learned
    affine transform when params holds "scale" and "shift", or by running statistics when ``stats``
    is given. Use it as ``codebook_fn`` of ``refine_codebook``."""
    validate.codebook(params["codebook"])
    validate.number(affine_lr, "affine_lr")
    validate.codebook_groups(params["codebook"], groups)
    if "scale" in params:
        validate.affine(params["codebook"], params["scale"], params["shift"], groups)
    if stats is not None:
        validate.codebook_groups(params["codebook"], stats["code_mean"].shape[0])
    return _layer_codebook(params, stats, affine_lr, groups)


def _layer_codebook(params, stats=None, affine_lr=1.0, groups=1):
    codebook = params["codebook"]
    if "scale" in params:
        codebook = _affine_codebook(codebook, params["scale"], params["shift"], affine_lr, groups)
    if stats is not None:
        codebook = _running_affine_codebook(codebook, stats)
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


def VectorQuantizer(
    num_codes,
    beta=0.25,
    estimator="ste",
    nu=1.0,
    affine=None,
    affine_lr=1.0,
    groups=1,
    metric="l2",
    convention="vqvae",
    channel_axis=-1,
    init_scale=1.0,
    dtype=None,
):
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
    validate.number(affine_lr, "affine_lr")
    check_vq_loss_settings(beta, convention)
    if num_codes % groups:
        raise ValueError(f"groups: {groups} groups do not divide the {num_codes} codes evenly")

    def init(rng, input_shape):
        validate.generator(rng)
        dim = tuple(input_shape)[channel_axis if channel_axis < 0 else channel_axis - 1]
        params = {"codebook": asarray(init_scale * rng.standard_normal((num_codes, dim)), resolve_dtype(dtype))}
        if affine == "learned":
            params.update(init_affine(dim, groups, dtype))
        return tuple(input_shape), params

    def apply(params, x, stats=None, indices=None):
        # One check of every input at this boundary, then the unchecked kernels. Under a gradient
        # (x traced: a training step) no value is read: the loop reads its loss once per step, where
        # a NaN anywhere shows up, and on a GPU each read here would wait for the device.
        training = isbox(x)
        validate.array(x, "x", ndim=(2, 3, 4, 5), finite=not training)
        codebook = validate.array(params["codebook"], "codebook", ndim=2, finite=not training)
        if codebook.shape[1] != x.shape[channel_axis % x.ndim]:
            raise ValueError(
                f"codebook: {codebook.shape[1]}-dimensional codes do not match the "
                f"{x.shape[channel_axis % x.ndim]} channels of x (axis {channel_axis})"
            )
        if "scale" in params:
            validate.affine(params["codebook"], params["scale"], params["shift"], groups, finite=not training)
        if affine == "running":
            if stats is None:
                raise ValueError(
                    "stats: affine='running' needs the running statistics "
                    "(stevq.vq.init_running_affine / update_running_affine)"
                )
            validate.codebook_groups(params["codebook"], stats["code_mean"].shape[0])
        if indices is not None:
            validate.indices(indices, num_codes, read=not training)
        return _apply(params, x, stats, indices)

    def _apply(params, x, stats, indices):
        z_e, order, moved_shape = to_rows(x, channel_axis)
        codebook = _layer_codebook(params, stats if affine == "running" else None, affine_lr, groups)
        if indices is None:
            indices = _nearest_code(z_e, codebook, metric)
        else:
            indices = ops.reshape(indices, (-1,))
        z_q = ops.take_rows(codebook, indices)
        if estimator == "ste":
            out = _straight_through(z_e, z_q)
        elif estimator == "sync":
            out = _sync_straight_through(z_e, z_q, nu)
        else:
            out = _rotate_onto_code(z_e, z_q)
        aux = {
            "indices": ops.reshape(indices, moved_shape[:-1]),
            "loss": _vq_loss(z_e, z_q, beta, convention),
            "z_e": z_e,
            "z_q": z_q,
            "codebook": codebook,
        }
        return from_rows(out, order, moved_shape), aux

    return init, apply
