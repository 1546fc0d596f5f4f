"""Run a course with stevq's assignments: build them for students, grade what students hand in.

    python lectures/assignments/course.py build [--masters DIR] [--out DIR] [--publish] [NAMES...]
    python lectures/assignments/course.py grade SUBMISSIONS --out DIR [--timeout 120] [--jobs N] [--assignment NAME]

``build`` turns every master notebook (master/A*.ipynb, or those in --masters: solutions and tests,
instructor material) into DIR/<name>/student/ (the notebook without solutions, its public tests,
the graders) and DIR/<name>/autograder/autograder.zip, with Otter-Grader's ``otter assign``; the
zip also carries the course build of stevq and the graders with their fixtures (``course_build``),
so that it grades with no stevq installed. ``--publish`` also copies the student notebooks and
public tests next to this script, where the repository keeps them.

``grade`` grades every notebook under SUBMISSIONS (any depth; the assignment is read from the
notebook's metadata, never its file name), each with ``otter run`` in a sandbox of its own, and
scores it by replaying the checks on its recorded answers outside the sandbox (``course_grade``).
It writes DIR/scores.csv (one row per submission: total and points per part),
DIR/results/<submission>.json (Gradescope's format) and DIR/feedback/<submission>.txt (what each
check said, for the student). A submission past ``--timeout`` seconds scores the checks it had
run; one that is not a readable notebook scores zero; a line says so.

Needs the course extra: pip install -e ".[course]". Bad input: an ``error:`` line and exit 2.
"""

import argparse
import csv
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent.parent
MASTERS = HERE / "master"
DEFAULT_BUILD = HERE / "dist"


class UsageError(Exception):
    """Bad input from the command line: printed as an ``error:`` line, exit status 2."""


def masters(folder=None):
    found = sorted(Path(folder or MASTERS).glob("A*.ipynb"))
    if folder is not None and not found:
        raise UsageError(f"--masters: no A*.ipynb master notebooks in {folder}")
    return found


def assignment_names(folder=None):
    return [path.stem for path in masters(folder)]


def _require_otter():
    # found, not imported: importing otter takes seconds, and a mistyped argument should not wait for it
    if importlib.util.find_spec("otter") is None:
        raise UsageError('otter-grader is not installed; install the course extra: pip install -e ".[course]"')


# Otter imports nbformat, which imports jsonschema, which imports its optional RFC 3987 URI-syntax
# checker when installed: building its Lark grammar costs ~3 s of CPU per process, in every grading
# kernel, and notebook validation never uses it. Blocked here and (course_grade.SKIP_IMPORTS, an
# IPython startup file) in the kernels (about a third of the CPU time of grading one submission).
SKIP_IMPORTS = "import sys\nsys.modules.setdefault('rfc3987_syntax', None)  # see course.py\n"


def _environment():
    """Kernels started by Otter import this checkout's stevq, with one BLAS thread each."""
    exec(SKIP_IMPORTS)
    paths = [str(REPOSITORY)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    for folder in (str(HERE), str(REPOSITORY)):  # the graders, and the full stevq they record from
        if folder not in sys.path:
            sys.path.insert(0, folder)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("STEVQ_QUICK", "1")  # the demonstration cells are not graded: keep them short
    os.environ.pop("STEVQ_BACKEND", None)


# ------------------------------------------------------------------------------------------- build


def build(out=DEFAULT_BUILD, names=None, publish=False, masters_dir=None, log=print):
    """``otter assign`` every master (or those in ``names``), then add the course build of stevq and
    the graders with their fixtures to each autograder zip (``course_build``); returns
    {name: (student notebook, autograder zip)}."""
    _require_otter()
    chosen = [path for path in masters(masters_dir) if not names or path.stem in names]
    unknown = sorted(set(names or ()) - {path.stem for path in chosen})
    if unknown:
        raise UsageError(f"names: no assignment {unknown}; known: {assignment_names(masters_dir)}")
    _environment()  # before Otter's import, which it makes cheaper
    import course_build
    from otter.assign import main as otter_assign

    built = {}
    for master in chosen:
        start = time.perf_counter()
        target = Path(out) / master.stem
        shutil.rmtree(target, ignore_errors=True)
        fixtures, forbidden = course_build.record_fixtures(master)
        otter_assign(str(master), str(target), no_pdfs=True, no_run_tests=True)
        zips = sorted((target / "autograder").glob("*-autograder_*.zip"))
        if len(zips) != 1:
            raise RuntimeError(f"{master.name}: otter assign wrote {len(zips)} autograder zips")
        autograder = zips[0].rename(target / "autograder" / "autograder.zip")
        staging = target / "autograder" / "course"
        course_build.add_to_zip(
            autograder, [course_build.course_build(forbidden, staging), course_build.grading_copy(staging, fixtures)]
        )
        shutil.rmtree(staging)
        student = target / "student" / master.name
        course_build.grading_copy(student.parent)
        if publish:
            shutil.copy(student, HERE / master.name)
            (HERE / "tests").mkdir(exist_ok=True)
            for test in (student.parent / "tests").glob("*.py"):
                shutil.copy(test, HERE / "tests" / test.name)
        built[master.stem] = (student, autograder)
        log(
            f"{master.stem}: {student.relative_to(out)}, {autograder.relative_to(out)} "
            f"({time.perf_counter() - start:.1f} s)"
        )
    return built


# ------------------------------------------------------------------------------------------- grade


def _start(job, isolated, hide, keep):
    """Start one submission's ``otter run`` in its own folder (course_grade.prepare), sandboxed."""
    import course_grade

    argv, environment = course_grade.prepare(
        job["workdir"], job["path"], job["kernel_zip"], job["uid"], f"{job['assignment']}.ipynb"
    )
    if isolated:
        argv = course_grade.sandbox_command(argv, job["workdir"], job["uid"], hide, keep)
    log = open(job["workdir"].parent / f"{job['workdir'].name}.log", "wb")
    job["log"] = job["workdir"].parent / f"{job['workdir'].name}.log"
    job["process"] = subprocess.Popen(
        argv,
        env=environment,
        cwd=job["workdir"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    job["started"] = time.monotonic()
    log.close()


def _stop(job, isolated):
    import course_grade

    if isolated:
        course_grade.kill_user(job["uid"])
    try:
        os.killpg(job["process"].pid, signal.SIGKILL)
    except OSError:
        pass
    job["process"].wait()
    if isolated:
        course_grade.kill_user(job["uid"])  # anything started between the two sweeps
        course_grade.remove_leftovers(job["uid"])


def _run_all(jobs, timeout, workers, isolated, hide, keep):
    """Run ``jobs`` ``workers`` at a time; sets job["status"] to "ok", "timeout" or "failed (...)"."""
    pending, running = list(jobs), []
    while pending or running:
        while pending and len(running) < workers:
            job = pending.pop(0)
            _start(job, isolated, hide, keep)
            running.append(job)
        time.sleep(0.1)
        for job in list(running):
            code = job["process"].poll()
            if code is None and time.monotonic() - job["started"] <= timeout:
                continue
            job["status"] = "timeout" if code is None else ("ok" if code == 0 else f"failed (exit status {code})")
            _stop(job, isolated)
            running.remove(job)


def _feedback(key, assignment, line, tests, errors):
    lines = [f"Submission: {key}", f"Assignment: {assignment or '?'}", f"Status: {line}"]
    if tests is not None:
        lines.append(f"Score: {sum(t['score'] for t in tests):g} / {sum(t['max_score'] for t in tests):g}")
    lines += [f"  - cell {e['cell']} of your notebook raised {e['ename']}: {e['evalue']}" for e in errors]
    for test in tests or []:
        lines += ["", f"== {test['name']}: {test['score']:g} / {test['max_score']:g}", test["output"].rstrip()]
    return "\n".join(lines) + "\n"


def grade(submissions, out, timeout=120.0, jobs=None, autograders=DEFAULT_BUILD, assignment=None, log=print):
    """Grade every notebook under ``submissions``; write scores.csv, results/ and feedback/ in ``out``.
    Returns the rows of scores.csv as dicts."""
    _require_otter()
    submissions, out, autograders = Path(submissions).resolve(), Path(out).resolve(), Path(autograders).resolve()
    if not submissions.is_dir():
        raise UsageError(f"submissions: {submissions} is not a folder")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise UsageError(f"--timeout: expected a positive number of seconds, got {timeout!r}")
    if jobs is not None and not (isinstance(jobs, int) and jobs >= 1):
        raise UsageError(f"--jobs: expected a positive integer, got {jobs!r}")
    workers = jobs or max(1, os.cpu_count() or 1)
    known = {path.parent.parent.name: path for path in sorted(autograders.glob("*/autograder/autograder.zip"))}
    if not known:
        raise UsageError(
            f"--autograders: no autograder zips under {autograders}; run `course.py build --out {autograders}` first"
        )
    if assignment is not None and assignment not in known:
        raise UsageError(f"--assignment: no autograder for {assignment!r} under {autograders}; built: {sorted(known)}")
    paths = sorted(p for p in submissions.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not paths:
        raise UsageError(f"submissions: no .ipynb notebooks under {submissions}")
    _environment()
    import course_grade

    isolated = course_grade.isolating()
    if not isolated:
        log("warning: not root (or no unshare/setpriv): submissions run as this user, without isolation")
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="stevq-grade-"))
    os.chmod(scratch, 0o711)  # a submission's user may enter its own folder, list nothing
    closed = [str(p) for p in scratch.parents if isolated and not os.stat(p).st_mode & 0o001]
    if closed:
        shutil.rmtree(scratch)
        raise UsageError(
            f"TMPDIR: other users cannot enter {closed[0]}, so submissions could not reach their "
            "folders; point TMPDIR to a folder they can enter (mode o+x)"
        )
    private = scratch / "grader"
    private.mkdir(mode=0o700)
    hide = sorted(
        {str(REPOSITORY), str(out), str(submissions), str(autograders), str(MASTERS)}
        | set(course_grade._installed_stevq() if isolated else [])
    )
    rows, work = [], []
    try:
        points = {name: course_grade.points_of(path) for name, path in known.items()}
        fixtures = {name: course_grade.kernel_zip(path, private / f"{name}.zip") for name, path in known.items()}
        first_uid = 200_000 + (os.getpid() % 1000) * 1000
        entries = {}
        for path in paths:
            key = path.relative_to(submissions).with_suffix("").as_posix()
            found, problem = course_grade.identify(path, known, default=assignment)
            entries[key] = (found, problem)
            if problem is None:
                work.append(
                    {
                        "key": key,
                        "path": path,
                        "assignment": found,
                        "kernel_zip": private / f"{found}.zip",
                        "workdir": scratch / str(len(work)),
                        "uid": first_uid + len(work) if isolated else None,
                    }
                )
        start = time.perf_counter()
        _run_all(work, timeout, workers, isolated, hide, private / "keep")
        by_key = {job["key"]: job for job in work}
        for key, (name, problem) in entries.items():
            job, tests, errors = by_key.get(key), None, []
            if problem is not None:
                line = problem
            elif job["status"] == "timeout":
                line = (
                    f"did not finish within the time limit of {timeout:g} s: scored 0 on the parts it had not reached"
                )
            else:
                line = "graded" if job["status"] == "ok" else f"graded; Otter stopped early, {job['status']}"
            if job is not None:
                tests = course_grade.judge(points[name], job["workdir"], fixtures[name])
                try:
                    errors = json.loads(course_grade.record.read_inside(job["workdir"], "out/errors.json", 100_000))[
                        :20
                    ]
                    errors = [e for e in errors if isinstance(e, dict) and {"cell", "ename", "evalue"} <= set(e)]
                except (OSError, ValueError):
                    errors = []
                if errors and job["status"] == "ok":
                    line += f"; {len(errors)} cell(s) raised an error (see feedback)"
                shutil.rmtree(job["workdir"], ignore_errors=True)
            possible = {part: sum(p for p, _ in cases) for part, cases in points.get(name, {}).items()}
            results = {"score": sum(t["score"] for t in tests or []), "tests": tests or []}
            for folder, text in (
                ("results", json.dumps(results, indent=1)),
                ("feedback", _feedback(key, name, line, tests, errors)),
            ):
                target = out / folder / f"{key}.{'json' if folder == 'results' else 'txt'}"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            row = {
                "submission": key,
                "assignment": name or "",
                "status": line,
                "score": results["score"],
                "max_score": sum(possible.values()),
            }
            row.update({part: 0.0 for part in possible})
            row.update({t["name"]: t["score"] for t in tests or []})
            rows.append(row)
            log(f"{key}: {row['score']:g} / {row['max_score']:g} ({line})")
        columns = ["submission", "assignment", "status", "score", "max_score"]
        columns += [part for name in sorted(points) for part in points[name]]
        with open(out / "scores.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
        log(f"{len(rows)} submissions graded in {time.perf_counter() - start:.1f} s: {out / 'scores.csv'}")
    finally:
        for job in work:
            if "process" in job and job["process"].poll() is None:
                _stop(job, isolated)
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


# ------------------------------------------------------------------------------------- command line


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="student notebooks and autograder zips (otter assign)")
    build_parser.add_argument("names", nargs="*", help=f"assignments to build (default all): {assignment_names()}")
    build_parser.add_argument("--out", default=str(DEFAULT_BUILD), help="output folder (default %(default)s)")
    build_parser.add_argument(
        "--publish", action="store_true", help="also copy the student notebooks and public tests next to this script"
    )
    build_parser.add_argument(
        "--masters",
        default=None,
        help="folder of the master notebooks (default: master/ here; a graded course keeps a private copy)",
    )
    grade_parser = commands.add_parser("grade", help="grade a folder of submitted notebooks (otter run)")
    grade_parser.add_argument("submissions", help="folder of submitted .ipynb notebooks (searched at any depth)")
    grade_parser.add_argument("--out", required=True, help="folder for scores.csv, results/ and feedback/")
    grade_parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds per submission (default %(default)s)"
    )
    grade_parser.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: CPU count)")
    grade_parser.add_argument(
        "--autograders", default=str(DEFAULT_BUILD), help="the build folder (default %(default)s)"
    )
    grade_parser.add_argument(
        "--assignment",
        default=None,
        help="the assignment of a notebook whose metadata is unreadable "
        "(default: the folder of that name above it, or the only one built)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build(args.out, args.names, publish=args.publish, masters_dir=args.masters)
        else:
            grade(
                args.submissions,
                args.out,
                timeout=args.timeout,
                jobs=args.jobs,
                autograders=args.autograders,
                assignment=args.assignment,
            )
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
