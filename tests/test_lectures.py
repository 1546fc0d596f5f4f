"""The lecture notebooks: each runs top to bottom in quick mode without an error, and the copies in
the repository carry outputs (figures included) computed from their current code. (The assignments
are Otter-Grader notebooks, built and graded in tests/test_course.py.)

The notebooks run in separate kernels, two at a time (one per core of the CI machine), once per test
session; the parametrised tests then look at the results.
"""

import concurrent.futures
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest
from support import cores

pytestmark = pytest.mark.slow  # notebooks, the course kit, benchmarks, subprocesses: not in the quick loop

LECTURES = Path(__file__).resolve().parent.parent / "lectures"
_spec = importlib.util.spec_from_file_location("lectures_build", LECTURES / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

NOTEBOOKS = build.notebooks(LECTURES)
LECTURE_NOTEBOOKS = [p for p in NOTEBOOKS if p.parent == LECTURES]
CELL_TIMEOUT = 120  # seconds per cell in quick mode; a lecture must finish in under two minutes
MAX_KILOBYTES = 500
WORKERS = cores.share(at_most=2)  # notebooks executed at once


def _id(path):
    return str(path.relative_to(LECTURES))


def _images(notebook):
    return sum(
        "image/png" in out.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )


def _run(path):
    try:
        return build.execute(path, quick=True, timeout=CELL_TIMEOUT)
    except build.NotebookError as error:
        return error


@pytest.fixture(scope="module")
def quick_runs():
    """{("as is", path): executed notebook or NotebookError}, every notebook in quick mode,
    on a machine without Fashion-MNIST files as far as the kernels can tell (build.sample_data_only):
    the lectures run on the sample inside the package, as anywhere."""
    jobs = {("as is", path): path for path in NOTEBOOKS}
    with build.sample_data_only():  # the kernels inherit this environment
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
    streams = [
        out.get("text", "")
        for cell in executed.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.get("output_type") == "stream"
    ]
    assert any("note: Fashion-MNIST files not found; using the real sample inside stevq" in text for text in streams)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_id)
def test_stored_outputs_match_the_code(path):
    notebook = nbformat.read(path, as_version=4)
    stamp = notebook.metadata.get("stevq", {})
    assert stamp.get("mode") in ("quick", "full"), f"{path.name}: never built; run python lectures/build.py"
    assert (
        notebook.cells[0]
        .source.rstrip()
        .endswith(
            f"{build.STAMP} {stamp['mode']} mode (`python lectures/build.py"
            f"{' --quick' if stamp['mode'] == 'quick' else ''}`, "
            f"STEVQ_QUICK={int(stamp['mode'] == 'quick')}).*"
        )
    ), f"{path.name}: the first cell must say which mode produced the stored outputs"
    assert stamp.get("code_sha256") == build.code_hash(notebook), (
        f"{path.name}: code changed since its outputs were stored; run python lectures/build.py {path.name}"
    )
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code_cells]
    assert counts == list(range(1, len(code_cells) + 1)), f"{path.name}: not executed top to bottom: {counts}"
    errors = [
        i
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and any(out.output_type == "error" for out in cell.outputs)
    ]
    assert not errors, f"{path.name}: stored error output in cells {errors}"
    if path in LECTURE_NOTEBOOKS:
        assert _images(notebook) >= 1, f"{path.name}: no stored figure"
    assert path.stat().st_size <= MAX_KILOBYTES * 1024, f"{path.name}: {path.stat().st_size // 1024} KB"


@pytest.mark.parametrize("path", LECTURE_NOTEBOOKS, ids=_id)
def test_a_fresh_quick_run_prints_the_stored_numbers(path, quick_runs):
    """What a lecture computes has not changed since it was built: a fresh quick run prints, cell by
    cell, the numbers stored at build time (to the printed digit, timings left out)."""
    notebook = nbformat.read(path, as_version=4)
    stored = notebook.metadata.get("stevq", {}).get("quick_numbers")
    assert stored is not None, f"{path.name}: no quick-mode numbers stored; run python lectures/build.py {path.name}"
    stored = [line.split() for line in stored]
    fresh = build.printed_numbers(_executed(quick_runs, ("as is", path)))
    assert len(fresh) == len(stored), f"{path.name}: {len(fresh)} code cells, numbers stored for {len(stored)}"
    code_cells = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    for index, now, then in zip(code_cells, fresh, stored):
        differ = next(
            (k for k in range(max(len(now), len(then))) if k >= len(now) or k >= len(then) or now[k] != then[k]), None
        )
        assert differ is None, (
            f"{path.name}, cell {index}: number {differ + 1} printed is "
            f"{now[differ] if differ < len(now) else 'missing'}, stored "
            f"{then[differ] if differ < len(then) else 'missing'} (printed {now}, stored {then}); "
            f"stevq's results changed since the lecture was built: run python lectures/build.py {path.name}"
        )


@pytest.mark.full
@pytest.mark.parametrize("path", LECTURE_NOTEBOOKS, ids=_id)
def test_stored_outputs_equal_a_fresh_run_in_their_mode(path):
    """The outputs users read were computed by the current stevq: a fresh run in the stored mode
    (full for the committed lectures, on the machine's data as build.py uses it) prints the same
    numbers, cell by cell. Minutes per lecture: pytest -m full tests/test_lectures.py."""
    notebook = nbformat.read(path, as_version=4)
    quick = notebook.metadata.get("stevq", {}).get("mode") == "quick"
    fresh = build.printed_numbers(build.execute(path, quick=quick, timeout=1800))
    stored = build.printed_numbers(notebook)
    code_cells = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    differ = [(index, then, now) for index, now, then in zip(code_cells, fresh, stored) if now != then]
    assert not differ, f"{path.name}: stored outputs differ from a fresh run (cell, stored, fresh): {differ}"


# In prose, a quoted result: a decimal number or a percentage, outside $math$ and `code`.
QUOTED = re.compile(r"(?<![\w.])(?:\d+\.\d+|\.\d+)(?:[eE][-+]?\d+)?(?:\s?%)?|(?<![\w.])\d+\s?%")
NOT_PROSE = re.compile(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`", re.S)


def _rounds_to(quoted, values):
    """Whether some value, rounded to the digits ``quoted`` shows, is ``quoted`` (a percentage may
    quote a fraction times 100; a sign may be left out)."""
    text = quoted.replace(" ", "")
    percent, text = text.endswith("%"), text.rstrip("%")
    mantissa, _, exponent = text.lower().partition("e")
    digits = len(mantissa.partition(".")[2])
    half_unit = 0.5 * 10.0 ** (int(exponent or 0) - digits) * (1 + 1e-9)
    scales = (1.0, 100.0) if percent else (1.0,)
    return any(abs(abs(value) * scale - float(text)) <= half_unit for value in values for scale in scales)


def unsupported_quotes(notebook):
    """(cell, number) for every number the prose quotes that is neither printed in a stored output (up
    to the rounding the prose shows), nor a setting written in a code cell, nor listed with its source
    in the notebook's metadata ``quoted_from_elsewhere`` (a paper's numbers, say)."""
    values = [float(n.rstrip("%")) for cell in build.printed_numbers(notebook) for n in cell]
    values += [
        float(m.group().rstrip("%"))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for m in build.NUMBER.finditer(cell.source)
    ]
    elsewhere = notebook.metadata.get("quoted_from_elsewhere", {})
    return [
        (index, m.group())
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "markdown"
        for m in QUOTED.finditer(NOT_PROSE.sub(" ", cell.source))
        if m.group() not in elsewhere and not _rounds_to(m.group(), values)
    ]


@pytest.mark.parametrize("path", LECTURE_NOTEBOOKS, ids=_id)
def test_the_prose_quotes_only_numbers_the_outputs_show(path):
    notebook = nbformat.read(path, as_version=4)
    missing = unsupported_quotes(notebook)
    assert not missing, (
        f"{path.name}: the text quotes numbers no stored output shows (cell, number): {missing}; "
        "print them, or name their source in the metadata's quoted_from_elsewhere"
    )
    for quoted, source in notebook.metadata.get("quoted_from_elsewhere", {}).items():
        assert quoted in "".join(c.source for c in notebook.cells if c.cell_type == "markdown") and source, quoted


def test_a_quote_no_output_shows_is_found():
    cell = nbformat.v4.new_code_cell("train(lr=0.03)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="accuracy 0.8741, loss 1.4e-03\n")]
    text = nbformat.v4.new_markdown_cell("87.4 % and 87 % at lr 0.03, loss 1.4e-3; $0.25$, `0.5`; 87.5 %, 0.01, 91%")
    notebook = nbformat.v4.new_notebook(cells=[cell, text])
    assert unsupported_quotes(notebook) == [(1, "87.5 %"), (1, "0.01"), (1, "91%")]
    notebook.metadata["quoted_from_elsewhere"] = {"91%": "a paper"}
    assert unsupported_quotes(notebook) == [(1, "87.5 %"), (1, "0.01")]


@pytest.mark.parametrize("path", LECTURE_NOTEBOOKS, ids=_id)
def test_three_exercises_or_more_with_solutions_a_course_can_remove(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    exercises = [c.source for c in notebook.cells if c.cell_type == "markdown" and "**Exercises.**" in c.source]
    assert exercises and "(3)" in exercises[-1], f"{path.name}: fewer than three numbered exercises"
    solutions = [c for c in notebook.cells if build.SOLUTION_TAG in c.get("metadata", {}).get("tags", [])]
    assert solutions and all("(3)" in c.source for c in solutions), (
        f"{path.name}: the exercises need a solution cell tagged {build.SOLUTION_TAG!r} answering each"
    )
    assert build.main([str(path), "--without-solutions", str(tmp_path)]) == 0
    student = nbformat.read(tmp_path / path.name, as_version=4)
    assert len(student.cells) == len(notebook.cells) - len(solutions)
    assert not any("*Solutions" in c.source for c in student.cells), path.name


def test_every_assignment_is_linked_from_a_lecture():
    text = "".join(path.read_text() for path in LECTURE_NOTEBOOKS)
    for master in sorted((LECTURES / "assignments" / "master").glob("A*.ipynb")):
        assert f"assignments/{master.name}" in text, f"{master.name} is not linked from any lecture"


def test_printed_numbers_keep_digits_and_leave_out_timings():
    cell = nbformat.v4.new_code_cell("print(...)")
    cell.outputs = [
        nbformat.v4.new_output(
            "stream", name="stdout", text="numpy: 1.08 s for 200 steps (5.4 ms/step), loss 0.2703, acc 92.3%\n"
        ),
        nbformat.v4.new_output("stream", name="stderr", text="100%|####| 40/40 [00:01<00:00]\n"),
        nbformat.v4.new_output(
            "execute_result", data={"text/plain": "array([ 5., -1.4e-03]) float32 A3"}, execution_count=1
        ),
        nbformat.v4.new_output("display_data", data={"text/plain": "<Figure size 640x480>", "image/png": ""}),
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("1.0"), cell])
    assert build.printed_numbers(notebook) == [["200", "0.2703", "92.3%", "5.", "-1.4e-03"]]


def test_the_mode_stamp_replaces_the_previous_one():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title\n\nText.")])
    for mode in ("quick", "full"):
        notebook.metadata["stevq"] = {"mode": mode}
        build.stamp_first_cell(notebook)
    assert (
        notebook.cells[0].source
        == f"# Title\n\nText.\n\n{build.STAMP} full mode (`python lectures/build.py`, STEVQ_QUICK=0).*"
    )
