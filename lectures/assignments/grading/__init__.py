"""Graders for the course assignments in lectures/assignments/.

Each ``check_*`` function takes the student's function, runs it on random inputs (``seed`` picks
them), compares it with stevq's reference and returns a ``Report`` that says PASSED, or what is
wrong and how to fix it. A submission that calls the stevq function it was asked to write fails
with a message saying so (``guard``).

    check_lookup_vjp(lookup_vjp)                         # A1: one_hot(indices)^T @ g
    check_codebook_grad(codebook_grad)                   # A1: 2/(N D) one_hot(q)^T (C[q] - Z)
    check_straight_through_output(straight_through_output)   # A2: the plain VQ STE output
    check_sync_straight_through(sync_straight_through)   # A2: Huh et al.'s synchronised update
    check_expected_identity_coarse_grad(expected_identity_coarse_grad)   # A3: Yin et al., identity STE
    check_expected_relu_coarse_grad(expected_relu_coarse_grad)   # A3: Yin et al., ReLU STE
    check_fsq_bound(fsq_bound)                           # A4: Mentzer et al.'s bound
    check_fsq_quantize(fsq_quantize)                     # A4: round_ste(bound) / floor(L/2)
    check_straight_through(straight_through)             # A5: the STE as an autograd primitive
    check_binary_step(binary_step)                       # A5: the ReLU STE through it
    check_cluster_stats(cluster_stats)                   # A6: n_k and s_k of a batch
    check_ema_update(ema_update)                         # A6: one EMA codebook step
    check_rotation_vjp(rotation_vjp)                     # A7: (||q||/||e||) R^T g
    check_rotation_trick(rotation_trick)                 # A7: the rule as a primitive

The reference solutions are instructor material: they live in the master notebooks of
lectures/assignments/master/, not in this package. This package is course material, not part of the
installed stevq: it sits beside the assignment notebooks (lectures/assignments/grading/) and inside
every autograder zip, with the expected values recorded at build time (``record``).

    check_part("lookup_vjp", lookup_vjp, hidden=False)   # an Otter test: the public (or hidden) seeds
"""

from . import record
from .engine_exercises import (
    check_binary_step,
    check_cluster_stats,
    check_ema_update,
    check_rotation_trick,
    check_rotation_vjp,
    check_straight_through,
)
from .exercises import check_codebook_grad, check_lookup_vjp, check_straight_through_output, check_sync_straight_through
from .formula_exercises import (
    check_expected_identity_coarse_grad,
    check_expected_relu_coarse_grad,
    check_fsq_bound,
    check_fsq_quantize,
)
from .report import Report

GRADERS = {
    "lookup_vjp": check_lookup_vjp,
    "codebook_grad": check_codebook_grad,
    "straight_through_output": check_straight_through_output,
    "sync_straight_through": check_sync_straight_through,
    "expected_identity_coarse_grad": check_expected_identity_coarse_grad,
    "expected_relu_coarse_grad": check_expected_relu_coarse_grad,
    "fsq_bound": check_fsq_bound,
    "fsq_quantize": check_fsq_quantize,
    "straight_through": check_straight_through,
    "binary_step": check_binary_step,
    "cluster_stats": check_cluster_stats,
    "ema_update": check_ema_update,
    "rotation_vjp": check_rotation_vjp,
    "rotation_trick": check_rotation_trick,
}

SEEDS = {False: (0,), True: (1, 2, 3)}  # the public check's seed, the hidden checks' seeds


def check_part(part, function, hidden=False):
    """Otter's test of ``part``: its grader on every public (or hidden) seed; AssertionError with the
    grader's explanation at the first seed that fails."""
    for seed in SEEDS[hidden]:
        GRADERS[part](function, seed=seed).raise_if_failed()


def _harden_kernel():
    """In an IPython kernel, make ``exit()``/``quit()`` raise SystemExit, which IPython reports as
    the cell's error, instead of shutting the kernel down (which would cost every later part)."""
    try:
        shell = get_ipython()  # noqa: F821  (defined inside IPython only)
    except NameError:
        return

    def leave(*args):
        raise SystemExit(*args)

    shell.user_ns["exit"] = shell.user_ns["quit"] = leave


if record.FIXTURES.is_file():
    record.load_fixtures()
_harden_kernel()
