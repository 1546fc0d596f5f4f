"""What ``course.py grade`` does around Otter: a sandbox per submission, and a judge outside it.

Sandbox. Each submission runs (``otter run`` and the kernel it starts) in its own folder with its own
HOME, IPYTHONDIR and TMPDIR. When the grader runs as root it runs as a user of its own (a fresh uid,
``setpriv``) in a mount namespace (``unshare``) where the checkout, the build folder, the
submissions, the output folder and any installed stevq are covered by empty folders: it cannot read
the masters or the full library, nor write anything but its own folder; other submissions' folders
belong to other uids; with ``ip`` at hand it also gets a network of its own with nothing but
loopback (no download of stevq's public source). Its kernel gets the autograder's tests and the course build of stevq, and
fixtures of placeholders only (``grading.record``'s collect mode), never the expected values.

Judge. The kernel writes the student's answers to every check it ran (``grading.record``); after the
submission's processes are killed, the grader replays each check on those answers with the true
fixtures, in its own process: that is the score. Nothing the submission does in its kernel (patching
the graders, forging Otter's results, exiting early) reaches it; passing needs the right answers.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import grading
import numpy as np
from grading import record

# Run as the submission's user: Otter grades the notebook; the errors of its own cells go to
# errors.json, numbered as in the notebook (Otter's executed copy has cells of its own).
CHILD = r"""
import json, os, sys
sys.modules.setdefault("rfc3987_syntax", None)
import nbformat
from otter.run import main
submission, autograder, out = sys.argv[1:4]
results = main(submission, autograder=autograder, output_dir=out, no_logo=True)
sources = [cell.source for cell in nbformat.read(submission, as_version=4).cells]
errors, start = [], 0
for cell in getattr(results, "notebook", None) and results.notebook.cells or []:
    if cell.source not in sources[start:]:
        continue
    start = sources.index(cell.source, start)
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            errors.append({"cell": start + 1, "ename": output.get("ename"), "evalue": output.get("evalue", "")[:300]})
    start += 1
with open(out + "/errors.json", "w") as handle:
    json.dump(errors, handle)
sys.stdout.flush(); sys.stderr.flush()
os._exit(0)  # not a normal exit: it would join Otter's logging thread and tear down modules, ~0.9 s idle
"""
SKIP_IMPORTS = "import sys\nsys.modules.setdefault('rfc3987_syntax', None)  # see course.py\n"


def points_of(autograder):
    """{part: [(points, hidden), ...]} from the test files in an autograder zip, in file order."""
    parts = {}
    with zipfile.ZipFile(autograder) as archive:
        for name in sorted(archive.namelist()):
            if name.startswith("tests/") and name.endswith(".py"):
                source = archive.read(name).decode()
                cases = re.findall(r"@test_case\(points=([\d.]+), hidden=(True|False)\)", source)
                parts[Path(name).stem] = [(float(points), hidden == "True") for points, hidden in cases]
    return parts


def identify(path, known, default=None):
    """(assignment, problem): the assignment from the notebook's Otter metadata (never its file
    name); when that is unreadable, the folder of an assignment's name above it, else ``default``
    (or the only assignment built), with the problem that stopped grading."""
    folder = next((part for part in reversed(Path(path).parent.parts) if part in known), None)
    folder = folder or default or (next(iter(known)) if len(known) == 1 else None)
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
        name = notebook.get("metadata", {}).get("otter", {}).get("assignment_name")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as error:
        return folder, f"not a readable notebook ({type(error).__name__}: {str(error)[:120]}): scored 0"
    if name in known:
        return name, None
    return folder, (
        "its Otter metadata names no known assignment (metadata.otter.assignment_name = "
        f"{name!r}; known: {sorted(known)}): scored 0"
    )


def kernel_zip(autograder, target):
    """The autograder zip as a kernel sees it: tests and files (the course build and the graders)
    with placeholder fixtures; returns the path of the true fixtures, extracted beside ``target``."""
    fixtures = Path(target).with_suffix(".npz")
    with zipfile.ZipFile(autograder) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for name in source.namelist():
            if name == "files/grading/fixtures.npz":
                fixtures.write_bytes(source.read(name))
                with np.load(fixtures, allow_pickle=False) as data:
                    values = {key: data[key] for key in data.files}
                placeholder = Path(target).with_suffix(".placeholders.npz")
                record.save_fixtures(values, placeholder, placeholders=True)
                out.write(placeholder, name)
                placeholder.unlink()
            elif name.startswith(("tests/", "files/")) or name == "otter_config.json":
                out.writestr(name, source.read(name))
    return fixtures


def judge(part_points, workdir, fixtures):
    """Replay every check on the submission's recorded answers with the true fixtures:
    [{"name", "score", "max_score", "output"}] per part."""
    record.load_fixtures(fixtures)
    tests = []
    for part, cases in part_points.items():
        score, lines = 0.0, []
        for points, hidden in cases:
            verdict = None
            for seed in grading.SEEDS[hidden]:
                try:
                    answers = record.read_transcript(workdir, f"{part}-{seed}")
                except Exception as error:  # missing, a link, not JSON/npz: the submission's doing
                    verdict = (
                        f"no answers recorded for this check ({type(error).__name__}): the notebook "
                        "stopped, or the part's check cell did not run"
                    )
                    break
                with record.replaying(answers):
                    try:
                        report = grading.GRADERS[part](_not_run, seed=seed)
                    except Exception as error:  # a transcript the checks cannot read: zero, said so
                        verdict = f"the recorded answers could not be checked ({type(error).__name__})"
                        break
                if not report.passed:
                    verdict = str(report)
                    break
            score += 0.0 if verdict else points
            lines.append(
                f"{'hidden' if hidden else 'public'} checks: {'failed' if verdict else 'passed'} "
                f"({0 if verdict else points:g} / {points:g})" + (f"\n{verdict}" if verdict else "")
            )
        tests.append({"name": part, "score": score, "max_score": sum(p for p, _ in cases), "output": "\n".join(lines)})
    return tests


def _not_run(*args, **kwargs):
    raise RuntimeError("a replayed check never calls the student's function")


# ------------------------------------------------------------------------------------ sandbox


def isolating():
    """True when submissions can run as their own users in their own mount namespace."""
    return os.geteuid() == 0 and all(shutil.which(tool) for tool in ("unshare", "setpriv", "mount"))


def _installed_stevq():
    """Folders of a stevq importable outside the checkout (an installed copy), to be hidden."""
    code = "import importlib.util as u; s = u.find_spec('stevq'); print(s.origin if s else '')"
    found = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd="/",
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    ).stdout.strip()
    return [str(Path(found).parent)] if found else []


def _blocked_prefixes():
    """[(ancestor, child)]: the first folder above Python's install that other users cannot enter
    (e.g. /root), and the entry under it that must stay reachable."""
    pairs = set()
    for prefix in {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}:
        parts = Path(prefix).parts
        for depth in range(1, len(parts)):
            ancestor = Path(*parts[:depth])
            if not os.stat(ancestor).st_mode & 0o001:
                pairs.add((str(ancestor), parts[depth]))
                break
    return sorted(pairs)


def sandbox_command(argv, workdir, uid, hide, keep):
    """argv wrapped to run as ``uid`` in a mount namespace with ``hide`` covered by empty folders."""
    network = shutil.which("ip") is not None  # a network namespace of its own, loopback only (the kernel's sockets)
    lines = ["set -e"] + (["ip link set lo up"] if network else [])
    for index, (ancestor, child) in enumerate(_blocked_prefixes()):
        saved = f"{keep}/{index}"
        lines += [
            f"mkdir -p {_q(saved)}",
            f"mount --bind {_q(ancestor + '/' + child)} {_q(saved)}",
            f"mount -t tmpfs -o mode=755,size=1m tmpfs {_q(ancestor)}",
            f"mkdir -p {_q(ancestor + '/' + child)}",
            f"mount --move {_q(saved)} {_q(ancestor + '/' + child)}",
        ]
    for folder in hide:
        lines.append(f"[ -d {_q(folder)} ] && mount -t tmpfs -o mode=755,size=1m tmpfs {_q(folder)} || true")
    lines.append(
        f"exec setpriv --reuid={uid} --regid={uid} --clear-groups --no-new-privs " + " ".join(_q(a) for a in argv)
    )
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        *(["--net"] if network else []),
        "--",
        "/bin/sh",
        "-c",
        "\n".join(lines),
    ]


def _q(text):
    return "'" + str(text).replace("'", "'\"'\"'") + "'"


def prepare(workdir, submission, kernel_autograder, uid, notebook_name):
    """The submission's folder: its notebook (named as the assignment's, which its first cell opens), the kernel's zip, HOME, IPYTHONDIR (a startup file
    that keeps exit() from shutting the kernel down), TMPDIR; owned by ``uid`` when isolating."""
    workdir.mkdir(mode=0o700)
    shutil.copy(submission, workdir / notebook_name)
    shutil.copy(kernel_autograder, workdir / "autograder.zip")
    startup = workdir / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-grading.py").write_text(
        SKIP_IMPORTS + "get_ipython().user_ns['exit'] = get_ipython().user_ns['quit'] = "
        "lambda *args: (_ for _ in ()).throw(SystemExit(*args))\n"
    )
    for name in ("home", "tmp", "transcripts", "out"):
        (workdir / name).mkdir()
    if uid is not None:
        for path in [workdir, *workdir.rglob("*")]:
            os.chown(path, uid, uid, follow_symlinks=False)
    environment = {
        "PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin",
        "HOME": str(workdir / "home"),
        "USER": "student",
        "LOGNAME": "student",
        "IPYTHONDIR": str(workdir / "ipython"),
        "TMPDIR": str(workdir / "tmp"),
        "MPLBACKEND": "Agg",
        "OPENBLAS_NUM_THREADS": "1",
        "STEVQ_QUICK": "1",
        "JUPYTER_PLATFORM_DIRS": "1",
        record.TRANSCRIPT: str(workdir / "transcripts"),
    }
    argv = [
        sys.executable,
        "-c",
        CHILD,
        str(workdir / notebook_name),
        str(workdir / "autograder.zip"),
        str(workdir / "out"),
    ]
    return argv, environment


def kill_user(uid):
    """SIGKILL every process of ``uid`` (a submission's kernel, and whatever it left running)."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uids = next(line for line in status.read_text().splitlines() if line.startswith("Uid:")).split()[1:]
            if str(uid) in uids:
                os.kill(int(status.parent.name), signal.SIGKILL)
        except (OSError, StopIteration, ValueError):
            pass


def remove_leftovers(uid):
    """Files a submission's user left in the shared temporary folders."""
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        for path in Path(folder).glob("*") if Path(folder).is_dir() else []:
            try:
                if path.lstat().st_uid == uid:
                    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            except OSError:
                pass
