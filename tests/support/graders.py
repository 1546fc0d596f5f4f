"""The course's graders and the reference solutions they are tested with.

The graders (lectures/assignments/grading) live beside the assignments, not in stevq: they ship in
the autograder zips. The reference solution of every graded function is read from the master
notebooks (instructor material in lectures/assignments/master/), not from the package.
"""

import sys
import types
from pathlib import Path

import nbformat

COURSE = Path(__file__).resolve().parents[2] / "lectures" / "assignments"
MASTERS = COURSE / "master"
sys.path.insert(0, str(COURSE))
import grading  # noqa: E402  (the course's graders, beside the assignments: not part of stevq)


def _reference_solutions():
    """{function name: reference solution}: the imports and solution cells of every master notebook
    (a master runs as plain Python: its prompts are string literals), each in its own namespace."""
    found = {}
    for path in sorted(MASTERS.glob("A*.ipynb")):
        namespace = {}
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and (
                "BEGIN SOLUTION" in cell.source or cell.source.lstrip().startswith(("import", "from"))
            ):
                exec(compile(cell.source, f"{path.name}", "exec"), namespace)
        found.update({name: namespace[name] for name in grading.GRADERS if name in namespace})
    return found


solutions = types.SimpleNamespace(**_reference_solutions())
