"""Where a run's numbers come from: the commit that computed each part, the data it read, and the
time it took.

A run directory gets, beside ``parts/NAME.json``:

    provenance/NAME.json   one per part: {"commit", "seconds" (wall), "cpu_seconds", "finished"}
    provenance.json        the whole run: the experiment that wrote it (its command-line name), the
                           commits of its parts, the data, the seconds of every part, and one entry
                           per invocation of the command that completed
                           ({"started", "wall_seconds", "jobs", "cores", "parts_computed", "commit"})

The commit is ``git rev-parse HEAD`` of the checkout stevq runs from, with "+modified" when its
tracked files under ``stevq/`` differ from that commit, or "unknown" outside a git checkout.
The data is ``stevq.data.origin``'s answer (the IDX files' SHA-256, or the embedded sample), or
``{"data": "generated"}`` for experiments that draw their data from the seed
(``protocol.generated``); it is part of the run's ``config.json``, so resuming over other data is
refused.
"""

import datetime
import functools
import os
import pathlib
import subprocess

from stevq import runio


@functools.lru_cache(maxsize=1)
def commit():
    """The commit of the stevq checkout this process runs ("+modified" if stevq/ has edits)."""
    root = pathlib.Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return "unknown"
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=20)
        if head.returncode != 0:
            return "unknown"
        changes = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "stevq"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("+modified" if changes.stdout.strip() else "")


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def experiment_of(run_dir):
    """The name of the experiment that wrote the run in ``run_dir`` (a seed's directory: the run
    over seeds that holds it), as its provenance.json records it; None where none is recorded."""
    run_dir = pathlib.Path(run_dir)
    for directory in (run_dir, run_dir.parent) if run_dir.name.startswith("seed-") else (run_dir,):
        try:
            record = runio.load_json(directory / "provenance.json")
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("experiment"), str):
            return record["experiment"]
    return None


def part_path(run_dir, name):
    return pathlib.Path(run_dir) / "provenance" / f"{name}.json"


def save_part(run_dir, name, seconds, cpu_seconds):
    """Record how part ``name`` of ``run_dir`` was computed (before the part itself is saved)."""
    runio.save_json(
        part_path(run_dir, name),
        {"commit": commit(), "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3), "finished": now()},
    )


def _parts(run_dir, names):
    found = {}
    for name in names:
        path = part_path(run_dir, name)
        found[name] = runio.load_json(path) if path.exists() else None
    return found


def save_run(out_dir, experiment, data, run_dirs, names, invocation=None):
    """Write ``out_dir/provenance.json`` of a run of ``experiment`` (its name) over the parts
    ``names`` of each of ``run_dirs`` (one directory per seed, or ``out_dir`` itself), adding
    ``invocation`` to those already listed."""
    out_dir = pathlib.Path(out_dir)
    path = out_dir / "provenance.json"
    earlier = runio.load_json(path).get("invocations", []) if path.exists() else []
    parts = {}
    for run_dir in run_dirs:
        prefix = "" if pathlib.Path(run_dir) == out_dir else f"{pathlib.Path(run_dir).name}/"
        parts.update({prefix + name: record for name, record in _parts(run_dir, names).items()})
    known = [record for record in parts.values() if record is not None]
    record = {
        "experiment": experiment,
        "data": data,
        "commits": sorted({r["commit"] for r in known}),
        "parts": len(parts),
        "parts_without_provenance": sorted(n for n, r in parts.items() if r is None),
        "part_seconds_total": round(sum(r["seconds"] for r in known), 1),
        "part_seconds": {name: r["seconds"] for name, r in parts.items() if r is not None},
        "invocations": earlier + ([invocation] if invocation else []),
    }
    runio.save_json(path, record)
    return record


def invocation(started, wall_seconds, jobs, parts_computed):
    return {
        "started": started,
        "wall_seconds": round(wall_seconds, 1),
        "jobs": jobs,
        "cores": os.cpu_count(),
        "parts_computed": parts_computed,
        "commit": commit(),
    }
