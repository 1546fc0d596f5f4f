"""The benchmark scripts run end to end in their tiny mode and print every row they promise; the
contenders compute the same thing. Wall-clock values are never asserted: only that the numbers exist,
are finite and positive, and that the contenders agree."""

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # notebooks, the course kit, benchmarks, subprocesses: not in the quick loop

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
EXPECTED = {
    "a": {"stevq", "autograd.numpy", "stevq, forward + backward alone", "stevq, Adam alone (12 NumPy passes)"},
    "b": {"stevq"},
    "c": {"stevq", "NumPy matmul, preallocated"},
    "e": {"stevq", "codebook gradient, stevq", "codebook gradient, one-hot formula"},
    "f": {
        "stevq, autoencoder",
        "BLAS products alone, autoencoder",
        "stevq, classifier",
        "BLAS products alone, classifier",
    },
}
TORCH_ROWS = {
    "a": {"PyTorch", "PyTorch, forward + backward alone", "PyTorch, fused Adam alone"},
    "b": {"PyTorch"},
    "c": {"PyTorch addmm + argmin", "PyTorch matmul, preallocated"},
    "e": {"PyTorch"},
    "f": {"PyTorch, autoencoder", "PyTorch, classifier"},
}
HAS_TORCH = importlib.util.find_spec("torch") is not None


def _run(script, *args):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _run_small(tmp_path, *options):
    """benchmarks/run.py in its tiny mode (one repeat, one round) with ``options``: what it printed
    and the results it wrote as JSON."""
    report = tmp_path / "r.json"
    out = _run("run.py", "--small", "--repeats", "1", "--rounds", "1", *options, "--json", str(report))
    return out, json.loads(report.read_text())


def _check_results(results, with_torch, with_memory, cases="fabce"):
    assert [case["case"] for case in results["cases"]] == list(cases)
    for case in results["cases"]:
        names = {row["contender"] for row in case["rows"]}
        assert names == EXPECTED[case["case"]] | (TORCH_ROWS[case["case"]] if with_torch else set())
        for row in case["rows"]:
            for key in ("wall_ms", "cpu_ms", "ratio_wall"):
                assert math.isfinite(row[key]) and row[key] >= 0, (case["case"], row)
            assert (row["memory_mb"] is not None) == with_memory
            if row["agreement"] is not None:  # same start, same data: the same numbers
                assert row["agreement"] == 1.0 if case["case"] == "c" else row["agreement"] < 1e-5, row
            elif not row["contender"].startswith("stevq"):  # the floors and Adam alone return no result
                assert any(
                    floor in row["contender"] for floor in ("preallocated", "Adam alone", "BLAS products alone")
                ), row
        for target in case["targets"]:
            if "memory_of" in target:
                assert (target["megabytes"] is not None) == with_memory
                continue
            measured = target["versus"] in names
            assert (target["ratio_wall"] is not None) == measured
            if measured:
                assert math.isfinite(target["ratio_wall"]) and target["met"] in (True, False)


def test_run_small_without_torch(tmp_path):
    out, results = _run_small(tmp_path, "--no-torch")
    _check_results(results, with_torch=False, with_memory=True)
    for title in (
        "(f) Huh et al.'s networks",
        "(a) MLP VQ-VAE",
        "(b) conv VQ-VAE",
        "(c) nearest code",
        "(e) MLP VQ-VAE",
        "OPENBLAS_* variables",
        "\n  BLAS ",
        "load average",
    ):
        assert title in out
    assert "PyTorch: not installed or --no-torch" in out
    assert "not measured (PyTorch absent)" in out


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed (it is optional)")
def test_run_small_with_torch(tmp_path):
    """Every case's PyTorch rows (each contender is a process of its own: importing torch is the cost)."""
    _, results = _run_small(tmp_path, "--no-memory", "--cases", "ace")
    _check_results(results, with_torch=True, with_memory=False, cases="ace")


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed (it is optional)")
def test_vq_ablation_case_builds_and_its_first_losses_agree(tmp_path):
    """Case (f): both networks build (the experiment's own code and the PyTorch twin, from the same
    weights and batch) and their first losses agree; its two targets name both contenders."""
    out, results = _run_small(tmp_path, "--no-memory", "--cases", "f")
    _check_results(results, with_torch=True, with_memory=False, cases="f")
    checked = {row["contender"]: row["agreement"] for row in results["cases"][0]["rows"]}
    assert checked["PyTorch, autoencoder"] < 1e-5 and checked["PyTorch, classifier"] < 1e-5
    assert "target stevq, classifier <= 1.2x PyTorch, classifier" in out


def test_run_other_kernel_section(tmp_path):
    """--kernels reruns the NumPy contenders in processes without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE
    (this test sets neither: it only checks that the section is there and complete)."""
    out, results = _run_small(tmp_path, "--no-memory", "--no-torch", "--cases", "c", "--kernels")
    assert "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset" in out
    other = results["other_kernel"]
    assert [row["contender"] for row in other[0]["rows"]] == ["stevq", "NumPy matmul, preallocated"]


def test_engine_small():
    out = _run("engine.py", "--small", "--repeats", "1", "--chain", "5", "--no-torch")
    ratio = re.search(r"stevq / autograd\.numpy: ([0-9.]+)x", out)
    assert ratio and float(ratio.group(1)) > 0
    for row in ("stevq", "autograd.numpy", "NumPy by hand (no autodiff)", "stevq on array_api_strict"):
        match = re.search(rf"^   {re.escape(row)} +([0-9.]+) ms", out, re.MULTILINE)
        assert match and math.isfinite(float(match.group(1))), row
    differences = [float(x) for x in re.findall(r"gradients within ([0-9.e+-]+) of stevq's", out)]
    assert len(differences) == 3 and max(differences) < 1e-5


def test_scaling_table_small(tmp_path):
    """scaling.py prints (and writes) one row per (batch, K) cell with a time and a memory column."""
    table = tmp_path / "t.md"
    out = _run("scaling.py", *"--batches 2 3 --codes 4 --repeats 1 --no-torch --markdown".split(), str(table))
    rows = re.findall(r"^\| (\d+) \| (\d+) \| ([0-9.]+) \(([0-9.]+)\) \| (\d+) \| - \| - \| - \|$", out, re.MULTILINE)
    assert [(batch, codes) for batch, codes, *_ in rows] == [("2", "4"), ("3", "4")]
    assert all(float(wall) > 0 and math.isfinite(float(cpu)) for _, _, wall, cpu, _ in rows)
    assert table.read_text().count("\n| ") == 3  # header and two rows
