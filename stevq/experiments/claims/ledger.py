"""The ledger: every claim (``catalogue.CLAIMS``) decided from finished runs, with the command that
tests it, stevq's numbers over seeds, the rule, the verdict and, for the authors' example, what
their own code shows.

``find_runs`` collects the finished runs below a directory (``records/`` for the committed record):
a run over several seeds is the directory holding ``seed-N/metrics.json``, a single-seed run its own
``metrics.json``; the experiment is the one its provenance.json names (``provenance.experiment_of``;
the runner records it). The verdict is computed, never typed: **reproduced** when every check of
the rule holds, **partly** when some do (the row says which: the regime), **not reproduced** when
none does. Only a full-mode run over at least three seeds
decides; from a quick or a smaller run the row says **indicative** and what it would say. Of several
runs the ledger uses the first that has what the claim needs: full mode before quick, then more
seeds, then the newest.
"""

import dataclasses
import pathlib

from stevq import runio
from stevq.experiments import get, provenance
from stevq.experiments.claims.catalogue import CLAIMS
from stevq.experiments.claims.rules import VERDICTS, Missing, verdict

INDICATIVE = "indicative"
MIN_SEEDS = 3


@dataclasses.dataclass
class RunRecord:
    """A finished run: its directory, experiment, seeds, config and metrics per seed."""

    dir: pathlib.Path
    experiment: str
    seeds: list
    config: dict
    metrics: list  # one metrics dict per seed, in the order of ``seeds``
    mtime: float

    @property
    def quick(self):
        return bool(self.config.get("quick"))

    @property
    def decides(self):
        return not self.quick and len(self.seeds) >= MIN_SEEDS


def _load(path):
    try:
        return runio.load_json(path)
    except (OSError, ValueError):
        return None


def damaged_results(root):
    """``[(path, reason)]`` for every metrics.json below ``root`` that is not a run's result: not
    JSON (truncated), or JSON of another shape. The ledger leaves them out and says so."""
    damaged = []
    for path in sorted(pathlib.Path(root).rglob("metrics.json")):
        try:
            stored = runio.load_json(path)
        except (OSError, ValueError) as err:
            damaged.append((path, f"not readable JSON: {err}"))
            continue
        if (
            not isinstance(stored, dict)
            or not isinstance(stored.get("metrics"), dict)
            or not isinstance(stored.get("config", {}), dict)
        ):
            damaged.append((path, "not the shape of a run's metrics.json (a 'metrics' and a 'config' object)"))
        elif "mean_sd" not in stored["metrics"] and provenance.experiment_of(path.parent) is None:
            damaged.append((path, "its run names no experiment (no provenance.json with an 'experiment')"))
    return damaged


def find_runs(root):
    """``{experiment: [RunRecord, ...]}``, each list in order of preference."""
    root = pathlib.Path(root)
    runs = {}
    for path in sorted(root.rglob("metrics.json")):
        directory = path.parent
        stored = _load(path)
        if not isinstance(stored, dict) or "seeds" in stored.get("metrics", {}) and "mean_sd" in stored["metrics"]:
            continue  # a multi-seed run's aggregate: its seed directories are read instead
        parent_config = _load(directory.parent / "config.json") if directory.name.startswith("seed-") else None
        if isinstance(parent_config, dict) and "seeds" in parent_config:
            continue  # read with its parent below
        metrics = stored.get("metrics")
        if not isinstance(metrics, dict) or not isinstance(stored.get("config", {}), dict):
            continue  # damaged: named by damaged_results
        name = provenance.experiment_of(directory)
        if name:
            config = stored.get("config", {})
            runs.setdefault(name, []).append(
                RunRecord(directory, name, [config.get("seed")], config, [metrics], path.stat().st_mtime)
            )
    for config_path in sorted(root.rglob("config.json")):
        config = _load(config_path)
        if not isinstance(config, dict) or "seeds" not in config:
            continue
        found = [(seed, _load(config_path.parent / f"seed-{seed}" / "metrics.json")) for seed in config["seeds"]]
        found = [
            (seed, stored)
            for seed, stored in found
            if isinstance(stored, dict) and isinstance(stored.get("metrics"), dict)
        ]
        name = found and provenance.experiment_of(config_path.parent)
        if name:
            mtime = max((config_path.parent / f"seed-{s}" / "metrics.json").stat().st_mtime for s, _ in found)
            runs.setdefault(name, []).append(
                RunRecord(
                    config_path.parent,
                    name,
                    [s for s, _ in found],
                    found[0][1].get("config", config),
                    [stored["metrics"] for _, stored in found],
                    mtime,
                )
            )
    for records in runs.values():
        records.sort(key=lambda r: (r.quick, -len(r.seeds), -r.mtime))
    return runs


def _setting(value):
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def command(record=None, claim=None):
    """The command that makes ``record`` (or, for a claim not run, the full run of its experiment)."""
    if record is None:
        return " ".join(filter(None, ["python -m stevq run", claim.experiment, claim.settings, "--seeds 0,1,2"]))
    experiment = get(record.experiment)
    words = ["python -m stevq run", record.experiment] + (["--quick"] if record.quick else [])
    words.append(
        f"--seeds {','.join(map(str, record.seeds))}" if len(record.seeds) > 1 else f"--seed {record.seeds[0]}"
    )
    try:
        defaults = runio._plain(experiment.Config(quick=record.quick))
    except Exception:  # noqa: BLE001 - a changed Config: the command without --set
        defaults = record.config
    for field, value in record.config.items():
        if field not in ("seed", "quick", "seeds") and field in defaults and defaults[field] != value:
            words.append(f"--set {field}={_setting(value)}")
    return " ".join(words)


def evaluate(claim, runs):
    """(record or None, numbers, verdict, regime) of ``claim`` from the first run that has what it needs."""
    for record in runs.get(claim.experiment, []):
        if not claim.where(record.config):
            continue
        try:
            numbers, checks = claim.test(record.metrics, record.seeds)
            found, regime = verdict(checks)
        except Missing:
            continue
        mode = "quick mode" if record.quick else "full mode"
        if not record.decides:
            regime = (
                f"{found} on this run, which cannot decide: a verdict needs {MIN_SEEDS} seeds of a full-mode "
                f"run ({regime})"
            )
            found = INDICATIVE
        return record, f"{numbers} (n = {len(record.seeds)} seeds, {mode})", found, regime
    return None, "not run", "not run", ""


def ledger(root):
    """The rows of the ledger: one dict per claim."""
    runs = find_runs(root)
    rows = []
    for number, claim in enumerate(CLAIMS, 1):
        record, numbers, found, regime = evaluate(claim, runs)
        where = (
            str(record.dir.relative_to(root))
            if record and record.dir.is_relative_to(root)
            else (str(record.dir) if record else "")
        )
        rows.append(
            {
                "number": number,
                "paper": claim.paper,
                "claim": claim.statement,
                "rule": claim.rule,
                "command": command(record, claim),
                "run": where,
                "numbers": numbers,
                "verdict": found,
                "regime": regime,
                "authors": claim.authors,
            }
        )
    return rows


def _escape(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _provenance(root, rows):
    """One line per run the ledger read: its commits, data and time (its provenance.json)."""
    lines = []
    for run in sorted({r["run"] for r in rows if r["run"]}):
        record = _load(pathlib.Path(root) / run / "provenance.json")
        if not isinstance(record, dict):
            lines.append(f"- `{run}`: no provenance.json")
            continue
        data = record.get("data", {})
        data = (
            f"{data.get('data')} IDX files (SHA-256 of train-images {data['files'].get('train-images-idx3-ubyte.gz', '?')[:16]}...)"
            if "files" in data
            else f"{data.get('data')} sample inside stevq"
            if "sample" in data
            else data.get("data")
        )
        wall = sum(i.get("wall_seconds", 0) for i in record.get("invocations", []))
        lines.append(
            f"- `{run}`: commit {', '.join(c[:10] for c in record.get('commits', []))}; data {data}; "
            f"{record.get('parts', '?')} parts, {record.get('part_seconds_total', 0) / 60:.1f} core-minutes; "
            f"wall time {wall / 60:.1f} min over {len(record.get('invocations', []))} invocation(s)"
        )
    return lines


def markdown(rows, root):
    """docs/claims.md: the table, the rules, and where the numbers come from."""
    counts = {v: sum(r["verdict"] == v for r in rows) for v in (*VERDICTS, INDICATIVE, "not run")}
    lines = [
        "# Claims of the three papers, tested by stevq",
        "",
        f"Generated by `python -m stevq claims {root}` from the runs below `{root}`; do not edit by hand (a test "
        "regenerates it). Numbers: mean ± sample standard deviation over the seeds of the run named in the row "
        "(every seed's value is in its metrics.json). Verdict: **reproduced** when every check of the claim's rule "
        "holds, **partly** when some do (the row says which: that is the regime), **not reproduced** when none "
        f"does. Only a full-mode run over at least {MIN_SEEDS} seeds decides; a quicker run gives an "
        "**indicative** row. A claim whose run is missing says *not run* and gives the command.",
        "",
        "Totals: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".",
        "",
        "| # | paper | claim | command | stevq (mean ± sd over seeds) | authors' code | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        verdict_cell = f"**{r['verdict']}**" + (f": {r['regime']}" if r["regime"] else "")
        lines.append(
            f"| {r['number']} | {r['paper']} | {_escape(r['claim'])} | `{r['command']}` | "
            f"{_escape(r['numbers'])} | {_escape(r['authors'] or '-')} | {_escape(verdict_cell)} |"
        )
    lines += ["", "## Rules", ""]
    lines += [f"{r['number']}. {r['rule']}" + (f" Run: `{r['run']}`." if r["run"] else "") for r in rows]
    lines += ["", "## Where the numbers come from", "", *_provenance(root, rows)]
    damaged = damaged_results(root)
    if damaged:
        lines += ["", "## Damaged results, left out", "", *(f"- `{path}`: {reason}" for path, reason in damaged)]
    return "\n".join(lines) + "\n"


def write(root, out):
    """Build the ledger from the runs below ``root`` and write it to ``out``; returns the rows."""
    rows = ledger(root)
    runio.save_text(out, markdown(rows, root))
    return rows
