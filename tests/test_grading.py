"""The graders: each passes the reference solution (on both CPU backends), fails the untouched
template, and fails deliberately wrong solutions with a message that names the mistake."""
import math

import numpy as np
import pytest

import stevq
from stevq import grading, ops
from stevq.fsq import EPS
from stevq.grading import solutions


def template(name):
    def todo(*args):
        raise NotImplementedError(f"TODO: write {name}")
    return todo


@pytest.mark.parametrize("name", sorted(grading.GRADERS))
def test_reference_solution_passes(name, backend):
    report = grading.GRADERS[name](getattr(solutions, name))
    assert report.passed, str(report)
    assert "PASSED" in str(report)


@pytest.mark.parametrize("name", sorted(grading.GRADERS))
def test_untouched_template_fails(name):
    report = grading.GRADERS[name](template(name))
    assert not report.passed
    assert "not implemented yet" in str(report)
    with pytest.raises(AssertionError, match="NOT YET"):
        report.raise_if_failed()


def test_a_crash_is_reported_not_raised():
    report = grading.check_codebook_grad(lambda z_e, indices, codebook: z_e @ codebook)
    assert not report.passed and "raised ValueError" in str(report)


# ---- wrong solutions, each with the words its report must contain

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
    (lambda z, i, c: 2 / z.shape[1] * residual(z, i, c) / np.maximum(one_hot(i, c.shape[0]).sum(0), 1)[:, None],
     "number of members"),
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

CASES = ([("lookup_vjp", *case) for case in WRONG_LOOKUP_VJP]
         + [("codebook_grad", *case) for case in WRONG_CODEBOOK_GRAD]
         + [("sync_straight_through", *case) for case in WRONG_SYNC]
         + [("expected_relu_coarse_grad", *case) for case in WRONG_RELU]
         + [("fsq_bound", *case) for case in WRONG_FSQ])


@pytest.mark.parametrize("name, wrong, words", CASES, ids=[f"{c[0]}-{c[2][:30]}" for c in CASES])
def test_wrong_solution_fails_naming_the_mistake(name, wrong, words):
    report = grading.GRADERS[name](wrong)
    assert not report.passed, f"{name}: a wrong solution passed"
    assert words in str(report), str(report)


def test_a_numpy_student_passes_under_cupy():
    """Graders hand the student's function NumPy arrays and compare on the host: plain NumPy code
    is right on a GPU machine too."""
    def lookup_vjp(g, indices, num_codes):
        out = np.zeros((num_codes, g.shape[1]))
        np.add.at(out, np.asarray(indices), np.asarray(g))
        return out

    with stevq.use("cupy"):
        report = grading.check_lookup_vjp(lookup_vjp)
    assert report, str(report)
