"""Graders for the course assignments in lectures/assignments/.

Each ``check_*`` function takes the student's function, runs it on random inputs, compares it with
stevq's reference and returns a ``Report`` that says PASSED, or what is wrong and how to fix it:

    check_lookup_vjp(lookup_vjp)                         # one_hot(indices)^T @ g
    check_codebook_grad(codebook_grad)                   # 2/(N D) one_hot(q)^T (C[q] - Z)
    check_sync_straight_through(sync_straight_through)   # Huh et al.'s synchronised update
    check_expected_relu_coarse_grad(expected_relu_coarse_grad)   # Yin et al.'s closed form
    check_fsq_bound(fsq_bound)                           # Mentzer et al.'s bound

``stevq.grading.solutions`` holds reference solutions for instructors (and the tests).
"""
from . import solutions
from .exercises import (check_codebook_grad, check_expected_relu_coarse_grad, check_fsq_bound,
                        check_lookup_vjp, check_sync_straight_through)
from .report import Report

GRADERS = {
    "lookup_vjp": check_lookup_vjp,
    "codebook_grad": check_codebook_grad,
    "sync_straight_through": check_sync_straight_through,
    "expected_relu_coarse_grad": check_expected_relu_coarse_grad,
    "fsq_bound": check_fsq_bound,
}
