"""The quantized ReLU of the quant-act experiment (Yin et al. 2019): a ``bits``-bit staircase whose step
minimises the mean squared error for half-Gaussian inputs, fixed in advance,

    q(x) = step * clip(ceil(x / step), 0, 2^bits - 1),   step = argmin_s E[(q(x) - x)^2], x = |z|, z ~ N(0, 1).
"""

import functools
import math

import numpy as np

from stevq import nn


def half_gaussian_error(step, bits):
    """E[(q(x) - x)^2] for x = |z|, z ~ N(0, 1), and q(x) = step * min(ceil(x / step), 2^bits - 1),
    in closed form: q is the constant c = k step on each interval [a, b] = [(k - 1) step, k step]
    (the last interval is [(2^bits - 2) step, inf) with c = (2^bits - 1) step), and with phi, Phi the
    standard normal pdf and cdf,
        int_a^b (c - x)^2 phi(x) dx = (c^2 + 1) (Phi(b) - Phi(a)) - 2 c (phi(a) - phi(b)) + a phi(a) - b phi(b);
    the half-normal density is 2 phi on x > 0."""

    def pdf(x):
        return 0.0 if math.isinf(x) else math.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    def cdf(x):
        return 1.0 if math.isinf(x) else 0.5 * (1 + math.erf(x / math.sqrt(2)))

    top, total = 2**bits - 1, 0.0
    for k in range(1, top + 1):
        a, b, c = (k - 1) * step, (k * step if k < top else math.inf), k * step
        total += (
            (c * c + 1) * (cdf(b) - cdf(a))
            - 2 * c * (pdf(a) - pdf(b))
            + a * pdf(a)
            - (0.0 if math.isinf(b) else b * pdf(b))
        )
    return 2 * total


@functools.lru_cache(maxsize=None)
def half_gaussian_step(bits):
    """The step s minimising ``half_gaussian_error(s, bits)``: the quantizer's step fixed in advance
    for standardised pre-activations (for bits = 1 it is E[x] = sqrt(2 / pi)). A grid search on
    (0, 4], then golden-section refinement around the best grid point."""
    grid = np.linspace(0.01, 4.0, 400)
    best = int(np.argmin([half_gaussian_error(s, bits) for s in grid]))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        left, right = high - ratio * (high - low), low + ratio * (high - low)
        if half_gaussian_error(left, bits) < half_gaussian_error(right, bits):
            high = right
        else:
            low = left
    return float((low + high) / 2)


def quantized_activation(bits, backward):
    """The activation factory for ``models``: a ``bits``-bit quantized ReLU with the given STE."""
    return lambda position: nn.QuantReLU(bits, half_gaussian_step(bits), backward)
