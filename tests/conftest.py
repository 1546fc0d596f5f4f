"""Shared fixtures: run a test on every CPU backend (NumPy and the strict array-API namespace)."""
import numpy as np
import pytest

import stevq

CPU_BACKENDS = ("numpy", "array_api_strict")


@pytest.fixture(params=CPU_BACKENDS)
def backend(request):
    """Run the test once per CPU backend, with that backend active; yields its name."""
    with stevq.use(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)
