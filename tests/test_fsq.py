"""Finite scalar quantization against its formulas (Mentzer et al. 2023, vq.md section 3), written
out again in NumPy here; every code reachable, exact index round trips, L = 2 finite, both backends."""

import itertools
import math

import numpy as np
import pytest
from autograd import grad

import stevq
from stevq import fsq, ops

LEVEL_SETS = [(8, 5, 5, 5), (7, 5, 5, 5, 5)[:3], (2, 3, 4), (2, 2), (5,)]


def formula(z, levels):
    """The paper's FSQ written independently: per channel, forward value and d value / dz."""
    level = np.asarray(levels, float)
    half_width = (level - 1) * 1.001 / 2
    offset = np.where(level % 2 == 0, 0.5, 0.0)
    shift = np.arctanh(offset / half_width)
    bounded = np.tanh(z + shift) * half_width - offset
    denominator = np.floor(level / 2)
    return np.round(bounded) / denominator, (1 - np.tanh(z + shift) ** 2) * half_width / denominator


@pytest.mark.parametrize("levels", LEVEL_SETS)
def test_values_and_gradient_match_the_formulas(backend, levels):
    z = 2.0 * np.random.default_rng(0).standard_normal((50, len(levels)))
    expected, slope = formula(z, levels)
    x = stevq.asarray(z)
    np.testing.assert_allclose(stevq.to_numpy(fsq.quantize(x, levels)), expected, rtol=1e-15)
    got = stevq.to_numpy(grad(lambda x: ops.sum(fsq.quantize(x, levels)))(x))
    np.testing.assert_allclose(got, slope, rtol=1e-12)  # identity STE through round: d bound / dz


@pytest.mark.parametrize("levels", LEVEL_SETS)
def test_every_code_reachable_and_index_round_trips(backend, levels):
    size = fsq.codebook_size(levels)
    assert size == math.prod(levels)
    codebook = stevq.to_numpy(fsq.implicit_codebook(levels))
    assert codebook.shape == (size, len(levels)) and len(np.unique(codebook, axis=0)) == size
    # the grid from the formula: values k / floor(L/2) for integer digits 0..L-1
    grid = {
        tuple((np.array(d) - np.floor(np.array(levels) / 2)) / np.floor(np.array(levels) / 2))
        for d in itertools.product(*(range(n) for n in levels))
    }
    assert {tuple(row) for row in codebook} == grid
    # reach each code from an input: z = atanh((digit value + offset) / h) - shift lands exactly on it
    level = np.array(levels, float)
    half_width, offset = (level - 1) * 1.001 / 2, np.where(level % 2 == 0, 0.5, 0.0)
    target = codebook * np.floor(level / 2)
    z = np.arctanh((target + offset) / half_width) - np.arctanh(offset / half_width)
    reached = fsq.codes_to_indices(fsq.quantize(stevq.asarray(z), levels), levels)
    np.testing.assert_array_equal(stevq.to_numpy(reached), np.arange(size))
    # index -> code -> index for all codes
    indices = stevq.asarray(np.arange(size))
    np.testing.assert_array_equal(
        stevq.to_numpy(fsq.codes_to_indices(fsq.indices_to_codes(indices, levels), levels)), np.arange(size)
    )
    # first channel least significant
    digits = np.round(codebook * np.floor(level / 2) + np.floor(level / 2))
    basis = np.concatenate([[1], np.cumprod(levels[:-1])])
    np.testing.assert_array_equal(digits @ basis, np.arange(size))


def test_levels_with_two_stay_finite(backend):
    z = stevq.asarray(np.array([[-50.0, 50.0, 0.0], [1e3, -1e3, 1e-9]]))
    for levels in [(2, 2, 2), (2, 3, 4)]:
        codes = fsq.quantize(z, levels)
        assert np.all(np.isfinite(stevq.to_numpy(codes)))
        assert np.all(np.isfinite(stevq.to_numpy(grad(lambda x: ops.sum(fsq.quantize(x, levels)))(z))))


def test_recommended_levels():
    for log2_size, levels in fsq.RECOMMENDED_LEVELS.items():
        assert fsq.recommended_levels(log2_size) == levels
        assert abs(math.log2(fsq.codebook_size(levels)) - log2_size) < 0.1  # about 2^n, not exactly


def test_bad_levels_and_indices(backend):
    z = stevq.asarray(np.zeros((3, 2)))
    for levels in [(1, 3), (3, 2.5), (), "35", (3, True), 5]:
        with pytest.raises(ValueError, match="levels"):
            fsq.quantize(z, levels)
    with pytest.raises(ValueError, match="z"):
        fsq.quantize(z, (3, 3, 3))
    with pytest.raises(ValueError, match="indices"):
        fsq.indices_to_codes(stevq.asarray(np.array([0, 9])), (3, 3))
    with pytest.raises(ValueError, match="indices"):
        fsq.indices_to_codes(stevq.asarray(np.array([-1])), (3, 3))
    with pytest.raises(ValueError, match="codes"):
        fsq.codes_to_indices(stevq.asarray(np.array([[2.0, 0.0]])), (3, 3))
