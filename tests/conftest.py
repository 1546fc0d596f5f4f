"""Shared fixtures: run a test on every backend (NumPy, the strict array-API namespace and CuPy).

Without a GPU, CuPy is the test double in tests/fake_cupy (CuPy's host/device rules on the CPU,
counting every device-to-host transfer); on a machine where the real CuPy imports, the real one.
"""

import os
import pathlib
import subprocess
import sys

# The tests multiply small matrices and execute notebooks two kernels at a time on two cores:
# extra BLAS threads only fight over the cores (seen: 10-30x slower). Set before NumPy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

FAKE_CUPY = pathlib.Path(__file__).parent / "fake_cupy"
try:
    import cupy  # (the real CuPy, on a GPU machine)
except ImportError:
    sys.path.insert(0, str(FAKE_CUPY))
    import cupy
CUPY_IS_DOUBLE = hasattr(cupy, "transfers")  # the double counts its transfers; CuPy has no such thing

import stevq  # noqa: E402

BACKENDS = ("numpy", "array_api_strict", "cupy")


def cupy_env(env=None):
    """``env`` (default os.environ) with the CuPy double on PYTHONPATH for a child process
    (unchanged where the real CuPy is used)."""
    env = dict(os.environ if env is None else env)
    if CUPY_IS_DOUBLE:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(FAKE_CUPY), env.get("PYTHONPATH")) if p)
    return env


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test once per backend, with that backend active; yields its name. CuPy runs in
    float64 here (its default is float32), so that every backend is held to the same tolerances."""
    with stevq.use(request.param, dtype="float64"):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def course_build(tmp_path_factory):
    """Every assignment built once per session by ``course.py build``: (the output folder, the
    command's output). test_course, test_course_deploy and test_course_cheats read it, none writes it."""
    pytest.importorskip("otter", reason="otter-grader (the course extra) is not installed")
    from support import stevq_process

    out = tmp_path_factory.mktemp("course-build") / "dist"
    course = pathlib.Path(__file__).resolve().parent.parent / "lectures" / "assignments" / "course.py"
    result = subprocess.run(
        [sys.executable, str(course), "build", "--out", str(out)],
        capture_output=True,
        text=True,
        env=stevq_process.environment(),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


def pytest_collection_modifyitems(items):
    """A full-mode test is slow too, so that ``-m "not slow"`` (the quick loop) leaves it out."""
    for item in items:
        if item.get_closest_marker("full"):
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter):
    """The device-to-host transfers per training step that tests/test_sync_budget.py measured."""
    measured = getattr(sys.modules.get("test_sync_budget"), "REPORTED", None)
    if measured:
        terminalreporter.write_sep("-", "device-to-host transfers per training step (CuPy double)")
        for where, per_step in sorted(measured.items()):
            terminalreporter.write_line(f"{per_step:6.2f}  {where}" if per_step is not None else f"   n/a  {where}")
