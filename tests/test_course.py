"""The course tooling end to end (lectures/assignments/course.py on top of Otter-Grader): building
every assignment, and grading, per assignment, the reference notebook (full marks), the untouched
student notebook (zero, a message per part), three deliberately wrong submissions (partial marks, the
message names the mistake) and one that calls stevq's own implementation (zero for that part). Also
a notebook that is not a notebook, one that runs past the time limit, and the command's bad input.

Skipped without otter-grader (the course extra, pip install -e ".[course]"); CI installs it.
Everything is built and graded once per session, by the command line, in a subprocess.
"""

import csv
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest
from support import stevq_process
from support.course_submissions import SUBMISSIONS

pytestmark = pytest.mark.slow  # notebooks, the course kit, benchmarks, subprocesses: not in the quick loop

pytest.importorskip("otter", reason="otter-grader (the course extra) is not installed")

ROOT = Path(__file__).resolve().parent.parent
NAMES = sorted(path.stem for path in (ROOT / "lectures" / "assignments" / "master").glob("A*.ipynb"))
QUESTIONS = {
    "A1_codebook_gradient": ["lookup_vjp", "codebook_grad"],
    "A2_sync_straight_through": ["straight_through_output", "sync_straight_through"],
    "A3_relu_coarse_gradient": ["expected_identity_coarse_grad", "expected_relu_coarse_grad"],
    "A4_fsq_bound": ["fsq_bound", "fsq_quantize"],
    "A5_ste_primitive": ["straight_through", "binary_step"],
    "A6_ema_codebook": ["cluster_stats", "ema_update"],
    "A7_rotation_trick": ["rotation_vjp", "rotation_trick"],
}

SLEEPER = "import time\ntime.sleep(10_000)"
TIMEOUT = 8  # the sleeper never finishes: any limit shows the cut; a short one keeps the suite short


def _defined(source):
    match = re.search(r"^def (\w+)\(", source, re.MULTILINE)
    return match.group(1) if match else None


def _submission(student, reference, replacements):
    """The student notebook with every answer cell filled: by ``replacements`` where given, else by
    the reference solution of the same function (from the autograder's solution notebook)."""
    solved = {_defined(cell.source): cell.source for cell in reference.cells if cell.cell_type == "code"}
    notebook = nbformat.from_dict(json.loads(json.dumps(student)))
    for cell in notebook.cells:
        name = _defined(cell.source) if "otter_answer_cell" in cell.metadata.get("tags", []) else None
        if name:
            cell.source = replacements.get(name, solved[name])
    return notebook


@pytest.fixture(scope="module")
def course(tmp_path_factory, course_build):
    """Every assignment built (``course_build``), the submissions written, all graded in one command;
    returns paths."""
    root = tmp_path_factory.mktemp("course")
    dist, build = course_build
    submissions = root / "submissions"
    for name in NAMES:
        student = nbformat.read(dist / name / "student" / f"{name}.ipynb", as_version=4)
        reference = nbformat.read(dist / name / "autograder" / f"{name}.ipynb", as_version=4)
        folder = submissions / name
        folder.mkdir(parents=True)
        nbformat.write(reference, folder / "reference.ipynb")
        nbformat.write(student, folder / "untouched.ipynb")
        for label, (replacements, _, _) in SUBMISSIONS[name].items():
            nbformat.write(_submission(student, reference, replacements), folder / f"{label}.ipynb")
    (submissions / NAMES[0] / "broken.ipynb").write_text("{ this is not json")
    # two at a time even beside another pytest-xdist worker (as the cheat battery): a submission waits
    # for its kernel part of the time, and graded as root each has a network namespace of its own
    grade = stevq_process.course(
        "grade", submissions, "--out", root / "graded", "--autograders", dist, "--timeout", 300, "--jobs", 2
    )
    return {"root": root, "dist": dist, "build": build, "grade": grade, "graded": root / "graded"}


def _results(course, name, label):
    return json.loads((course["graded"] / "results" / name / f"{label}.json").read_text())


def _part_scores(results):
    return {
        test["name"]: (test.get("score", 0), test["max_score"], test.get("output", ""))
        for test in results["tests"]
        if "max_score" in test
    }


def test_building_every_assignment_succeeds(course):
    assert len(NAMES) >= 7
    for name in NAMES:
        student = course["dist"] / name / "student" / f"{name}.ipynb"
        assert student.is_file() and (course["dist"] / name / "autograder" / "autograder.zip").is_file()
        assert name in course["build"].stdout


@pytest.mark.parametrize("name", NAMES)
def test_the_reference_scores_full_marks(course, name):
    parts = _part_scores(_results(course, name, "reference"))
    assert sorted(parts) == sorted(QUESTIONS[name])
    assert all(score == possible > 0 for score, possible, _ in parts.values()), parts


@pytest.mark.parametrize("name", NAMES)
def test_the_untouched_notebook_scores_zero_with_a_message_per_part(course, name):
    parts = _part_scores(_results(course, name, "untouched"))
    assert sorted(parts) == sorted(QUESTIONS[name])
    for part, (score, possible, output) in parts.items():
        assert score == 0 and possible > 0
        assert f"TODO: write {part}" in output and "not implemented yet" in output, output


CASES = [(name, label) for name in NAMES for label in SUBMISSIONS[name]]


@pytest.mark.parametrize("name, label", CASES, ids=[f"{n[:2]}-{label}" for n, label in CASES])
def test_a_wrong_submission_scores_partial_marks_naming_the_mistake(course, name, label):
    _, wrong_part, words = SUBMISSIONS[name][label]
    parts = _part_scores(_results(course, name, label))
    score, possible, output = parts[wrong_part]
    assert score == 0, f"{wrong_part}: {score} / {possible}\n{output}"
    assert words in output, output
    others = {part: value for part, value in parts.items() if part != wrong_part}
    assert others and all(value[0] == value[1] > 0 for value in others.values()), others


def test_the_csv_has_one_row_per_submission_and_the_scores(course):
    with open(course["graded"] / "scores.csv", newline="") as handle:
        rows = {row["submission"]: row for row in csv.DictReader(handle)}
    assert len(rows) == len(NAMES) * (2 + 4) + 1
    broken = rows[f"{NAMES[0]}/broken"]
    for name in NAMES:
        reference, untouched = rows[f"{name}/reference"], rows[f"{name}/untouched"]
        assert float(reference["score"]) == float(reference["max_score"]) > 0
        assert float(untouched["score"]) == 0 and untouched["status"].startswith("graded")
        for label in SUBMISSIONS[name]:
            row = rows[f"{name}/{label}"]
            assert 0 < float(row["score"]) < float(row["max_score"]), row
            assert float(row[SUBMISSIONS[name][label][1]]) == 0, row
    assert broken["status"].startswith("not a readable notebook") and float(broken["score"]) == 0
    assert broken["assignment"] == NAMES[0] and float(broken["max_score"]) == 6  # 0 of the assignment's points


def test_results_are_in_gradescope_format_and_feedback_is_written(course):
    results = _results(course, "A1_codebook_gradient", "sign")
    assert {"score", "tests"} <= set(results) and results["score"] == 3
    assert all({"name", "score", "max_score", "output"} <= set(test) for test in results["tests"])
    assert any("hidden checks: failed" in test["output"] for test in results["tests"])
    feedback = (course["graded"] / "feedback" / "A1_codebook_gradient" / "sign.txt").read_text()
    assert "Score: 3 / 6" in feedback and "sign error" in feedback
    assert "not a readable notebook" in (course["graded"] / "feedback" / NAMES[0] / "broken.txt").read_text()


def test_a_submission_past_the_time_limit_scores_zero_with_a_clear_line(course, tmp_path):
    student = nbformat.read(course["dist"] / NAMES[0] / "student" / f"{NAMES[0]}.ipynb", as_version=4)
    student.cells.insert(1, nbformat.v4.new_code_cell(SLEEPER))
    (tmp_path / "in").mkdir()
    temporary = Path(tempfile.mkdtemp(prefix="stevq-test-"))  # under /tmp: submissions' users can enter it
    os.chmod(temporary, 0o711)
    nbformat.write(student, tmp_path / "in" / "sleeper.ipynb")
    result = stevq_process.course(
        "grade",
        tmp_path / "in",
        "--out",
        tmp_path / "graded",
        "--autograders",
        course["dist"],
        "--timeout",
        TIMEOUT,
        TMPDIR=str(temporary),
    )
    left = list(temporary.iterdir())
    shutil.rmtree(temporary)
    assert not left, f"the grader's temporary folder is left with {left}"
    assert f"did not finish within the time limit of {TIMEOUT} s" in result.stdout
    with open(tmp_path / "graded" / "scores.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert float(row["score"]) == 0 and "time limit" in row["status"]


def _solution_lines(notebook):
    """The code lines between # BEGIN SOLUTION and # END SOLUTION in a master-format notebook."""
    lines, inside = set(), False
    for cell in notebook.cells:
        for line in cell.source.split("\n") if cell.cell_type == "code" else []:
            if "# BEGIN SOLUTION" in line or "# END SOLUTION" in line:
                inside = "# BEGIN SOLUTION" in line
            elif inside and line.strip():
                lines.add(line.strip())
    return lines


def test_no_student_notebook_contains_a_solution(course):
    for name in NAMES:
        reference = nbformat.read(course["dist"] / name / "autograder" / f"{name}.ipynb", as_version=4)
        solution = _solution_lines(reference)
        assert len(solution) >= 2, f"{name}: no solution found in the reference notebook"
        for student in (
            course["dist"] / name / "student" / f"{name}.ipynb",
            ROOT / "lectures" / "assignments" / f"{name}.ipynb",
        ):
            notebook = nbformat.read(student, as_version=4)
            student_lines = {line.strip() for cell in notebook.cells for line in cell.source.split("\n")}
            assert not solution & student_lines, f"{student}: {solution & student_lines}"
            assert "BEGIN SOLUTION" not in json.dumps(notebook)
            assert "hidden=True" not in json.dumps(notebook.metadata.get("otter", {}).get("tests", {}))


@pytest.mark.parametrize(
    "args, words",
    [
        (["grade", "/nonexistent", "--out", "/tmp/x"], "submissions: /nonexistent is not a folder"),
        (["grade", ".", "--out", "/tmp/x", "--timeout", "-1"], "--timeout: expected a positive number"),
        (["grade", ".", "--out", "/tmp/x", "--jobs", "0"], "--jobs: expected a positive integer"),
        (["grade", ".", "--out", "/tmp/x", "--autograders", "/nonexistent"], "no autograder zips"),
        (["build", "A9_nothing", "--out", "/tmp/x"], "no assignment ['A9_nothing']"),
    ],
)
def test_bad_input_is_an_error_line_and_exit_status_2(args, words):
    result = stevq_process.course(*args, check=False)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_the_student_notebooks_in_the_repository_are_the_built_ones(course):
    """lectures/assignments/A*.ipynb (what students open) are `course.py build --publish`'s output."""
    for name in NAMES:
        committed = nbformat.read(ROOT / "lectures" / "assignments" / f"{name}.ipynb", as_version=4)
        built = nbformat.read(course["dist"] / name / "student" / f"{name}.ipynb", as_version=4)
        assert [cell.source for cell in committed.cells] == [cell.source for cell in built.cells], (
            f"{name}: run python lectures/assignments/course.py build --publish"
        )
        assert committed.metadata["otter"] == built.metadata["otter"]
