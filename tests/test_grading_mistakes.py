"""The graders fail deliberately wrong solutions, each with a message that names the mistake: the
words every wrong solution's report must contain, per graded function."""

import math

import numpy as np
import pytest
from autograd.extend import defvjp, primitive
from support.graders import grading, solutions

from stevq import ops, ste, vq
from stevq.fsq import EPS


def one_hot(indices, num_codes):
    return (np.asarray(indices)[:, None] == np.arange(num_codes)).astype(float)


def overwrite_vjp(g, indices, num_codes):
    out = np.zeros((num_codes, g.shape[1]))
    out[indices] = g
    return out


def mean_vjp(g, indices, num_codes):
    picks = one_hot(indices, num_codes)
    return picks.T @ g / np.maximum(picks.sum(0), 1)[:, None]


def residual(z_e, indices, codebook):
    return one_hot(indices, codebook.shape[0]).T @ (codebook[indices] - z_e)


WRONG_LOOKUP_VJP = [
    (overwrite_vjp, "overwrites"),
    (mean_vjp, "averaged"),
    (lambda g, indices, num_codes: np.ones((num_codes, g.shape[0])) @ g, "unused codes must be zero"),
    (lambda g, indices, num_codes: -(one_hot(indices, num_codes).T @ g), "sign error"),
    (lambda g, indices, num_codes: g, "expected (8, 3)"),
    (lambda g, indices, num_codes: None, "forget the `return`"),
]

WRONG_CODEBOOK_GRAD = [
    (lambda z, i, c: -2 / z.size * residual(z, i, c), "sign error"),
    (lambda z, i, c: 2 * residual(z, i, c), "forgot the 1/(N*D) normalisation"),
    (lambda z, i, c: 2 / z.shape[0] * residual(z, i, c), "divided by N only"),
    (lambda z, i, c: 1 / z.size * residual(z, i, c), "factor 2 is missing"),
    (lambda z, i, c: 2 / z.size * (z.shape[0] * c - z.sum(0)), "unused codes must be zero"),
    (
        lambda z, i, c: 2 / z.shape[1] * residual(z, i, c) / np.maximum(one_hot(i, c.shape[0]).sum(0), 1)[:, None],
        "number of members",
    ),
    (lambda z, i, c: 2 / z.size * residual(z, i, c).T, "transposed"),
]


def plain_ste(z_e, z_q, nu):
    return ops.add(z_e, ops.stop_gradient(ops.subtract(z_q, z_e)))


WRONG_SYNC = [
    (plain_ste, "plain STE"),
    (lambda z_e, z_q, nu: ops.multiply(nu, plain_ste(z_e, z_q, nu)), "pitfall"),
    (lambda z_e, z_q, nu: ops.add(plain_ste(z_e, z_q, nu), ops.multiply(nu, z_q)), "(1 + nu) z_q"),
    (lambda z_e, z_q, nu: solutions.sync_straight_through(z_e, z_q, 1.0), "factor nu is missing"),
    (lambda z_e, z_q, nu: solutions.sync_straight_through(z_e, z_q, -nu), "sign error"),
    (lambda z_e, z_q, nu: solutions.sync_straight_through(ops.stop_gradient(z_e), z_q, nu), "no gradient"),
    (lambda z_e, z_q, nu: z_e, "forward value is z_e"),
]


def relu_variant(unit_w=True, unit_w_star=True, cross=-1.0, square=True, scale=1 / (2 * math.sqrt(2 * math.pi))):
    def expected(v, w, v_star, w_star):
        w_dir = w / np.linalg.norm(w) if unit_w else w
        w_star_dir = w_star / np.linalg.norm(w_star) if unit_w_star else w_star
        along = v @ v + (v.sum() ** 2 if square else 0) + cross * v.sum() * v_star.sum()
        return scale * (along * w_dir - (v @ v_star) * w_star_dir)

    return expected


WRONG_RELU = [
    (relu_variant(square=False, cross=0.0, scale=1 / math.sqrt(2 * math.pi)), "identity"),
    (relu_variant(unit_w=False), "w^ = w/||w||"),
    (relu_variant(unit_w_star=False), "w*^"),
    (relu_variant(scale=1 / math.sqrt(2 * math.pi)), "factor 1/2 is missing"),
    (relu_variant(scale=-1 / (2 * math.sqrt(2 * math.pi))), "sign error"),
    (relu_variant(cross=0.0), "-(1^T v)(1^T v*)"),
    (relu_variant(cross=1.0), "sign error in the term"),
]


def bound_variant(eps=EPS, offset=True, shift=1.0, divide=False, rounded=False):
    def bound(z, levels):
        level = np.asarray(levels, dtype=float)
        h = (level - 1) * (1 + eps) / 2
        o = np.where(level % 2 == 0, 0.5, 0.0) if offset else 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.tanh(z + shift * np.arctanh(o / h)) * h - o
        value = np.round(value) if rounded else value
        return value / np.floor(level / 2) if divide else value

    return bound


WRONG_FSQ = [
    (bound_variant(eps=-EPS), "NaN"),
    (bound_variant(eps=0.0), "(1 + eps) in h"),
    (bound_variant(offset=False), "offset o = 0.5"),
    (bound_variant(shift=0.0), "shift s = atanh(o/h) inside the tanh is missing"),
    (bound_variant(shift=-1.0), "tanh(z + s), not tanh(z - s)"),
    (bound_variant(divide=True), "must not divide by floor(L/2)"),
    (bound_variant(rounded=True), "your bound rounds"),
    (lambda z, levels: np.tanh(z) * 2.0, "wrong values for the channels"),
]

WRONG_PLAIN_STE = [
    (lambda z_e, z_q: ops.add(z_q, ops.stop_gradient(ops.subtract(z_e, z_q))), "wrong term"),
    (
        lambda z_e, z_q: ops.add(ops.stop_gradient(z_e), ops.subtract(z_q, ops.stop_gradient(z_e))),
        "goes to z_q instead",
    ),
    (lambda z_e, z_q: ops.add(z_e, ops.subtract(z_q, ops.stop_gradient(z_e))), "z_q receives dL/dout as well"),
]

WRONG_IDENTITY = [
    (relu_variant(), "ReLU STE's expected"),
    (relu_variant(square=False, cross=0.0, scale=1 / math.sqrt(2 * math.pi), unit_w=False), "w^ = w/||w||"),
    (relu_variant(square=False, cross=0.0, scale=1 / (2 * math.sqrt(2 * math.pi))), "not 1/(2 sqrt(2 pi))"),
]


def quantize_variant(divide=True, through=True):
    def quantize(z, levels):
        bounded = solutions.fsq_bound(z, levels)
        rounded = ste.round_ste(bounded) if through else ops.round(bounded)
        return ops.divide(rounded, np.floor(np.asarray(levels) / 2)) if divide else rounded

    return quantize


WRONG_FSQ_QUANTIZE = [
    (quantize_variant(divide=False), "divide the rounded values by floor(L/2)"),
    (quantize_variant(through=False), "round with stevq.ste.round_ste"),
    (
        lambda z, levels: ops.divide(solutions.fsq_bound(z, levels), np.floor(np.asarray(levels) / 2)),
        "you did not round",
    ),
]


def wrong_primitive(vjp_value, vjp_surrogate, forward=lambda value, surrogate: value):
    wrapped = primitive(lambda forward_value, surrogate: forward(forward_value, surrogate))
    defvjp(wrapped, lambda ans, a, b: vjp_value, lambda ans, a, b: vjp_surrogate)
    return wrapped


WRONG_STE_PRIMITIVE = [
    (lambda value, surrogate: value, "not an autograd primitive"),
    (wrong_primitive(lambda g: g, lambda g: g), "must receive no gradient"),
    (wrong_primitive(lambda g: g, lambda g: 0 * g), "swapped"),
    (wrong_primitive(lambda g: 0 * g, lambda g: -g), "sign error"),
    (
        wrong_primitive(lambda g: 0 * g, lambda g: g, forward=lambda value, surrogate: surrogate),
        "forward value is the surrogate",
    ),
]

WRONG_BINARY_STEP = [
    (lambda x: solutions.straight_through(ops.heaviside(x), x), "identity STE"),
    (lambda x: ops.heaviside(x), "no gradient reaches x"),
    (lambda x: solutions.straight_through(ops.heaviside(x), ops.clip(x, 0.0, 1.0)), "clipped-ReLU"),
    (lambda x: solutions.straight_through(ops.relu(x), ops.relu(x)), "forward value is relu(x)"),
    (lambda x: solutions.straight_through(ops.heaviside(ops.add(x, 1e-300)) * 0 + (x >= 0), ops.relu(x)), "x >= 0"),
]


def one_hot_np(indices, num_codes):
    return (np.asarray(indices)[:, None] == np.arange(num_codes)).astype(float)


WRONG_CLUSTER_STATS = [
    (
        lambda z, i, k: (
            one_hot_np(i, k).sum(0),
            one_hot_np(i, k).T @ z / np.maximum(one_hot_np(i, k).sum(0), 1)[:, None],
        ),
        "means of each code",
    ),
    (lambda z, i, k: (one_hot_np(i, k).sum(1), one_hot_np(i, k).T @ z), "expected (6,)"),
    (lambda z, i, k: one_hot_np(i, k).T @ z, "a pair (counts, sums)"),
]


def ema_variant(**switches):
    from grading import engine_exercises

    return lambda counts, sums, z_e, indices, decay, eps: engine_exercises._ema_variant(
        counts, sums, z_e, indices, decay, eps, **switches
    )


WRONG_EMA = [
    (ema_variant(swap=True), "swapped"),
    (ema_variant(decay_unused=False), "nobody chose must decay"),
    (ema_variant(smooth=False), "Laplace smoothing is missing"),
    (ema_variant(times_total=False), "is a probability"),
]


def rotation_variant(**switches):
    from grading import engine_exercises

    return lambda g, z_e, z_q: engine_exercises._rotation_variant(g, z_e, z_q, **switches)


WRONG_ROTATION_VJP = [
    (lambda g, z_e, z_q: g, "straight-through gradient"),
    (rotation_variant(transpose=False), "not its transpose"),
    (rotation_variant(scale="1"), "||q|| / ||e|| is missing"),
    (rotation_variant(scale="e/q"), "inverted"),
    (rotation_variant(unit_r=False), "unit vector"),
    (rotation_variant(last_sign=-1.0), "sign error in the last term"),
]


def rotation_primitive(vjp_e):
    wrapped = primitive(lambda z_e, z_q: z_q)
    defvjp(wrapped, lambda ans, z_e, z_q: lambda g: vjp_e(g, z_e, z_q), None)
    return wrapped


WRONG_ROTATION_TRICK = [
    (lambda z_e, z_q: vq.straight_through(z_e, z_q), "not an autograd primitive"),
    (rotation_primitive(lambda g, z_e, z_q: g), "that is the STE"),
    (rotation_primitive(rotation_variant(transpose=False)), "must receive rotation_vjp"),
]

WRONG = {
    "lookup_vjp": WRONG_LOOKUP_VJP,
    "codebook_grad": WRONG_CODEBOOK_GRAD,
    "straight_through_output": WRONG_PLAIN_STE,
    "sync_straight_through": WRONG_SYNC,
    "expected_identity_coarse_grad": WRONG_IDENTITY,
    "expected_relu_coarse_grad": WRONG_RELU,
    "fsq_bound": WRONG_FSQ,
    "fsq_quantize": WRONG_FSQ_QUANTIZE,
    "straight_through": WRONG_STE_PRIMITIVE,
    "binary_step": WRONG_BINARY_STEP,
    "cluster_stats": WRONG_CLUSTER_STATS,
    "ema_update": WRONG_EMA,
    "rotation_vjp": WRONG_ROTATION_VJP,
    "rotation_trick": WRONG_ROTATION_TRICK,
}
CASES = [(name, *case) for name, cases in WRONG.items() for case in cases]


def test_every_grader_has_wrong_solutions():
    assert sorted(WRONG) == sorted(grading.GRADERS)


@pytest.mark.parametrize("name, wrong, words", CASES, ids=[f"{c[0]}-{c[2][:30]}" for c in CASES])
def test_wrong_solution_fails_naming_the_mistake(name, wrong, words):
    report = grading.GRADERS[name](wrong)
    assert not report.passed, f"{name}: a wrong solution passed"
    assert words in str(report), str(report)
