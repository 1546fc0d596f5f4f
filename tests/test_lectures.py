"""The lecture notebooks: each runs top to bottom in quick mode without an error, and the copies in
the repository carry outputs (figures included) computed from their current code. (The assignments
are Otter-Grader notebooks, built and graded in tests/test_course.py.)

The notebooks run in separate kernels, two at a time (one per core of the CI machine), once per test
session; the parametrised tests then look at the results.
"""
import concurrent.futures
import importlib.util
import os
from pathlib import Path

import nbformat
import pytest

LECTURES = Path(__file__).resolve().parent.parent / "lectures"
_spec = importlib.util.spec_from_file_location("lectures_build", LECTURES / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

NOTEBOOKS = build.notebooks(LECTURES)
LECTURE_NOTEBOOKS = [p for p in NOTEBOOKS if p.parent == LECTURES]
CELL_TIMEOUT = 120  # seconds per cell in quick mode; a lecture must finish in under two minutes
MAX_KILOBYTES = 500
WORKERS = max(1, min(2, os.cpu_count() or 1))


def _id(path):
    return str(path.relative_to(LECTURES))


def _images(notebook):
    return sum("image/png" in out.get("data", {}) for cell in notebook.cells if cell.cell_type == "code"
               for out in cell.outputs)


def _run(path):
    try:
        return build.execute(path, quick=True, timeout=CELL_TIMEOUT)
    except build.NotebookError as error:
        return error


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """{("as is", path): executed notebook or NotebookError}, every notebook in quick mode,
    on a machine without Fashion-MNIST files as far as the kernels can tell (an empty STEVQ_DATA,
    STEVQ_NO_SYSTEM_DATA set): the lectures run on the sample inside the package, as anywhere."""
    jobs = {("as is", path): path for path in NOTEBOOKS}
    with pytest.MonkeyPatch.context() as patch:  # the kernels inherit this environment
        patch.setenv("STEVQ_DATA", str(tmp_path_factory.mktemp("empty-cache")))
        patch.setenv("STEVQ_NO_SYSTEM_DATA", "1")
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            futures = {key: pool.submit(_run, source) for key, source in jobs.items()}
            return {key: future.result() for key, future in futures.items()}


def _executed(quick_runs, key):
    result = quick_runs[key]
    if isinstance(result, build.NotebookError):
        pytest.fail(str(result), pytrace=False)
    return result


def test_the_course_is_complete():
    assert len(LECTURE_NOTEBOOKS) >= 8, [p.name for p in LECTURE_NOTEBOOKS]
    assert len(list((LECTURES / "assignments" / "master").glob("A*.ipynb"))) >= 7


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_notebook_runs_in_quick_mode(path, quick_runs):
    executed = _executed(quick_runs, ("as is", path))
    assert executed.cells[0].cell_type == "markdown"
    if path in LECTURE_NOTEBOOKS:
        assert _images(executed) >= 1, f"{path.name}: a lecture must draw at least one figure"


@pytest.mark.parametrize("path", [p for p in LECTURE_NOTEBOOKS if "load_fashion_mnist(" in p.read_text()], ids=_id)
def test_lectures_on_fashion_mnist_ran_on_the_sample_inside_the_package(path, quick_runs):
    executed = _executed(quick_runs, ("as is", path))
    streams = [out.get("text", "") for cell in executed.cells if cell.cell_type == "code" for out in cell.outputs
               if out.get("output_type") == "stream"]
    assert any("note: Fashion-MNIST files not found; using the real sample inside stevq" in text for text in streams)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_stored_outputs_match_the_code(path):
    notebook = nbformat.read(path, as_version=4)
    stamp = notebook.metadata.get("stevq", {})
    assert stamp.get("mode") in ("quick", "full"), f"{path.name}: never built; run python lectures/build.py"
    assert notebook.cells[0].source.rstrip().endswith(f"{build.STAMP} {stamp['mode']} mode (`python lectures/build.py"
                                                      f"{' --quick' if stamp['mode'] == 'quick' else ''}`, "
                                                      f"STEVQ_QUICK={int(stamp['mode'] == 'quick')}).*"), (
        f"{path.name}: the first cell must say which mode produced the stored outputs")
    assert stamp.get("code_sha256") == build.code_hash(notebook), (
        f"{path.name}: code changed since its outputs were stored; run python lectures/build.py {path.name}")
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code_cells]
    assert counts == list(range(1, len(code_cells) + 1)), f"{path.name}: not executed top to bottom: {counts}"
    errors = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
              and any(out.output_type == "error" for out in cell.outputs)]
    assert not errors, f"{path.name}: stored error output in cells {errors}"
    if path in LECTURE_NOTEBOOKS:
        assert _images(notebook) >= 1, f"{path.name}: no stored figure"
    assert path.stat().st_size <= MAX_KILOBYTES * 1024, f"{path.name}: {path.stat().st_size // 1024} KB"


def test_the_mode_stamp_replaces_the_previous_one():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title\n\nText.")])
    for mode in ("quick", "full"):
        notebook.metadata["stevq"] = {"mode": mode}
        build.stamp_first_cell(notebook)
    assert notebook.cells[0].source == f"# Title\n\nText.\n\n{build.STAMP} full mode (`python lectures/build.py`, STEVQ_QUICK=0).*"
