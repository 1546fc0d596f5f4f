"""The ledger of claims: every claim of the three papers that stevq tests, with the command that
tests it, stevq's numbers over seeds and a verdict, built from run outputs (``metrics.json``).

    python -m stevq claims runs/ [--out docs/claims.md]

``find_runs`` collects the finished runs below a directory: a run over several seeds is the
directory holding ``seed-N/metrics.json`` (every finished seed counts), a single-seed run its own
``metrics.json``; the experiment is recognised from its metrics. Each claim (``claims_list``)
takes the per-seed metrics of one run, computes its numbers (mean ± sample sd over the seeds) and
a list of *checks*, each a condition on those numbers stated in the claim's rule. The verdict is
computed, never typed: **reproduced** when every check holds, **partly** when some do (the row
says which: the regime), **not reproduced** when none does. Of several runs of an experiment the
ledger uses the first that has what the claim needs, full mode before quick, then more seeds, then
the newest; a claim without one says "not run" and gives the command.
"""
import dataclasses
import datetime
import pathlib

from stevq import runio
from stevq.experiments import seeds as across_seeds

VERDICTS = ("reproduced", "partly", "not reproduced")


class Missing(Exception):
    """The run lacks a number the claim needs."""


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


def experiment_of(metrics):
    """The experiment that wrote ``metrics`` (None if unknown)."""
    if "grid" in metrics and "instability" in metrics:
        return "quant-act"
    if "random_starts" in metrics:
        return "yin2019-toy"
    if "covariate_shift" in metrics:
        return "vq-toy"
    rows = metrics.get("rows")
    if isinstance(rows, list) and rows:
        if "K" in rows[0]:
            return "vq-bottleneck"
        if "row" in rows[0]:
            return "vq-ablation"
    return None


def _load(path):
    try:
        return runio.load_json(path)
    except (OSError, ValueError):
        return None


def find_runs(root):
    """``{experiment: [RunRecord, ...]}``, each list in order of preference."""
    root = pathlib.Path(root)
    runs = {}
    for path in sorted(root.rglob("metrics.json")):
        directory = path.parent
        stored = _load(path)
        if stored is None or "seeds" in stored.get("metrics", {}) and "mean_sd" in stored["metrics"]:
            continue  # a multi-seed run's aggregate: its seed directories are read instead
        parent_config = _load(directory.parent / "config.json") if directory.name.startswith("seed-") else None
        if parent_config is not None and "seeds" in parent_config:
            continue  # read with its parent below
        metrics = stored.get("metrics", {})
        name = experiment_of(metrics)
        if name:
            config = stored.get("config", {})
            runs.setdefault(name, []).append(RunRecord(directory, name, [config.get("seed")], config, [metrics],
                                                       path.stat().st_mtime))
    for config_path in sorted(root.rglob("config.json")):
        config = _load(config_path)
        if not isinstance(config, dict) or "seeds" not in config:
            continue
        found = [(seed, _load(config_path.parent / f"seed-{seed}" / "metrics.json")) for seed in config["seeds"]]
        found = [(seed, stored) for seed, stored in found if stored is not None]
        name = found and experiment_of(found[0][1].get("metrics", {}))
        if name:
            mtime = max((config_path.parent / f"seed-{s}" / "metrics.json").stat().st_mtime for s, _ in found)
            runs.setdefault(name, []).append(RunRecord(config_path.parent, name, [s for s, _ in found],
                                                       found[0][1].get("config", config),
                                                       [stored["metrics"] for _, stored in found], mtime))
    for records in runs.values():
        records.sort(key=lambda r: (r.quick, -len(r.seeds), -r.mtime))
    return runs


# ---------------------------------------------------------------- numbers and checks


def values(metrics, get):
    """``get(metrics)`` for every seed; a missing entry raises ``Missing``."""
    out = []
    for one in metrics:
        try:
            value = get(one)
        except (KeyError, IndexError, StopIteration, TypeError) as err:
            raise Missing(str(err)) from None
        out.append(across_seeds.NON_FINITE.get(value, value) if isinstance(value, str) else float(value))
    return out


def mean(xs):
    return across_seeds.statistic(xs)["mean"]


def ms(xs, scale=1.0, digits=3, unit=""):
    """``mean ± sd`` of ``xs`` (times ``scale``)."""
    stat = across_seeds.statistic([x * scale for x in xs])
    return f"{stat['mean']:.{digits}g} ± {stat['sd']:.2g}{unit}"


def clearly_better(before, after, higher_is_better=True):
    """Paired by seed: the mean change (after - before, signed so that positive is better) exceeds
    the sample standard deviation of the changes (any positive change for one seed)."""
    stat = across_seeds.statistic([(a - b) * (1 if higher_is_better else -1) for a, b in zip(after, before)])
    return stat["mean"] > stat["sd"] if stat["n"] > 1 else stat["mean"] > 0


def row_where(rows, **keys):
    """The row of ``rows`` whose fields equal ``keys``."""
    return next(r for r in rows if all(r.get(k) == v for k, v in keys.items()))


def verdict(checks):
    """(verdict, regime) from ``[(label, holds), ...]``."""
    if not checks:
        raise Missing("no checks")
    held = [label for label, holds in checks if holds]
    failed = [label for label, holds in checks if not holds]
    if not failed:
        return VERDICTS[0], "; ".join(held)
    if not held:
        return VERDICTS[2], "; ".join(failed)
    return VERDICTS[1], f"holds: {'; '.join(held)}. fails: {'; '.join(failed)}"


# ---------------------------------------------------------------- commands


def _setting(value):
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def command(record=None, experiment=None):
    """The command that makes ``record`` (or, for a claim not run, the full run of ``experiment``)."""
    if record is None:
        return f"python -m stevq run {experiment} --seeds 0,1,2"
    from stevq.experiments import get
    module = get(record.experiment)
    words = ["python -m stevq run", record.experiment] + (["--quick"] if record.quick else [])
    words.append(f"--seeds {','.join(map(str, record.seeds))}" if len(record.seeds) > 1 else f"--seed {record.seeds[0]}")
    try:
        defaults = runio._plain(module.Config(quick=record.quick))
        if hasattr(module, "effective"):
            defaults = runio._plain(module.effective(module.Config(quick=record.quick)))
    except Exception:  # noqa: BLE001 - a changed Config: the command without --set
        defaults = record.config
    for field, value in record.config.items():
        if field not in ("seed", "quick", "seeds") and field in defaults and defaults[field] != value:
            words.append(f"--set {field}={_setting(value)}")
    return " ".join(words)


# ---------------------------------------------------------------- the ledger


def evaluate(claim, runs):
    """(record or None, numbers, verdict, regime) of ``claim`` from the first run that has what it needs."""
    for record in runs.get(claim.experiment, []):
        try:
            numbers, checks = claim.test(record.metrics, record.seeds)
            found, regime = verdict(checks)
        except Missing:
            continue
        mode = "quick mode" if record.quick else "full mode"
        return record, f"{numbers} (n = {len(record.seeds)} seeds, {mode})", found, regime
    return None, "not run", "not run", ""


def ledger(root):
    """The rows of the ledger: one dict per claim."""
    from stevq.experiments.claims_list import CLAIMS
    runs = find_runs(root)
    rows = []
    for number, claim in enumerate(CLAIMS, 1):
        record, numbers, found, regime = evaluate(claim, runs)
        rows.append({"number": number, "paper": claim.paper, "claim": claim.statement, "rule": claim.rule,
                     "command": command(record, claim.experiment), "run": str(record.dir) if record else "",
                     "numbers": numbers, "verdict": found, "regime": regime})
    return rows


def _escape(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(rows, root):
    """docs/claims.md: the table, then how each verdict was computed."""
    counts = {v: sum(r["verdict"] == v for r in rows) for v in (*VERDICTS, "not run")}
    lines = ["# Claims of the three papers, tested by stevq", "",
             f"Generated by `python -m stevq claims {root}` on {datetime.date.today().isoformat()} from the runs below "
             f"`{root}`; do not edit by hand. Numbers: mean ± sample standard deviation over the seeds of the run "
             "named in the row (every seed's value is in its metrics.json). Verdict: **reproduced** when every check "
             "of the claim's rule holds, **partly** when some do (the row says which: that is the regime), **not "
             "reproduced** when none does; a claim whose run is missing says *not run* and gives the command. "
             "\"Clearly better\" means, paired by seed, a mean change in the better direction larger than the "
             "standard deviation of the changes.", "",
             "Totals: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".", "",
             "| # | paper | claim | command | stevq (mean ± sd over seeds) | verdict |", "|---|---|---|---|---|---|"]
    for r in rows:
        verdict_cell = f"**{r['verdict']}**" + (f": {r['regime']}" if r["regime"] else "")
        lines.append(f"| {r['number']} | {r['paper']} | {_escape(r['claim'])} | `{r['command']}` | "
                     f"{_escape(r['numbers'])} | {_escape(verdict_cell)} |")
    lines += ["", "## Rules", ""]
    lines += [f"{r['number']}. {r['rule']}" + (f" Run: `{r['run']}`." if r["run"] else "") for r in rows]
    return "\n".join(lines) + "\n"


def write(root, out):
    """Build the ledger from the runs below ``root`` and write it to ``out``; returns the rows."""
    rows = ledger(root)
    runio.save_text(out, markdown(rows, root))
    return rows

