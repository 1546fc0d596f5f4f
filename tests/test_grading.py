"""The graders: each passes the reference solution (on every backend), fails the untouched template,
and gives zero to a solution that calls the stevq function it was asked to write (the deliberately
wrong solutions are in test_grading_mistakes.py). The reference solutions are read from the master
notebooks (instructor material in lectures/assignments/master/), not the package."""

import functools
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from autograd.extend import primitive
from support.graders import grading, solutions

import stevq
from stevq import fsq, ops, ste, vq
from stevq.theory import yin2019


def test_every_grader_has_a_reference_solution_in_a_master_notebook():
    assert sorted(vars(solutions)) == sorted(grading.GRADERS)


def test_the_package_holds_no_grading_code_and_no_masters():
    assert importlib.util.find_spec("stevq.grading") is None
    package = Path(stevq.__file__).parent
    assert not list(package.rglob("*.ipynb")) and not list(package.rglob("*grading*"))


def template(name):
    def todo(*args):
        raise NotImplementedError(f"TODO: write {name}")

    return primitive(todo) if name in ("straight_through", "rotation_trick") else todo  # as in the notebooks


@pytest.mark.parametrize("name", sorted(grading.GRADERS))
def test_reference_solution_passes(name, backend):
    """On every backend: the graders hand the student NumPy copies with the NumPy backend active
    (students write NumPy; the notebooks run on it), so a solution that calls stevq (round_ste,
    ops.one_hot) works under CuPy and array_api_strict too."""
    for seed in (0, 1):
        report = grading.GRADERS[name](getattr(solutions, name), seed=seed)
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


# ---- a submission that calls stevq's own implementation of what it was asked to write

from stevq.vq import codebook_grad as renamed_codebook_grad  # noqa: E402  (bound before any grader runs)

STORED = {"bound": fsq.bound}

CALLS_STEVQ = [
    (
        "lookup_vjp",
        lambda g, i, k: __import__("autograd").grad(lambda c: ops.sum(ops.multiply(ops.take_rows(c, i), g)))(
            np.zeros((k, g.shape[1]))
        ),
    ),
    ("codebook_grad", lambda z, i, c: vq.codebook_grad(z, i, c.shape[0], c)),
    ("codebook_grad", lambda z, i, c: renamed_codebook_grad(z, i, c.shape[0], c)),
    ("codebook_grad", lambda z, i, c: functools.partial(renamed_codebook_grad, z)(i, c.shape[0], c)),
    ("straight_through_output", lambda z_e, z_q: vq.straight_through(z_e, z_q)),
    ("sync_straight_through", lambda z_e, z_q, nu: vq.sync_straight_through(z_e, z_q, nu)),
    ("expected_identity_coarse_grad", lambda *args: yin2019.expected_coarse_grad(*args, "identity")),
    ("expected_relu_coarse_grad", lambda *args: yin2019.expected_coarse_grad(*args, "relu")),
    ("fsq_bound", lambda z, levels: STORED["bound"](z, levels)),
    ("fsq_quantize", lambda z, levels: fsq.quantize(z, levels)),
    ("straight_through", ste.straight_through),
    ("binary_step", lambda x: ste.binary_step(x, "relu")),
    (
        "ema_update",
        lambda n, m, z, i, d, e: (lambda s, c: (s["counts"], s["sums"], c))(
            *vq.ema_update({"counts": n, "sums": m}, z, i, d, e)
        ),
    ),
    (
        "rotation_vjp",
        lambda g, z_e, z_q: __import__("autograd").grad(lambda e: ops.sum(ops.multiply(vq.rotation_trick(e, z_q), g)))(
            z_e
        ),
    ),
]


@pytest.mark.parametrize("name, cheat", CALLS_STEVQ, ids=[f"{c[0]}-{i}" for i, c in enumerate(CALLS_STEVQ)])
def test_calling_stevqs_own_implementation_scores_zero(name, cheat):
    report = grading.GRADERS[name](cheat)
    assert not report.passed, f"{name}: a call of stevq's implementation passed"
    assert "stevq's own implementation" in str(report) and "scores zero" in str(report), str(report)


def test_the_guard_survives_except_and_restores_the_function():
    def swallowing(z, i, c):
        try:
            return vq.codebook_grad(z, i, c.shape[0], c)
        except BaseException:
            return solutions.codebook_grad(z, i, c)

    report = grading.check_codebook_grad(swallowing)
    assert not report.passed and "stevq.vq.core.codebook_grad" in str(report), str(report)
    rng = np.random.default_rng(0)  # and the real function works again afterwards
    z, c = rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    assert vq.codebook_grad(z, np.array([0, 1, 1, 0]), 3, c).shape == (3, 2)


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
