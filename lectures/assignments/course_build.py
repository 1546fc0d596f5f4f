"""What ``course.py build`` adds to Otter's output: the course build of stevq, the graders' fixtures,
and the autograder zip that carries both (used by ``course.py`` only).

The course build of stevq is a copy of the package's source in which the body of every function an
assignment asks for (the functions its graders forbid, plus ``EXTRA`` helpers that do the same work)
is replaced by ``raise NotImplementedError``, docstring kept: reading, reloading or exec-ing its
source finds nothing. It travels in the zip as ``files/stevq/``, which Otter copies beside the
submission, where the kernel imports it first: no install step, no network (``otter run -a`` runs no
set-up script at all, and Gradescope runs the same copy).

The fixtures are the graders' expected values (``grading.record``), computed here from the full
library by grading the master's own solution on every seed a test uses.
"""

import ast
import inspect
import shutil
import zipfile
from pathlib import Path

import grading
import nbformat
from grading import record
from grading.guard import _plain_function
from grading.report import FORBIDDEN_BY_PART

HERE = Path(__file__).resolve().parent
SEEDS = sorted({seed for seeds in grading.SEEDS.values() for seed in seeds})
STUB = "raise NotImplementedError({!r})"
MESSAGE = "left out of the course build of stevq, which grades the assignment that asks for it: write it yourself"
# Private helpers that compute what a part asks for, left out with it.
EXTRA = {
    "lookup_vjp": [("ops/shape.py", "_segment_sums")],
    **{
        part: [
            ("theory/yin2019/closed_forms.py", "_expected_coarse"),
            ("theory/quadrature.py", "expected_coarse"),
            ("theory/quadrature.py", "expected_coarse_batch"),
        ]
        for part in ("expected_identity_coarse_grad", "expected_relu_coarse_grad")
    },
}


class BuildError(Exception):
    """A master or the library is not what the build expects (the instructor's problem, not a student's)."""


def master_solutions(master):
    """{name: function} of the master's answer cells, run as plain Python with its imports."""
    namespace = {}
    for cell in nbformat.read(master, as_version=4).cells:
        if cell.cell_type == "code" and (
            "BEGIN SOLUTION" in cell.source or cell.source.lstrip().startswith(("import", "from"))
        ):
            exec(compile(cell.source, str(master), "exec"), namespace)
    return namespace


def parts_of(master):
    """The questions of a master, in order (their ``name:`` under ``# BEGIN QUESTION``)."""
    names = []
    for cell in nbformat.read(master, as_version=4).cells:
        if cell.cell_type == "raw" and cell.source.lstrip().startswith("# BEGIN QUESTION"):
            names += [line.split(":", 1)[1].strip() for line in cell.source.splitlines() if line.startswith("name:")]
    return names


def record_fixtures(master):
    """Grade the master's solution of every part on every seed, recording each expected value;
    returns ({key: array}, {part: forbidden functions})."""
    solutions = master_solutions(master)
    with record.recording() as values:
        for part in parts_of(master):
            if part not in grading.GRADERS or part not in solutions:
                raise BuildError(f"{master.name}: no grader or no solution for the part {part!r}")
            for seed in SEEDS:
                report = grading.GRADERS[part](solutions[part], seed=seed)
                if not report.passed:
                    raise BuildError(f"{master.name}: the master's solution fails its own grader:\n{report}")
    return dict(values), {part: FORBIDDEN_BY_PART[part] for part in parts_of(master)}


def _targets(forbidden, package):
    """{file relative to the package: {first line of a function to empty}} for the forbidden functions."""
    targets = {}
    for part, functions in forbidden.items():
        for function in functions:
            raw = _plain_function(function)
            path = Path(inspect.getsourcefile(raw)).resolve().relative_to(package)
            targets.setdefault(str(path), set()).add(raw.__code__.co_firstlineno)
        for path, name in EXTRA.get(part, []):
            tree = ast.parse((package / path).read_text())
            lines = [node.lineno for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name]
            if len(lines) != 1:
                raise BuildError(f"stevq/{path}: no single function {name} to leave out")
            targets.setdefault(path, set()).update(lines)
    return targets


def strip_functions(source, first_lines):
    """``source`` with the body of every function starting at one of ``first_lines`` (its ``def``
    or first decorator) replaced by ``raise NotImplementedError``; the docstring stays."""
    lines = source.splitlines(keepends=True)
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            starts = {node.lineno} | {d.lineno for d in node.decorator_list}
            if starts & set(first_lines):
                found.append(node)
    if len(found) != len(first_lines):
        raise BuildError(f"found {len(found)} of {len(first_lines)} functions to leave out")
    for node in sorted(found, key=lambda n: n.lineno, reverse=True):
        body = node.body
        has_doc = (
            isinstance(body[0], ast.Expr)
            and isinstance(getattr(body[0], "value", None), ast.Constant)
            and isinstance(body[0].value.value, str)
        )
        start = body[0].end_lineno if has_doc else body[0].lineno - 1  # 0-based index of the first line to drop
        indent = " " * (body[0].col_offset)
        lines[start : node.end_lineno] = [indent + STUB.format(MESSAGE) + "\n"]
    stripped = "".join(lines)
    compile(stripped, "<course build>", "exec")
    return stripped


def course_build(forbidden, out):
    """Write the course build of stevq (sources only) to ``out/stevq``; returns its path."""
    import stevq

    package = Path(stevq.__file__).resolve().parent
    targets = _targets(forbidden, package)
    target = Path(out) / "stevq"
    shutil.rmtree(target, ignore_errors=True)
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if "__pycache__" in relative.parts:
            continue
        source = path.read_text()
        if str(relative) in targets:
            source = strip_functions(source, targets.pop(str(relative)))
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (target / relative).write_text(source)
    if targets:
        raise BuildError(f"functions to leave out in files not copied: {sorted(targets)}")
    return target


def grading_copy(out, fixtures=None):
    """The grading package (sources) in ``out/grading``, with ``fixtures`` ({key: array}) if given."""
    target = Path(out) / "grading"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(HERE / "grading", target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "fixtures.npz"))
    if fixtures is not None:
        record.save_fixtures(fixtures, target / "fixtures.npz")
    return target


def add_to_zip(autograder, folders):
    """Add every file under each of ``folders`` to the zip as files/<folder name>/..., which Otter
    copies into the submission's folder before running it."""
    with zipfile.ZipFile(autograder, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        for folder in folders:
            for path in sorted(Path(folder).rglob("*")):
                if path.is_file():
                    archive.write(path, f"files/{Path(folder).name}/{path.relative_to(folder).as_posix()}")
