"""The cases of the ``stevq.ops`` gradient tests (test_ops*.py): a stevq function, the same function
written with ``autograd.numpy`` (the oracle) and a maker of its host arguments, under a test id."""

import pytest


def normal(rng, *shape):
    """Standard normal host data of ``shape``."""
    return rng.standard_normal(shape)


def case(name, op, reference, make_args):
    """One parametrized case: ``make_args(rng)`` gives the host arguments of ``op`` and ``reference``."""
    return pytest.param(op, reference, make_args, id=name)
