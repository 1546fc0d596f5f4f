"""The quantizer variants compared in the VQ experiments, built from ``stevq.vq`` and ``stevq.fsq``.

Every variant is one ``Quantizer`` with the same five functions, so a single training loop
(``vq_training``) runs them all:

    init(rng, latent_shape) -> (params, state)   params: trained by the optimizer with the networks
                                                 state: everything else (EMA sums, usage counters, ...)
    apply(params, state, z_e, indices=None) -> (out, aux)
        out:  the quantizer output, same shape as z_e (forward value z_q; backward by the variant's rule)
        aux:  "indices" (M,), "z_e" and "z_q" (M, D) rows, "codebook" (the effective codes),
              "loss" (the quantizer's share of the loss, or None)
    data_init(params, state, embed, rng) -> (params, state)        before the first step: k-means
        initialisation of the codebook from the first batch's embeddings (``Variant.kmeans`` only)
    before_step(params, state, embed) -> (params, state, indices)  alternating optimisation only;
        embed() returns the current embeddings z_e (called only by the variants that need them)
    after_step(params, state, aux, rng) -> (params, state)         EMA and dead-code replacement

The variants (Huh et al. 2023 for the fixes; docs/reference/vq.md):

    ste              codebook trained by the codebook loss, L = L_task + L_cb + beta L_com
    ema              codebook = EMA of its members (``vq.ema_update``), L = L_task + beta L_com
    affine           codes c~ = (1 + a s) c + a b with shared learned s, b (``vq.affine_codebook``)
    alternating      before every step, SGD steps on L_cb for the current assignments (``vq.refine_codebook``)
    sync             chosen codes also get nu x the task gradient (``vq.sync_straight_through``)
    affine+alt+sync  the three fixes together (Huh et al.'s method)
    dead-code        codes unused for ``dead_threshold`` steps re-seeded at embeddings (``vq.replace_dead_codes``)
    rotation         the rotation trick instead of the STE (``vq.rotation_trick``), codebook loss as in ste
    fsq              finite scalar quantization (``stevq.fsq``): no codebook, no quantizer loss

Other combinations (e.g. k-means initialisation, ``Variant(kmeans=True)``) are built by passing a
``Variant`` to ``make_quantizer``.
"""

import dataclasses
import math
from collections import namedtuple

import numpy as np

from stevq import fsq, ops, validate, vq
from stevq.autodiff import getval
from stevq.backend import asarray, namespace_of
from stevq.vq.layer import from_rows, to_rows


@dataclasses.dataclass(frozen=True)
class Variant:
    """Which pieces a variant uses."""

    estimator: str = "ste"  # "ste", "sync" or "rotation"
    affine: bool = False
    alternating: bool = False
    ema: bool = False
    dead_code: bool = False
    fsq: bool = False
    kmeans: bool = False  # codebook from k-means++ and Lloyd steps on the first batch's embeddings


VARIANTS = {
    "ste": Variant(),
    "ema": Variant(ema=True),
    "affine": Variant(affine=True),
    "alternating": Variant(alternating=True),
    "sync": Variant(estimator="sync"),
    "affine+alt+sync": Variant(estimator="sync", affine=True, alternating=True),
    "dead-code": Variant(dead_code=True),
    "rotation": Variant(estimator="rotation"),
    "fsq": Variant(fsq=True),
}

# FSQ levels whose grid size is close to a VQ codebook size (Mentzer et al.'s recommended sets
# for 2^8 and 2^10 codes; 4 x 4 x 4 for 64).
KMEANS_SEEDINGS = ("kmeans++", "farthest")

FSQ_LEVELS = {64: (4, 4, 4), 256: (8, 6, 5), 1024: (8, 5, 5, 5)}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Hyper-parameters of the quantizers (each variant reads the ones it needs)."""

    num_codes: int = 256
    beta: float = 0.25  # commitment weight (VQ-VAE convention: L_cb + beta L_com)
    convention: str = "vqvae"  # or "vqtorch": (1 - beta) L_com + beta L_cb (``vq.vq_loss``)
    init_scale: float = 1.0  # codebook initialised as N(0, init_scale^2)
    nu: float = 1.0  # sync: the chosen codes get nu x the task gradient
    affine_lr: float = 4.0  # affine: learning-rate multiplier a of the shared scale and shift
    # alternating: alt_steps SGD steps (heavy-ball alt_momentum) on L_cb before each training step,
    # sized so that the busiest code moves alt_rate of the way to its members' mean (``alternating_lr``)
    alt_rate: float = 0.5
    alt_steps: int = 1
    alt_momentum: float = 0.0
    ema_decay: float = 0.99
    dead_threshold: int = 20  # dead-code: re-seed codes unused for this many steps
    dead_noise: float = 0.01
    kmeans_steps: int = 10  # k-means initialisation: Lloyd iterations after the seeding
    # "kmeans++": D^2 sampling then kmeans_steps Lloyd iterations (empty codes stay); "farthest":
    # torchpq's "kmeans++" as vqtorch calls it, farthest-point seeding then up to kmeans_steps Lloyd
    # iterations, stopping once the codes move less than kmeans_tol (empty codes go to the origin)
    kmeans_seeding: str = "kmeans++"
    kmeans_tol: float = 1e-4
    dtype: str = "float32"

    def __post_init__(self):
        validate.number(self.num_codes, "num_codes", low=2, integer=True)
        for name in ("beta", "init_scale", "affine_lr", "dead_noise"):
            validate.number(getattr(self, name), name, low=0.0)
        validate.number(self.nu, "nu")
        validate.number(self.alt_rate, "alt_rate", low=0.0, high=1.0, low_inclusive=False)
        validate.number(self.alt_steps, "alt_steps", low=1, integer=True)
        validate.number(self.alt_momentum, "alt_momentum", low=0.0, high=1.0)
        validate.number(self.ema_decay, "ema_decay", low=0.0, high=1.0)
        validate.number(self.dead_threshold, "dead_threshold", low=1, integer=True)
        validate.number(self.kmeans_steps, "kmeans_steps", low=0, integer=True)
        validate.choice(self.kmeans_seeding, "kmeans_seeding", KMEANS_SEEDINGS)
        validate.number(self.kmeans_tol, "kmeans_tol", low=0.0)
        validate.choice(self.convention, "convention", vq.VQ_LOSS_CONVENTIONS)
        if self.convention == "vqtorch":
            validate.number(self.beta, "beta", low=0.0, high=1.0)
        validate.choice(self.dtype, "dtype", ("float32", "float64"))


def settings_of(config, **given):
    """The ``Settings`` of an experiment's ``config``: each of its fields that ``config`` has (by
    name), and ``given`` over them (those the config names otherwise, e.g. per model)."""
    names = [field.name for field in dataclasses.fields(Settings)]
    taken = {name: getattr(config, name) for name in names if hasattr(config, name)}
    return Settings(**(taken | given))


Quantizer = namedtuple("Quantizer", "name num_codes latent_dim init apply data_init before_step after_step")


def fsq_levels(num_codes):
    """The FSQ level set used in place of a ``num_codes`` codebook."""
    if num_codes in FSQ_LEVELS:
        return FSQ_LEVELS[num_codes]
    log2 = round(math.log2(num_codes))
    if log2 in fsq.RECOMMENDED_LEVELS:
        return fsq.recommended_levels(log2)
    raise ValueError(
        f"num_codes: no FSQ level set for {num_codes} codes; use one of "
        f"{sorted(FSQ_LEVELS)} or 2^{sorted(fsq.RECOMMENDED_LEVELS)}"
    )


def _rows(x):
    """(N, C, H, W) feature maps or (N, C) vectors -> (M, C) rows, channel last, and how to undo it."""
    return to_rows(x, 1 if x.ndim == 4 else -1)


def _flat(indices):
    value = getval(indices)
    return namespace_of(value).reshape(value, (-1,))


def make_quantizer(name, settings, vq_dim, variant=None):
    """The ``Quantizer`` of variant ``name`` (a key of ``VARIANTS``) with ``settings``; VQ variants
    quantize ``vq_dim``-dimensional vectors, FSQ uses as many channels as it has levels. With a
    ``Variant`` given, ``name`` is only its label."""
    if variant is None:
        validate.choice(name, "variant", tuple(VARIANTS))
        variant = VARIANTS[name]
    elif not isinstance(variant, Variant):
        raise TypeError(f"variant: expected a vq_quantizers.Variant, got {type(variant).__name__}")
    validate.number(vq_dim, "vq_dim", low=1, integer=True)
    if variant.fsq:
        return _fsq_quantizer(name, fsq_levels(settings.num_codes), settings.dtype)
    return _vq_quantizer(name, variant, settings, vq_dim)


def _fsq_quantizer(name, levels, dtype):
    half_levels = asarray(np.floor(np.asarray(levels) / 2), dtype)

    def init(rng, latent_shape):
        return {}, {"codebook": fsq.implicit_codebook(levels, dtype)}

    def apply(params, state, z_e, indices=None):
        rows, order, moved_shape = _rows(z_e)
        z_q = fsq.quantize(rows, levels)
        # the embeddings on the code scale (bounded, before rounding) for the distribution gap
        scaled = getval(fsq.bound(rows, levels)) / half_levels  # rows traced in a step: no value read
        aux = {
            "indices": fsq.codes_to_indices(z_q, levels),
            "z_e": scaled,
            "z_q": getval(z_q),
            "codebook": state["codebook"],
            "loss": None,
        }
        return from_rows(z_q, order, moved_shape), aux

    return Quantizer(name, math.prod(levels), len(levels), init, apply, _no_data_init, _no_refinement, _no_maintenance)


def _no_data_init(params, state, embed, rng):
    return params, state


def _no_refinement(params, state, embed):
    return params, state, None


def _no_maintenance(params, state, aux, rng):
    return params, state


def alternating_lr(rows, indices, num_codes, rate, gain=1.0):
    """Step size of the alternating codebook refinement.

    L_cb = 1/(N D) sum_i ||c_{q_i} - z_i||^2 has curvature h_k = 2 n_k / (N D) in code k (n_k its
    members), times gain^2 when the code is scaled by ``gain`` (the affine multiplier 1 + a s).
    One SGD step at lr moves code k the fraction lr h_k of the way to its members' mean, so a fixed
    lr (Huh et al.'s example uses 50) diverges once a code holds a large share of the batch, which
    is exactly what happens under index collapse. Here lr = rate / max_k h_k: the busiest code moves
    ``rate`` of the way, the others proportionally less, never more than that.
    A 0-d array in the dtype of ``rows``, left on the device (no host round trip per step).
    """
    xp = namespace_of(rows)
    busiest = xp.max(xp.sum(ops.one_hot(indices, num_codes, rows.dtype), axis=0))
    return rate * rows.shape[0] * rows.shape[1] / (2.0 * busiest * gain * gain)


def _affine_gain(params, affine_lr):
    """Largest |1 + a s| of the learned affine codebook, at least 1e-3 (1 without one); a 0-d
    array on the device when there is one."""
    if "scale" not in params:
        return 1.0
    xp = namespace_of(params["scale"])
    return xp.maximum(xp.max(xp.abs(1.0 + affine_lr * params["scale"])), 1e-3)


def _vq_quantizer(name, variant, s, dim):
    layer_init, layer_apply = {}, {}
    for channel_axis in (1, -1):  # NCHW feature maps and (N, D) vectors
        layer_init[channel_axis], layer_apply[channel_axis] = vq.VectorQuantizer(
            s.num_codes,
            beta=s.beta,
            convention=s.convention,
            estimator=variant.estimator,
            nu=s.nu,
            affine="learned" if variant.affine else None,
            affine_lr=s.affine_lr,
            channel_axis=channel_axis,
            init_scale=s.init_scale,
            dtype=s.dtype,
        )

    def codebook_of(params):  # between steps: the unchecked kernels (stevq.vq.unchecked), no value read back
        return vq.unchecked.layer_codebook(params, None, s.affine_lr)

    def init(rng, latent_shape):
        _, params = layer_init[1 if len(latent_shape) == 3 else -1](rng, latent_shape)
        state = {}
        if variant.ema:  # the codebook is not a parameter: it follows the EMA of its members
            state = {"codebook": params.pop("codebook")}
            state["ema"] = vq.ema_init(state["codebook"])
        if variant.dead_code:
            state["steps_unused"] = asarray(np.zeros(s.num_codes, dtype=np.int64))
        if variant.alternating:
            state["velocity"] = None
        return params, state

    def apply(params, state, z_e, indices=None):
        layer_params = dict(params, codebook=state["codebook"]) if variant.ema else params
        out, aux = layer_apply[1 if z_e.ndim == 4 else -1](layer_params, z_e, None, indices)
        if variant.ema:  # the codebook loss would move nothing: only the encoder commits
            aux["loss"] = ops.multiply(s.beta, vq.commitment_loss(aux["z_e"], aux["z_q"]))
        aux["indices"] = _flat(aux["indices"])
        return out, aux

    def data_init(params, state, embed, rng):
        """vqtorch's kmeans_init: the raw codebook becomes the k-means centroids of the first batch
        (k-means++ or farthest-point seeding, then Lloyd iterations, ``Settings.kmeans_seeding``; the
        affine transform starts at the identity, so these are the effective codes too)."""
        if not variant.kmeans:
            return params, state
        rows = getval(_rows(getval(embed()))[0])
        if s.kmeans_seeding == "farthest":
            codebook = vq.kmeans_farthest(rows, s.num_codes, rng, s.kmeans_steps, s.kmeans_tol)
        else:
            codebook = vq.kmeans_plus_plus(rows, s.num_codes, rng, s.kmeans_steps)
        if variant.ema:
            return params, dict(state, codebook=codebook, ema=vq.ema_init(codebook))
        return dict(params, codebook=codebook), state

    def before_step(params, state, embed):
        if not variant.alternating:
            return params, state, None
        rows = getval(_rows(getval(embed()))[0])
        indices = vq.unchecked.nearest_code(rows, codebook_of(params))
        # only the raw codes are refined: the shared affine scale and shift have a curvature about
        # K times larger (every code pulls on them), at which the codes' step size would diverge
        lr = alternating_lr(rows, indices, s.num_codes, s.alt_rate, _affine_gain(params, s.affine_lr))
        refined = vq.unchecked.refine_codebook(
            {"codebook": params["codebook"]},
            rows,
            indices,
            lr,
            s.alt_steps,
            s.alt_momentum,
            state["velocity"],
            lambda raw: codebook_of(dict(params, **raw)),
        )
        return dict(params, **refined.params), dict(state, velocity=refined.velocity), indices

    def after_step(params, state, aux, rng):
        if variant.ema:
            ema, codebook = vq.unchecked.ema_update(state["ema"], aux["z_e"], aux["indices"], s.ema_decay)
            state = dict(state, ema=ema, codebook=codebook)
        if variant.dead_code:
            unused = vq.unchecked.track_usage(state["steps_unused"], aux["indices"])
            if variant.ema:  # the codebook is the EMA state's: re-seed it there and restart the replaced codes' EMA
                codebook, unused, replaced = vq.unchecked.replace_dead_codes(
                    state["codebook"], unused, aux["z_e"], rng, s.dead_threshold, s.dead_noise
                )
                state = dict(
                    state,
                    codebook=codebook,
                    ema=vq.unchecked.ema_reset_codes(state["ema"], codebook, replaced),
                    steps_unused=unused,
                )
            else:
                codebook, unused, _ = vq.unchecked.replace_dead_codes(
                    params["codebook"], unused, aux["z_e"], rng, s.dead_threshold, s.dead_noise
                )
                params, state = dict(params, codebook=codebook), dict(state, steps_unused=unused)
        return params, state

    return Quantizer(name, s.num_codes, dim, init, apply, data_init, before_step, after_step)
