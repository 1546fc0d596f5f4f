"""Execute the lecture notebooks in place, so that their stored outputs match the code.

    python lectures/build.py                 # every notebook, full mode
    python lectures/build.py --quick         # every notebook, quick mode (STEVQ_QUICK=1)
    python lectures/build.py 01_*.ipynb      # only the notebooks named (paths or globs under lectures/)

Each notebook runs top to bottom in a fresh ``python3`` kernel whose working directory is the
notebook's folder. The kernel sees ``STEVQ_QUICK`` ("1" in quick mode, "0" otherwise), which the
notebooks read to shrink their runs, and the repository root on ``PYTHONPATH`` so that ``import
stevq`` finds this checkout even without ``pip install -e .``.

The executed notebook records which mode produced its outputs (in its metadata and in a last line of
its first cell) and a SHA-256 of its code cells; ``tests/test_lectures.py`` recomputes that hash, so a code cell edited after the last
build (outputs no longer matching the code) fails the tests until this script is run again.

It also records the numbers each code cell prints in quick mode on the data sample inside stevq (what
CI runs), timings left out: ``quick_numbers`` in the metadata. ``tests/test_lectures.py`` reruns every
lecture in quick mode and compares what it prints with them, to the printed digit, so a change to
stevq that alters what a lecture computes fails the tests until the lecture is built again (a full
build stores full-mode outputs and runs quick mode once more for these numbers).

    python lectures/build.py --numbers-only  # refresh quick_numbers only, keeping the stored outputs

Each lecture ends with exercises; their solutions are markdown cells tagged ``solution``. For a course
that hands the lectures out without them:

    python lectures/build.py --without-solutions DIR   # copies of the lectures, solution cells removed
"""

import argparse
import contextlib
import hashlib
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

LECTURES = Path(__file__).resolve().parent
REPOSITORY = LECTURES.parent
PATTERNS = ("*.ipynb",)  # the assignments are built by assignments/course.py (Otter-Grader), without outputs
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def notebooks(root=LECTURES):
    """Every lecture notebook under ``root``, in name order."""
    found = []
    for pattern in PATTERNS:
        found += sorted(path for path in Path(root).glob(pattern) if ".ipynb_checkpoints" not in path.parts)
    return found


def code_hash(notebook):
    """SHA-256 of the code cells' sources: what the stored outputs were computed from."""
    digest = hashlib.sha256()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode("utf-8") + b"\0")
    return digest.hexdigest()


def kernel_environment(quick):
    """The kernel's environment: the quick-mode switch, this checkout importable, inline figures,
    one BLAS thread.

    MPLBACKEND is forced to the inline backend because a caller's ``MPLBACKEND=Agg`` (as in CI)
    would otherwise reach the kernel and no figure would be stored in the notebook. The lectures'
    matrices are small, and on a busy two-core machine OpenBLAS threads spinning against each other
    made a float32 training step ten times slower than one thread does; a caller's own
    OPENBLAS_NUM_THREADS is kept."""
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["STEVQ_QUICK"] = "1" if quick else "0"
    env["MPLBACKEND"] = INLINE_BACKEND
    env["PYTHONPATH"] = os.pathsep.join([str(REPOSITORY)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.pop("STEVQ_BACKEND", None)  # lectures choose their backend explicitly
    return env


@contextlib.contextmanager
def sample_data_only():
    """Kernels started inside see no Fashion-MNIST files (an empty ``STEVQ_DATA``, ``STEVQ_NO_SYSTEM_DATA``
    set), so the lectures run on the real sample inside stevq, as on a machine without the data (CI's
    quick runs and the numbers stored for them)."""
    with tempfile.TemporaryDirectory(prefix="stevq-empty-cache-") as empty:
        with mock.patch.dict(os.environ, {"STEVQ_DATA": empty, "STEVQ_NO_SYSTEM_DATA": "1"}):
            yield


# A number as printed: 3, -0.25, 1.4e+00, 92.3% (not the digits inside a name such as float32 or A3).
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?%?")
# A timing: the number is followed by a unit of time; it differs from run to run, so it is left out.
TIMING = re.compile(r"\s*(?:s|ms|us|seconds?|min|minutes?|it/s|s/it)\b")


def printed_numbers(notebook):
    """The numbers each code cell printed, as printed (strings), one list per code cell: standard
    output and the text of results; not standard error (warnings, progress bars), not the text that
    stands in for a figure, not timings."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        texts = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                texts.append(out.get("text", ""))
            elif "text/plain" in out.get("data", {}) and "image/png" not in out.get("data", {}):
                texts.append(out["data"]["text/plain"])
        text = "".join(texts)
        found.append([match.group() for match in NUMBER.finditer(text) if not TIMING.match(text, match.end())])
    return found


def quick_numbers(path, timeout=300):
    """``printed_numbers`` of a fresh quick-mode run of the notebook at ``path``, on the sample data,
    as stored: one line per code cell, the numbers separated by spaces."""
    with sample_data_only():
        return [" ".join(numbers) for numbers in printed_numbers(execute(path, quick=True, timeout=timeout))]


SOLUTION_TAG = "solution"


def without_solutions(notebook):
    """A copy of ``notebook`` without its cells tagged ``solution`` (the exercises' solutions)."""
    copy = nbformat.from_dict(notebook)
    copy.cells = [cell for cell in copy.cells if SOLUTION_TAG not in cell.get("metadata", {}).get("tags", [])]
    return copy


class NotebookError(RuntimeError):
    """A cell raised: the message names the notebook, the cell number and the error."""


def execute(path, quick=True, timeout=300):
    """Run the notebook at ``path`` top to bottom; return the executed notebook (not written).

    ``timeout`` is per cell, in seconds. Raises NotebookError naming the failing cell."""
    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute(env=kernel_environment(quick))
    except CellExecutionError as error:
        failing = next(
            (
                i
                for i, cell in enumerate(notebook.cells)
                if any(out.get("output_type") == "error" for out in cell.get("outputs", []))
            ),
            None,
        )
        where = f"cell {failing}" if failing is not None else "a cell"
        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # drop the traceback's terminal colours
        raise NotebookError(f"{path.name}: {where} failed:\n{plain}") from None
    notebook.metadata["stevq"] = {"mode": "quick" if quick else "full", "code_sha256": code_hash(notebook)}
    return notebook


STAMP = "*Stored outputs:"


def stamp_first_cell(notebook):
    """End the first (markdown) cell with a line saying which mode produced the stored outputs,
    replacing the line of an earlier build."""
    mode = notebook.metadata["stevq"]["mode"]
    command = "python lectures/build.py" + (" --quick" if mode == "quick" else "")
    first = notebook.cells[0]
    lines = [line for line in first.source.rstrip().split("\n") if not line.startswith(STAMP)]
    while lines and not lines[-1].strip():
        lines.pop()
    first.source = "\n".join(lines + ["", f"{STAMP} {mode} mode (`{command}`, STEVQ_QUICK={int(mode == 'quick')}).*"])
    return notebook


def build(path, quick=False, timeout=1800):
    """Execute ``path`` and write it back with its outputs and its quick-mode numbers; return the
    seconds it took."""
    start = time.perf_counter()
    notebook = stamp_first_cell(execute(path, quick=quick, timeout=timeout))
    notebook.metadata["stevq"]["quick_numbers"] = quick_numbers(path)
    nbformat.write(notebook, str(path))
    return time.perf_counter() - start


def refresh_numbers(path):
    """Store a fresh quick run's numbers in ``path``, keeping its outputs; refused when the code cells
    changed since the outputs were stored (build it instead). Returns the seconds it took."""
    start = time.perf_counter()
    notebook = nbformat.read(path, as_version=4)
    if notebook.metadata.get("stevq", {}).get("code_sha256") != code_hash(notebook):
        raise NotebookError(
            f"{Path(path).name}: code changed since its outputs were stored; "
            f"build it (python lectures/build.py {Path(path).name})"
        )
    notebook.metadata["stevq"]["quick_numbers"] = quick_numbers(path)
    nbformat.write(notebook, str(path))
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks (paths or globs relative to lectures/); default all")
    parser.add_argument("--quick", action="store_true", help="quick mode (STEVQ_QUICK=1)")
    parser.add_argument(
        "--numbers-only", action="store_true", help="only refresh the stored quick-mode numbers, keeping the outputs"
    )
    parser.add_argument(
        "--without-solutions",
        metavar="DIR",
        help="write copies of the lectures without their solution cells into DIR (nothing is run)",
    )
    args = parser.parse_args(argv)
    paths = notebooks()
    if args.names:
        chosen = set()
        for name in args.names:
            matches = [p for p in paths if p.match(name) or p.resolve() == Path(name).resolve()]
            if not matches:
                parser.error(f"no notebook matches {name!r}")
            chosen.update(matches)
        paths = [p for p in paths if p in chosen]
    if args.without_solutions:
        folder = Path(args.without_solutions)
        if folder.exists() and not folder.is_dir():
            parser.error(f"--without-solutions: {folder} is not a directory")
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            nbformat.write(without_solutions(nbformat.read(path, as_version=4)), str(folder / path.name))
            print(f"{folder / path.name}: without solutions")
        return 0
    for path in paths:
        try:
            seconds = refresh_numbers(path) if args.numbers_only else build(path, quick=args.quick)
        except NotebookError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        size = path.stat().st_size / 1024
        print(f"{path.relative_to(LECTURES)}: {seconds:.1f} s, {size:.0f} KB", flush=True)


if __name__ == "__main__":
    sys.exit(main())
