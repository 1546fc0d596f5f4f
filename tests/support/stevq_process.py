"""``python -m stevq`` in a fresh process, as a user runs it from this checkout.

The child sees this checkout's stevq first on PYTHONPATH, draws with matplotlib's Agg backend (no
display) and runs one BLAS/OpenMP thread: the matrices are small, and on a busy two-core machine the
threads of OpenBLAS only wait for each other (ten times slower).
"""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def environment(*paths, **variables):
    """This process's environment for a child: this checkout, then ``paths``, in front of PYTHONPATH;
    Agg and one thread as above (unless the machine sets its threads); then ``variables``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *map(str, paths), *filter(None, [env.get("PYTHONPATH")])])
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")  # where the machine sets its own, it stays
    env["MPLBACKEND"] = "Agg"
    env.update(variables)
    return env


def command(*arguments):
    """The command line ``python -m stevq ARGUMENTS`` with this interpreter."""
    return [sys.executable, "-m", "stevq", *map(str, arguments)]


def run(*arguments, cwd=ROOT, timeout=300, env=None):
    """Run ``python -m stevq ARGUMENTS`` (in ``environment()`` unless ``env`` is given) and wait for it;
    returns the CompletedProcess, its output captured as text."""
    env = environment() if env is None else env
    return subprocess.run(command(*arguments), capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


COURSE = ROOT / "lectures" / "assignments" / "course.py"


def course(*arguments, check=True, **variables):
    """Run ``python lectures/assignments/course.py ARGUMENTS`` in ``environment(**variables)``; returns
    the CompletedProcess (text); with ``check``, asserts that it succeeded, showing its output."""
    command = [sys.executable, str(COURSE), *map(str, arguments)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment(**variables))
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result
