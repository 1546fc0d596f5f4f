"""The cheat battery: submissions that try to score on assignment 1's ``codebook_grad`` without
writing it, graded by ``course.py grade`` together with honest submissions. Each attempt scores 0 on
that part (``lookup_vjp``, solved honestly, keeps its 3 points), and none changes another
submission's score, reads the masters or writes outside its own folder.

Where an attempt's defence depends on grading as root (a user and a mount namespace per
submission), the test says so and is skipped when not root. Skipped without otter-grader.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow  # notebooks, the course kit, benchmarks, subprocesses: not in the quick loop

pytest.importorskip("otter", reason="otter-grader (the course extra) is not installed")

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "lectures" / "assignments" / "course.py"
NAME = "A1_codebook_gradient"
MASTER = ROOT / "lectures" / "assignments" / "master" / f"{NAME}.ipynb"
ROOTED = os.geteuid() == 0
SIGNATURE = "def codebook_grad(z_e, indices, codebook):\n"
CALL = "    return reference(z_e, indices, codebook.shape[0], codebook)\n"

# label -> the answer cell of codebook_grad (lookup_vjp gets the reference solution).
CHEATS = {
    "getsource_exec": "import inspect, stevq.vq.core as core\nspace = dict(vars(core))\n"
    "exec(inspect.getsource(core.codebook_grad), space)\nreference = space['codebook_grad']\n\n" + SIGNATURE + CALL,
    "open_module_file": "import stevq.vq.core as core\nspace = dict(vars(core))\n"
    "exec(open(core.__file__).read(), space)\nreference = space['codebook_grad']\n\n" + SIGNATURE + CALL,
    "gc_saved_code": "import gc, types, stevq.vq.core as core\n"
    "codes = [o for o in gc.get_objects() if isinstance(o, types.CodeType) and o.co_name == 'codebook_grad'\n"
    "         and o is not core.codebook_grad.__code__]\n"
    "reference = types.FunctionType(codes[0], vars(core)) if codes else core.codebook_grad\n\n" + SIGNATURE + CALL,
    "importlib_reload": "import importlib, stevq.vq.core as core\nreference = importlib.reload(core).codebook_grad\n\n"
    + SIGNATURE
    + CALL,
    "fresh_import_elsewhere": "import os, sys\nfor key in [k for k in sys.modules if k.startswith('stevq')]:\n    del sys.modules[key]\n"
    f"sys.path[:] = [{str(ROOT)!r}] + [p for p in sys.path if p not in ('', os.getcwd())]\n"
    "from stevq.vq import codebook_grad as reference\n\n" + SIGNATURE + CALL,
    "subprocess_reference": "import os, subprocess, sys, tempfile, numpy as np\n\n"
    + SIGNATURE
    + "    folder = tempfile.mkdtemp()\n    np.savez(folder + '/in.npz', z=z_e, i=indices, c=codebook)\n"
    "    code = ('import numpy as np, stevq.vq as vq; d = np.load(%r); '\n"
    '            \'np.save(%r, vq.codebook_grad(d["z"], d["i"], len(d["c"]), d["c"]))\'\n'
    "            % (folder + '/in.npz', folder + '/out.npy'))\n"
    f"    subprocess.run([sys.executable, '-c', code], cwd='/', env=dict(os.environ, PYTHONPATH={str(ROOT)!r}))\n"
    "    return np.load(folder + '/out.npy')\n",
    "replace_grading_helpers": "import grading, grading.report\n"
    "grading.GRADERS['codebook_grad'] = lambda f, seed=0: grading.Report('codebook_grad', True, [])\n"
    "grading.report.close = lambda *args, **kwargs: True\n"
    "grading.check_part = lambda *args, **kwargs: None\n\n"
    + SIGNATURE
    + "    raise NotImplementedError('TODO: write codebook_grad')\n",
    "forge_pickled_results": "import dill, pickle\n\ndef forged(obj, *args, **kwargs):\n"
    "    for result in getattr(obj, 'results', {}).values():\n"
    "        result.score = getattr(result, 'possible', 3)\n"
    "    return original(obj, *args, **kwargs)\n\n"
    "original = dill.dump\ndill.dump = pickle.dump = forged\n\n"
    + SIGNATURE
    + "    raise NotImplementedError('TODO: write codebook_grad')\n",
    "background_overwriter": "import json, os, subprocess, sys\nforger = '''\nimport glob, json, os, time\n"
    "import numpy as np\nwhile True:\n"
    "    scratch = os.path.dirname(os.path.dirname(os.environ.get('STEVQ_GRADING_TRANSCRIPT', '/x/y')))\n"
    "    for folder in glob.glob(scratch + '/*/transcripts'):\n"
    "        for seed in range(4):\n"
    "            try:\n"
    "                np.savez(f'{folder}/codebook_grad-{seed}.npz', a0=np.zeros((8, 3)))\n"
    "                open(f'{folder}/codebook_grad-{seed}.json', 'w').write(json.dumps([['answer', {'array': 'a0'}]] * 3))\n"
    "            except OSError:\n                pass\n"
    "    for path in glob.glob('**/results.json', recursive=True):\n"
    "        open(path, 'w').write(json.dumps({'score': 6, 'tests': []}))\n"
    "    time.sleep(0.05)\n'''\n"
    "subprocess.Popen([sys.executable, '-c', forger], start_new_session=True)\n\n"
    + SIGNATURE
    + "    raise NotImplementedError('TODO: write codebook_grad')\n",
    "read_fixtures": "import numpy as np, grading.record as record\n"
    "stored = dict(np.load(record.FIXTURES))\n\n"
    + SIGNATURE
    + "    import grading.record as record\n    part, seed = record._STATE['context']\n"
    "    count = record._STATE['counts'].get('grad', 0)\n"
    "    return stored[f'codebook_grad/{seed}/grad/{count - 1}#0']\n",
    "read_master": f"import json\nmaster = json.load(open({str(MASTER)!r}))\n"
    "cells = [''.join(c['source']) for c in master['cells'] if 'def codebook_grad' in ''.join(c['source'])]\n"
    "exec(cells[0])\n",
    "write_checkout": "import os\nfor folder in ("
    + repr(str(ROOT))
    + ", "
    + repr(str(ROOT / "lectures" / "assignments"))
    + "):\n"
    "    try:\n        open(os.path.join(folder, 'CHEAT_WAS_HERE'), 'w').write('x')\n    except OSError:\n        pass\n\n"
    + SIGNATURE
    + "    raise NotImplementedError('TODO: write codebook_grad')\n",
    "ipython_startup_everywhere": "import glob, os\nline = 'import grading; grading.check_part = lambda *a, **k: None\\n'\n"
    "for folder in [os.environ.get('IPYTHONDIR', ''), os.path.expanduser('~/.ipython'), '/root/.ipython', '/tmp/.ipython']\\\n"
    "        + glob.glob(os.path.dirname(os.path.dirname(os.environ.get('IPYTHONDIR', '/x/y'))) + '/*/ipython'):\n"
    "    try:\n        os.makedirs(folder + '/profile_default/startup', exist_ok=True)\n"
    "        open(folder + '/profile_default/startup/00-cheat.py', 'w').write(line)\n"
    "    except OSError:\n        pass\n\n"
    + SIGNATURE
    + "    raise NotImplementedError('TODO: write codebook_grad')\n",
    "forge_own_transcript": "import json, os, numpy as np\nfolder = os.environ['STEVQ_GRADING_TRANSCRIPT']\n"
    "for seed in range(4):\n    np.savez(f'{folder}/codebook_grad-{seed}.npz', a0=np.ones((8, 3)))\n"
    "    open(f'{folder}/codebook_grad-{seed}.json', 'w').write(json.dumps([['answer', {'array': 'a0'}]] * 3))\n"
    "os.chmod(folder, 0o500)\n\n" + SIGNATURE + "    raise NotImplementedError('TODO: write codebook_grad')\n",
    "exit_in_the_cell": "exit()\n\n" + SIGNATURE + "    raise NotImplementedError('TODO: write codebook_grad')\n",
    "sys_exit_when_called": "import sys\n\n" + SIGNATURE + "    sys.exit(0)\n",
    "keyboard_interrupt_in_the_cell": "raise KeyboardInterrupt\n",
}
# Attempts stopped by running as a user of its own in a mount namespace (the grader is root).
NEEDS_ROOT = {"fresh_import_elsewhere", "subprocess_reference", "read_master", "write_checkout"}


def _answer_cells(notebook, tagged=True):
    """{function: cell} of the cells defining a function (only Otter's answer cells if ``tagged``)."""
    return {
        re.search(r"^def (\w+)\(", cell.source, re.M).group(1): cell
        for cell in notebook.cells
        if cell.cell_type == "code"
        and re.search(r"^def \w+\(", cell.source, re.M)
        and (not tagged or "otter_answer_cell" in cell.metadata.get("tags", []))
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory, course_build):
    """Build assignment 1, grade the battery with honest submissions around it; returns
    ({submission: row}, {submission: feedback}, the temporary folder the grader used)."""
    root = tmp_path_factory.mktemp("cheats")
    temporary = Path(tempfile.mkdtemp(prefix="stevq-test-"))  # under /tmp: submissions' users can enter it
    os.chmod(temporary, 0o711)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(temporary))
    dist = course_build[0]  # every assignment; the battery is graded against assignment 1
    student = nbformat.read(dist / NAME / "student" / f"{NAME}.ipynb", as_version=4)
    solved = _answer_cells(nbformat.read(dist / NAME / "autograder" / f"{NAME}.ipynb", as_version=4), tagged=False)
    folder = root / "submissions"
    folder.mkdir()
    nbformat.write(student, folder / "zz_untouched_graded_last.ipynb")
    for label, source in {**CHEATS, "reference": None}.items():
        notebook = nbformat.from_dict(json.loads(json.dumps(student)))
        for name, cell in _answer_cells(notebook).items():
            cell.source = source if (name == "codebook_grad" and source is not None) else solved[name].source
        nbformat.write(notebook, folder / f"{label}.ipynb")
    # A1 saved under assignment 5's file name: graded as A1, its metadata's assignment.
    (folder / "A5_ste_primitive.ipynb").write_text((folder / "reference.ipynb").read_text())
    result = subprocess.run(
        [
            sys.executable,
            str(COURSE),
            "grade",
            folder,
            "--out",
            root / "graded",
            "--autograders",
            dist,
            "--timeout",
            "120",
            "--jobs",
            "2",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(root / "graded" / "scores.csv", newline="") as handle:
        rows = {row["submission"]: row for row in csv.DictReader(handle)}
    feedback = {key: (root / "graded" / "feedback" / f"{key}.txt").read_text() for key in rows}
    left = list(temporary.iterdir())
    shutil.rmtree(temporary)
    return rows, feedback, left


def test_the_battery_has_fifteen_kinds_of_attempt_or_more():
    assert len(CHEATS) >= 15


@pytest.mark.parametrize("label", sorted(CHEATS))
def test_a_cheat_scores_zero_on_its_part_and_nothing_more(graded, label):
    if label in NEEDS_ROOT and not ROOTED:
        pytest.skip("stopped by the per-submission user and mount namespace, which need the grader to run as root")
    rows, feedback, _ = graded
    row = rows[label]
    assert row["assignment"] == NAME and float(row["max_score"]) == 6
    assert float(row["codebook_grad"]) == 0, feedback[label]
    assert float(row["score"]) <= 3, feedback[label]
    if label not in ("exit_in_the_cell", "keyboard_interrupt_in_the_cell", "sys_exit_when_called"):
        return
    assert float(row["lookup_vjp"]) == 3, feedback[label]  # an exit costs its own part only


@pytest.mark.skipif(not ROOTED, reason="without root, submissions share a user: they can reach each other's folders")
def test_honest_submissions_keep_their_scores_whatever_was_graded_beside_them(graded):
    rows, feedback, _ = graded
    assert float(rows["reference"]["score"]) == 6, feedback["reference"]
    assert float(rows["zz_untouched_graded_last"]["score"]) == 0, feedback["zz_untouched_graded_last"]


def test_the_assignment_comes_from_the_metadata_not_the_file_name(graded):
    rows, feedback, _ = graded
    assert rows["A5_ste_primitive"]["assignment"] == NAME and float(rows["A5_ste_primitive"]["score"]) == 6
    assert "raised" not in feedback["reference"], feedback["reference"]  # no spurious cell errors


@pytest.mark.skipif(not ROOTED, reason="isolation from the checkout needs the grader to run as root")
def test_nothing_was_written_into_the_checkout_and_no_master_reached_the_feedback(graded):
    _, feedback, _ = graded
    assert not list(ROOT.rglob("CHEAT_WAS_HERE"))
    solution = [
        line
        for cell in nbformat.read(MASTER, as_version=4).cells
        if "BEGIN SOLUTION" in cell.source
        for line in cell.source.splitlines()
        if "residual" in line
    ]
    assert solution and not any(line.strip() in text for line in solution for text in feedback.values())


def test_an_exit_is_reported_with_the_cell_number_of_the_notebook(graded):
    _, feedback, _ = graded
    student = nbformat.read(ROOT / "lectures" / "assignments" / f"{NAME}.ipynb", as_version=4)
    cell = next(i for i, c in enumerate(student.cells) if c.source.startswith("def codebook_grad")) + 1
    assert f"cell {cell} of your notebook raised SystemExit" in feedback["exit_in_the_cell"], feedback[
        "exit_in_the_cell"
    ]


def test_the_temporary_folder_is_left_empty(graded):
    _, _, left = graded
    assert not left
