"""Shared fixtures: run a test on every CPU backend (NumPy and the strict array-API namespace)."""
import os

# The tests multiply small matrices and execute notebooks two kernels at a time on two cores:
# extra BLAS threads only fight over the cores (seen: 10-30x slower). Set before NumPy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import stevq  # noqa: E402

CPU_BACKENDS = ("numpy", "array_api_strict")


@pytest.fixture(params=CPU_BACKENDS)
def backend(request):
    """Run the test once per CPU backend, with that backend active; yields its name."""
    with stevq.use(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)
