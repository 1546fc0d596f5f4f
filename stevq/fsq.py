"""Finite scalar quantization (Mentzer, Minnen, Agustsson, Tschannen 2023, "Finite Scalar
Quantization: VQ-VAE Made Simple"; docs/reference/vq.md, section 3).

Each of the d channels is bounded and rounded to one of L_i levels, so the codebook is implicit:
the grid of prod(L_i) points. No codebook loss, no commitment loss, no codes to die.

    eps = 1e-3,  h = (L - 1)(1 + eps) / 2,  o = 0.5 if L even else 0,  s = atanh(o / h)
    bound(z) = tanh(z + s) h - o                      (range (-h - o, h - o))
    z^       = round_ste(bound(z)) / floor(L / 2)     (levels k / floor(L/2), k = -floor(L/2) .. L - 1 - floor(L/2))

(1 + eps) rather than (1 - eps) keeps s finite for L = 2 (o / h < 1). Indices: digit_i =
z^_i floor(L_i/2) + floor(L_i/2) in {0 .. L_i - 1}, index = sum_i digit_i prod_{j<i} L_j (the first
channel is the least significant digit).
"""

import math
import numbers

import numpy as np

from . import ops, validate
from .autodiff import getval, isbox
from .backend import asarray, device_of, namespace_of, resolve_dtype
from .ste import round_ste

EPS = 1e-3

# Recommended level sets from the paper, keyed by log2 of the codebook size.
RECOMMENDED_LEVELS = {8: (8, 6, 5), 10: (8, 5, 5, 5), 12: (7, 5, 5, 5, 5), 14: (8, 8, 8, 6, 5), 16: (8, 8, 8, 5, 5, 5)}


def check_levels(levels):
    """``levels`` must be a non-empty sequence of Python integers, each >= 2; returned as a tuple."""
    if isinstance(levels, (str, bytes)) or not hasattr(levels, "__iter__"):
        raise ValueError(f"levels: expected a sequence of integers >= 2, got {levels!r}")
    levels = tuple(levels)
    if not levels:
        raise ValueError("levels: expected at least one level count, got an empty sequence")
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, numbers.Integral):
            raise ValueError(f"levels: every entry must be an integer, got {level!r} in {levels}")
        if level < 2:
            raise ValueError(f"levels: every entry must be >= 2, got {level} in {levels}")
    return tuple(int(level) for level in levels)


def codebook_size(levels):
    """Size of the implicit codebook, prod(L_i)."""
    return math.prod(check_levels(levels))


def recommended_levels(log2_size):
    """The paper's level set for a codebook of 2^log2_size codes (8, 10, 12, 14 or 16)."""
    validate.choice(log2_size, "log2_size", tuple(RECOMMENDED_LEVELS))
    return RECOMMENDED_LEVELS[log2_size]


def _constants(levels, dtype, device=None):
    """Per-channel half-width h, offset o, shift s and half-level count floor(L/2) as backend arrays."""
    level = np.asarray(levels, dtype=np.float64)
    half_width = (level - 1) * (1 + EPS) / 2
    offset = np.where(level % 2 == 0, 0.5, 0.0)
    shift = np.arctanh(offset / half_width)
    return tuple(asarray(value, dtype, device) for value in (half_width, offset, shift, np.floor(level / 2)))


def bound(z, levels):
    """bound(z) = tanh(z + s) h - o, channel-wise over the last axis (differentiable)."""
    levels = check_levels(levels)
    _check_channels(z, levels, "z")
    half_width, offset, shift, _ = _constants(levels, z.dtype, device_of(z))
    return ops.subtract(ops.multiply(ops.tanh(ops.add(z, shift)), half_width), offset)


def quantize(z, levels):
    """FSQ codes of ``z`` (..., d): z^ = round_ste(bound(z)) / floor(L/2), with the identity
    straight-through gradient through the rounding. Values lie on the grid of ``implicit_codebook``."""
    levels = check_levels(levels)
    _check_channels(z, levels, "z")
    half_levels = _constants(levels, z.dtype, device_of(z))[3]
    return ops.divide(round_ste(bound(z, levels)), half_levels)


def _check_channels(x, levels, name, dtype="float"):
    validate.array(x, name, dtype=dtype)
    if x.ndim < 1 or x.shape[-1] != len(levels):
        raise ValueError(
            f"{name}: last dimension must equal the {len(levels)} channels of levels "
            f"{levels}, got shape {tuple(x.shape)}"
        )


def _basis(levels):
    """prod_{j<i} L_j for each channel i."""
    return np.concatenate([[1], np.cumprod(levels[:-1])]).astype(np.int64)


def codes_to_indices(codes, levels):
    """Integer index of each code (..., d) -> (...): sum_i digit_i prod_{j<i} L_j with
    digit_i = z^_i floor(L_i/2) + floor(L_i/2). Not differentiable. Codes off the grid are an
    error, read from the values unless ``codes`` is traced (a training step: see ``stevq.validate``)."""
    levels = check_levels(levels)
    _check_channels(codes, levels, "codes")
    value = getval(codes)
    xp = namespace_of(value)
    half_levels = _constants(levels, value.dtype, device_of(value))[3]
    digits = xp.astype(xp.round(value * half_levels + half_levels), xp.int64)
    level = asarray(np.asarray(levels, dtype=np.int64), device=device_of(value))
    if not isbox(codes) and bool(xp.any((digits < 0) | (digits >= level))):  # read: not in a traced step
        raise ValueError(f"codes: values are not on the FSQ grid of levels {levels}")
    return xp.sum(digits * asarray(_basis(levels), device=device_of(value)), axis=-1)


def indices_to_codes(indices, levels, dtype=None):
    """Codes (..., d) of integer ``indices`` (...): digit_i = (index // prod_{j<i} L_j) mod L_i,
    z^_i = (digit_i - floor(L_i/2)) / floor(L_i/2). Indices must lie in [0, prod(L))."""
    levels = check_levels(levels)
    validate.array(indices, "indices", dtype="int")
    value = getval(indices)
    xp = namespace_of(value)
    size = math.prod(levels)
    if value.size and bool(xp.any((value < 0) | (value >= size))):
        raise ValueError(
            f"indices: values must lie in [0, {size}) for levels {levels}, got min "
            f"{int(xp.min(value))} and max {int(xp.max(value))}"
        )
    device = device_of(value)
    digits = (xp.expand_dims(value, axis=-1) // asarray(_basis(levels), device=device)) % asarray(
        np.asarray(levels, dtype=np.int64), device=device
    )
    half_levels = _constants(levels, resolve_dtype(dtype), device)[3]
    return (xp.astype(digits, half_levels.dtype) - half_levels) / half_levels


def implicit_codebook(levels, dtype=None):
    """All prod(L) codes as a (prod(L), d) array, row k the code of index k."""
    size = codebook_size(levels)
    return indices_to_codes(asarray(np.arange(size, dtype=np.int64)), levels, dtype)
