"""Shared fixtures: run a test on every backend (NumPy, the strict array-API namespace and CuPy).

Without a GPU, CuPy is the test double in tests/fake_cupy (CuPy's host/device rules on the CPU,
counting every device-to-host transfer); on a machine where the real CuPy imports, the real one.
"""

import os
import pathlib
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
    result = stevq_process.course("build", "--out", out)
    return out, result


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups into the test ids
def pytest_collection_modifyitems(config, items):
    """A full-mode test is slow too, so that ``-m "not slow"`` (the quick loop) leaves it out. Under
    pytest-xdist (``--dist loadgroup``) a module's tests run in one worker, so that its module-scoped
    runs happen once; the course modules in one, as they share the session's course build."""
    grouped = config.pluginmanager.hasplugin("xdist")  # not under -p no:xdist (benchmarks/gpu_check.sh)
    for item in items:
        if item.get_closest_marker("full"):
            item.add_marker(pytest.mark.slow)
        if not grouped:
            continue
        module = item.module.__name__.rpartition(".")[2]
        item.add_marker(pytest.mark.xdist_group("course" if module.startswith("test_course") else module))


TRANSFERS = "device-to-host transfers per training step: "
_transfers = {}


@pytest.fixture
def report_transfers(record_property):
    """report_transfers(where, per_step): a measured number of device-to-host transfers per step,
    printed at the end of the run (as a test property, so that it reaches the summary from an xdist
    worker too)."""
    return lambda where, per_step: record_property(TRANSFERS + where, per_step)


def pytest_runtest_logreport(report):
    for name, value in getattr(report, "user_properties", ()):
        if isinstance(name, str) and name.startswith(TRANSFERS):
            _transfers[name[len(TRANSFERS) :]] = value


def pytest_terminal_summary(terminalreporter):
    """The device-to-host transfers per training step that tests/test_sync_budget.py measured."""
    if _transfers:
        terminalreporter.write_sep("-", "device-to-host transfers per training step (CuPy double)")
        for where, per_step in sorted(_transfers.items()):
            terminalreporter.write_line(f"{per_step:6.2f}  {where}" if per_step is not None else f"   n/a  {where}")
