"""Several seeds and worker processes: --seeds / --jobs, the scheduler, mean ± sd over seeds."""

import json
import math

import numpy as np
import pytest
from support import stevq_process
from test_cli import SYNTHETIC

from stevq.__main__ import main
from stevq.experiments import runner as seeds  # the results over seeds are the runner's
from stevq.experiments.protocol import Part, ordered

pytestmark = pytest.mark.slow  # worker processes, signals: not in the quick loop

SMALL = [*SYNTHETIC, "--set", "stes=('identity', 'relu')", "--set", "instability_from=relu"]
TWO_SEEDS = "run quant-act --quick --no-progress --seeds 0,1".split()


def _metrics(path):
    return json.loads(path.read_text())["metrics"]


def test_two_workers_give_the_numbers_of_one(tmp_path, capsys):
    runs = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        assert main([*TWO_SEEDS, "--jobs", jobs, "--out", str(out), *SMALL]) == 0
        runs[jobs] = out
    for name in ("metrics.json", "seed-0/metrics.json", "seed-1/metrics.json"):
        assert _metrics(runs["1"] / name) == _metrics(runs["2"] / name), name  # bit for bit
    one, two = _metrics(runs["2"] / "seed-0/metrics.json"), _metrics(runs["2"] / "seed-1/metrics.json")
    assert one["grid"][0]["train_loss"] != two["grid"][0]["train_loss"]  # the seeds differ
    # The aggregate: mean and sample sd of the seeds' own numbers, which it lists.
    aggregate = _metrics(runs["2"] / "metrics.json")
    assert aggregate["seeds"] == [0, 1]
    cell = aggregate["mean_sd"]["grid"][1]
    assert (cell["net"], cell["bits"], cell["ste"]) == ("mlp", 2, "relu")
    values = [one["grid"][1]["train_loss"], two["grid"][1]["train_loss"]]
    assert cell["train_loss"]["values"] == values
    assert cell["train_loss"]["mean"] == pytest.approx(np.mean(values))
    assert cell["train_loss"]["sd"] == pytest.approx(np.std(values, ddof=1))
    summary = (runs["2"] / "summary.md").read_text()
    assert "mean ± sd over 2 seeds (0, 1)" in summary
    assert f"{cell['train_loss']['mean']:.4g} ± {cell['train_loss']['sd']:.2g}" in summary
    assert (runs["2"] / "seed-1" / "summary.md").is_file() and (runs["2"] / "seed-1" / "loss_curves.png").is_file()


def test_a_resumed_run_over_seeds_computes_only_the_missing_parts(tmp_path, capsys):
    out = tmp_path / "run"
    command = [
        "run",
        "quant-act",
        "--quick",
        "--seeds",
        "3,4",
        "--jobs",
        "2",
        "--out",
        str(out),
        "--no-progress",
        *SMALL,
        "--set",
        "instability_steps=0",
    ]
    assert main(command) == 0
    stamps = {path: path.stat().st_mtime_ns for path in out.glob("seed-*/parts/*")}
    before = _metrics(out / "metrics.json")
    lost = [out / "seed-4" / "parts" / "mlp-2bit-relu.json", out / "seed-3" / "parts" / "mlp-float.json"]
    for path in lost:
        path.unlink()
    assert main(command) == 0
    changed = {path for path in out.glob("seed-*/parts/*") if path.stat().st_mtime_ns != stamps.get(path)}
    assert changed == {path.with_suffix(suffix) for path in lost for suffix in (".json", ".npz")}
    assert _metrics(out / "metrics.json") == before


def test_seed_and_jobs_errors_are_usage_errors(tmp_path, capsys):
    base = ["run", "quant-act", "--quick", "--out", str(tmp_path / "x"), "--no-progress"]
    for arguments, message in (
        (["--seeds", "0,one"], "--seeds: expected integers"),
        (["--seeds", "1,1"], "distinct"),
        (["--seeds", "0,-1"], "non-negative"),
        (["--seed", "1", "--seeds", "2,3"], "give either --seeds or --seed"),
        (["--set", "seed=1", "--seeds", "2,3"], "give either --seeds or --seed"),
        (["--jobs", "0"], "--jobs"),
    ):
        assert main(base + arguments) == 2, arguments
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_failing_part_in_a_worker_stops_the_run_and_keeps_the_others(tmp_path, capsys):
    out = tmp_path / "nan"
    assert main([*TWO_SEEDS, "--jobs", "2", "--out", str(out), *SMALL, "--set", "lr=1e38"]) == 1
    error = capsys.readouterr().err
    assert "non-finite values at step" in error and "mlp-float" in error


def test_statistic_and_aggregate():
    stat = seeds.statistic([1.0, 2.0, 4.0])
    assert stat["mean"] == pytest.approx(7 / 3) and stat["sd"] == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert seeds.statistic([5])["sd"] == 0.0 and math.isnan(seeds.statistic([1.0, "nan"])["mean"])
    per_seed = {
        0: {"rows": [{"K": 64, "variant": "ste", "score": 0.5, "ok": True, "note": "a"}], "curves": [1, 2]},
        1: {"rows": [{"K": 64, "variant": "ste", "score": 0.7, "ok": False, "note": "b"}], "curves": [3, 4]},
    }
    row = seeds.aggregate(per_seed, {"rows": ("K", "variant")})["mean_sd"]["rows"][0]
    assert (row["K"], row["variant"]) == (64, "ste") and row["score"]["mean"] == pytest.approx(0.6)
    assert row["ok"]["mean"] == 0.5 and row["note"] == {"values": ["a", "b"]}
    per_seed[1]["rows"][0]["K"] = 128
    with pytest.raises(ValueError, match="key field 'K'"):
        seeds.aggregate(per_seed, {"rows": ("K", "variant")})
    assert seeds.cell(seeds.statistic([1.0, 3.0])) == "2 ± 1.4"


def test_parts_run_after_the_parts_they_need():
    parts = [Part("b", None, after=("a",)), Part("c", None, after=("b", "a")), Part("a", None)]
    assert [p.name for p in ordered(parts)] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="needs"):
        ordered([Part("b", None, after=("a",))])
    with pytest.raises(ValueError, match="circular"):
        ordered([Part("a", None, after=("b",)), Part("b", None, after=("a",))])


def _children(pid):
    """PIDs of the live processes whose parent is ``pid`` (Linux /proc)."""
    import pathlib

    found = []
    for status in pathlib.Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid) and not fields.get("State", "").strip().startswith("Z"):
            found.append(int(status.parent.name))
    return found


def _alive(pid):
    import pathlib

    try:
        return not (pathlib.Path(f"/proc/{pid}/status").read_text().split("State:")[1].strip().startswith("Z"))
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self"), reason="needs Linux /proc to find the workers")
def test_sigterm_stops_the_workers_too(tmp_path):
    """``kill PID`` of a run with --jobs 2 ends the workers as well (they used to outlive the parent)."""
    import signal
    import subprocess
    import time

    slow = [*SMALL, "--set", "pretrain_steps=100000"]  # parts that would run for minutes
    arguments = [*TWO_SEEDS, "--jobs", "2", "--out", tmp_path / "run", *slow]
    run = subprocess.Popen(
        stevq_process.command(*arguments),
        env=stevq_process.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    workers = []
    while len(workers) < 2 and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.5)
        # the spawn context starts a resource tracker too; the workers are the ones running stevq
        workers = [
            pid
            for pid in _children(run.pid)
            if "multiprocessing" in open(f"/proc/{pid}/cmdline").read()
            and "resource_tracker" not in open(f"/proc/{pid}/cmdline").read()
        ]
    assert len(workers) == 2, (workers, run.poll())
    time.sleep(2)  # the workers are inside their parts
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers), [pid for pid in workers if _alive(pid)]


def test_the_runner_takes_any_executor(tmp_path):
    """A thread pool (any concurrent.futures.Executor) computes the numbers of the runner's own
    in-process computation, bit for bit."""
    import concurrent.futures

    from stevq.experiments import get

    experiment = get("ste-check")
    config = experiment.Config(quick=True, steps=60, runs=3, angles=3, norms=2)
    here = seeds.run(experiment, config, tmp_path / "here", [0, 1], progress=False)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        threaded = seeds.run(experiment, config, tmp_path / "threads", [0, 1], pool, 2, progress=False)
    assert here == threaded and here["seeds"] == [0, 1]
    for name in ("metrics.json", "seed-0/metrics.json", "seed-1/metrics.json"):
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "threads" / name).read_bytes(), name
