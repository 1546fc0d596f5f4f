"""Run a course with stevq's assignments: build them for students, grade what students hand in.

    python lectures/assignments/course.py build [--out DIR] [--publish] [NAMES...]
    python lectures/assignments/course.py grade SUBMISSIONS --out DIR [--timeout 120] [--jobs N]

``build`` turns every master notebook (master/A*.ipynb: solutions and tests, instructor material)
into DIR/<name>/student/<name>.ipynb (no solutions, public checks only) and
DIR/<name>/autograder/autograder.zip (public and hidden tests, the Gradescope autograder), with
Otter-Grader's ``otter assign``. ``--publish`` also copies the student notebooks next to this script,
where the repository keeps them.

``grade`` grades every notebook under SUBMISSIONS (any depth; the assignment is read from the
notebook's metadata, else from its file name) with ``otter run`` (no container: it runs in this
Python environment, which must have stevq). It writes DIR/scores.csv (one row per submission: total
and points per part), DIR/results/<submission>.json (Otter's Gradescope results) and
DIR/feedback/<submission>.txt (what each test said, for the student). A submission that does not
finish within ``--timeout`` seconds, or is not a readable notebook, scores zero with a line saying so.

Needs the course extra: pip install -e ".[course]". Bad input: an ``error:`` line and exit 2.
"""
import argparse
import csv
import json
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent.parent
MASTERS = HERE / "master"
DEFAULT_BUILD = HERE / "dist"


class UsageError(Exception):
    """Bad input from the command line: printed as an ``error:`` line, exit status 2."""


def masters():
    return sorted(MASTERS.glob("A*.ipynb"))


def assignment_names():
    return [path.stem for path in masters()]


def _require_otter():
    try:
        import otter  # noqa: F401
    except ImportError:
        raise UsageError("otter-grader is not installed; install the course extra: pip install -e \".[course]\"") from None


# Otter imports nbformat, which imports jsonschema, which imports its optional RFC 3987 URI-syntax
# checker when installed: building its Lark grammar costs ~3 s of CPU per process, in every grading
# kernel, and notebook validation never uses it. Blocked here and, through an IPython startup file,
# in the kernels (about a third of the CPU time of grading one submission).
SKIP_IMPORTS = "import sys\nsys.modules.setdefault('rfc3987_syntax', None)  # see course.py\n"


def _kernel_startup():
    """An IPYTHONDIR whose startup file runs SKIP_IMPORTS in every kernel Otter starts."""
    folder = Path(tempfile.mkdtemp(prefix="stevq-ipython-"))
    (folder / "profile_default" / "startup").mkdir(parents=True)
    (folder / "profile_default" / "startup" / "00-skip-imports.py").write_text(SKIP_IMPORTS)
    return folder


def _environment():
    """Kernels started by Otter import this checkout's stevq, with one BLAS thread each."""
    exec(SKIP_IMPORTS)
    paths = [str(REPOSITORY)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("STEVQ_QUICK", "1")  # the demonstration cells are not graded: keep them short
    os.environ.pop("STEVQ_BACKEND", None)


# ------------------------------------------------------------------------------------------- build

def build(out=DEFAULT_BUILD, names=None, publish=False, log=print):
    """``otter assign`` every master (or those in ``names``); returns {name: (student notebook, autograder zip)}."""
    _require_otter()
    from otter.assign import main as otter_assign
    _environment()
    chosen = [path for path in masters() if not names or path.stem in names]
    unknown = sorted(set(names or ()) - {path.stem for path in chosen})
    if unknown:
        raise UsageError(f"names: no assignment {unknown}; known: {assignment_names()}")
    built = {}
    for master in chosen:
        start = time.perf_counter()
        target = Path(out) / master.stem
        shutil.rmtree(target, ignore_errors=True)
        otter_assign(str(master), str(target), no_pdfs=True, no_run_tests=True)
        zips = sorted((target / "autograder").glob("*-autograder_*.zip"))
        if len(zips) != 1:
            raise RuntimeError(f"{master.name}: otter assign wrote {len(zips)} autograder zips")
        autograder = zips[0].rename(target / "autograder" / "autograder.zip")
        student = target / "student" / master.name
        if publish:
            shutil.copy(student, HERE / master.name)
        built[master.stem] = (student, autograder)
        log(f"{master.stem}: {student.relative_to(out)}, {autograder.relative_to(out)} "
            f"({time.perf_counter() - start:.1f} s)")
    return built


# ------------------------------------------------------------------------------------------- grade

def possible_points(autograder):
    """Points per part {question: points}, read from the test files in an autograder zip; in the
    order of the student notebook built beside it (build's layout), else by name."""
    points = {}
    with zipfile.ZipFile(autograder) as archive:
        for name in sorted(archive.namelist()):
            if name.startswith("tests/") and name.endswith(".py"):
                source = archive.read(name).decode()
                points[Path(name).stem] = sum(float(p) for p in re.findall(r"@test_case\(points=([\d.]+)", source))
    student = Path(autograder).parent.parent / "student" / f"{Path(autograder).parent.parent.name}.ipynb"
    try:
        cells = json.loads(student.read_text())["cells"]
        order = re.findall(r'grader\.check\("(\w+)"\)', "\n".join("".join(cell["source"]) for cell in cells))
    except (OSError, KeyError, ValueError):
        order = []
    return dict(sorted(points.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))


def _assignment_of(path, known):
    """The assignment a submitted notebook belongs to: its Otter metadata, else its file name."""
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
        name = notebook.get("metadata", {}).get("otter", {}).get("assignment_name")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as error:
        return None, f"not a readable notebook ({type(error).__name__}: {str(error)[:120]})"
    if name not in known:
        name = next((k for k in known if Path(path).stem.startswith(k.split("_")[0] + "_") or Path(path).stem == k), None)
    if name is None:
        return None, "belongs to no known assignment (no Otter metadata, and its file name starts with none of " \
                     f"{[k.split('_')[0] + '_' for k in known]})"
    return name, None


def _grade_in_child(submission, autograder, workdir):
    """Child process: run ``otter run`` on one submission; results.json, errors.json and a log land in workdir."""
    os.setsid()
    log = open(Path(workdir) / "otter.log", "w")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    from otter.run import main as otter_run
    results = otter_run(str(submission), autograder=str(autograder), output_dir=str(workdir), no_logo=True)
    errors = []
    for index, cell in enumerate(getattr(results, "notebook", None) and results.notebook.cells or []):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append(f"cell {index} raised {output.get('ename')}: {output.get('evalue', '')[:200]}")
    (Path(workdir) / "errors.json").write_text(json.dumps(errors))


def _kill_kernels(child_pid):
    """Kill the kernels a killed child had started (their JPY_PARENT_PID is the child's pid)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if f"JPY_PARENT_PID={child_pid}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def _run_jobs(jobs, timeout, workers):
    """Grade ``jobs`` [(key, submission, autograder, workdir)] in forked children, ``workers`` at a
    time; returns {key: "ok" | "timeout" | "failed (exit status N)"}."""
    context = multiprocessing.get_context("fork")
    pending, running, status = list(jobs), {}, {}
    while pending or running:
        while pending and len(running) < workers:
            key, submission, autograder, workdir = pending.pop(0)
            process = context.Process(target=_grade_in_child, args=(submission, autograder, workdir))
            process.start()
            running[key] = (process, time.monotonic())
        time.sleep(0.1)
        for key, (process, started) in list(running.items()):
            if process.exitcode is not None:
                status[key] = "ok" if process.exitcode == 0 else f"failed (exit status {process.exitcode})"
            elif time.monotonic() - started > timeout:
                process.kill()
                process.join()
                _kill_kernels(process.pid)
                status[key] = "timeout"
            else:
                continue
            del running[key]
    return status


def _feedback(key, assignment, status, results, errors):
    lines = [f"Submission: {key}", f"Assignment: {assignment or '?'}", f"Status: {status}"]
    if results is not None:
        lines.append(f"Score: {_total(results):g} / {_possible_total(results):g}")
    lines += [f"  - {error}" for error in errors]
    for test in (results or {}).get("tests", []):
        if "max_score" not in test:
            continue
        lines += ["", f"== {test['name']}: {test.get('score', 0):g} / {test['max_score']:g}", test.get("output", "").rstrip()]
    return "\n".join(lines) + "\n"


def _total(results):
    return sum(test.get("score", 0) or 0 for test in results["tests"] if "max_score" in test)


def _possible_total(results):
    return sum(test["max_score"] for test in results["tests"] if "max_score" in test)


def grade(submissions, out, timeout=120.0, jobs=None, autograders=DEFAULT_BUILD, log=print):
    """Grade every notebook under ``submissions``; write scores.csv, results/ and feedback/ in ``out``.
    Returns the rows of scores.csv as dicts."""
    _require_otter()
    submissions, out, autograders = Path(submissions), Path(out), Path(autograders)
    if not submissions.is_dir():
        raise UsageError(f"submissions: {submissions} is not a folder")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise UsageError(f"--timeout: expected a positive number of seconds, got {timeout!r}")
    if jobs is not None and not (isinstance(jobs, int) and jobs >= 1):
        raise UsageError(f"--jobs: expected a positive integer, got {jobs!r}")
    jobs = jobs or max(1, os.cpu_count() or 1)
    known = {name: autograders / name / "autograder" / "autograder.zip" for name in assignment_names()}
    missing = [name for name, path in known.items() if not path.is_file()]
    if len(missing) == len(known):
        raise UsageError(f"--autograders: no autograder zips under {autograders}; run `course.py build --out {autograders}` first")
    paths = sorted(p for p in submissions.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not paths:
        raise UsageError(f"submissions: no .ipynb notebooks under {submissions}")
    _environment()
    import otter.run  # noqa: F401  (imported once here, shared by every forked child)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="stevq-grade-"))
    previous_ipython_dir = os.environ.get("IPYTHONDIR")
    os.environ["IPYTHONDIR"] = str(_kernel_startup())
    rows, work = [], []
    try:
        entries = {}
        for path in paths:
            key = path.relative_to(submissions).with_suffix("").as_posix()
            assignment, problem = _assignment_of(path, known)
            if assignment is not None and assignment in missing:
                problem = f"no autograder for {assignment} under {autograders}"
            entries[key] = (path, assignment, problem)
            if problem is None:
                workdir = scratch / f"{len(work)}"
                workdir.mkdir()
                work.append((key, path.resolve(), known[assignment].resolve(), workdir))
        start = time.perf_counter()
        status = _run_jobs(work, timeout, jobs)
        workdirs = {key: workdir for key, _, _, workdir in work}
        questions = {name: list(possible_points(path)) for name, path in known.items() if name not in missing}
        for key, (path, assignment, problem) in entries.items():
            results, errors = None, []
            workdir = workdirs.get(key)
            if problem is not None:
                line = problem
            elif status[key] == "timeout":
                line = f"did not finish within the time limit of {timeout:g} s: scored 0"
            elif not (workdir / "results.json").is_file():
                tail = (workdir / "otter.log").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                line = f"could not be graded, {status[key]}: {tail[0][:300]}"
            else:
                results = json.loads((workdir / "results.json").read_text())
                errors = json.loads((workdir / "errors.json").read_text()) if (workdir / "errors.json").is_file() else []
                line = "graded" + (f"; {len(errors)} cell(s) raised an error (see feedback)" if errors else "")
                target = out / "results" / f"{key}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(workdir / "results.json", target)
            feedback = out / "feedback" / f"{key}.txt"
            feedback.parent.mkdir(parents=True, exist_ok=True)
            feedback.write_text(_feedback(key, assignment, line, results, errors))
            possible = possible_points(known[assignment]) if assignment and assignment not in missing else {}
            row = {"submission": key, "assignment": assignment or "", "status": line,
                   "score": _total(results) if results else 0.0, "max_score": sum(possible.values())}
            for test in (results or {}).get("tests", []):
                if "max_score" in test:
                    row[test["name"]] = test.get("score", 0) or 0
            for question in possible:
                row.setdefault(question, 0.0)
            rows.append(row)
            log(f"{key}: {row['score']:g} / {row['max_score']:g} ({line})")
        columns = ["submission", "assignment", "status", "score", "max_score"]
        columns += [q for name in sorted(questions) for q in questions[name]]
        with open(out / "scores.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
        log(f"{len(rows)} submissions graded in {time.perf_counter() - start:.1f} s: {out / 'scores.csv'}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(os.environ.pop("IPYTHONDIR"), ignore_errors=True)
        if previous_ipython_dir is not None:
            os.environ["IPYTHONDIR"] = previous_ipython_dir
    return rows


# ------------------------------------------------------------------------------------- command line

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="student notebooks and autograder zips (otter assign)")
    build_parser.add_argument("names", nargs="*", help=f"assignments to build (default all): {assignment_names()}")
    build_parser.add_argument("--out", default=str(DEFAULT_BUILD), help="output folder (default %(default)s)")
    build_parser.add_argument("--publish", action="store_true", help="also copy the student notebooks next to this script")
    grade_parser = commands.add_parser("grade", help="grade a folder of submitted notebooks (otter run)")
    grade_parser.add_argument("submissions", help="folder of submitted .ipynb notebooks (searched at any depth)")
    grade_parser.add_argument("--out", required=True, help="folder for scores.csv, results/ and feedback/")
    grade_parser.add_argument("--timeout", type=float, default=120.0, help="seconds per submission (default %(default)s)")
    grade_parser.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: CPU count)")
    grade_parser.add_argument("--autograders", default=str(DEFAULT_BUILD), help="the build folder (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build(args.out, args.names, publish=args.publish)
        else:
            grade(args.submissions, args.out, timeout=args.timeout, jobs=args.jobs, autograders=args.autograders)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
