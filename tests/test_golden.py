"""Every experiment's quick-mode metrics.json, bit for bit, against the golden files in tests/golden/.

The golden files were written by `python -m stevq run NAME --quick` at commit a6c2c4b, before the
refactors of the experiments, the validation and the fast paths began, on the Fashion-MNIST sample
inside stevq (no data files visible, as on a machine without them). A change that moves any recorded
number in quick mode fails here; a refactor must keep them all, so that the committed records stay
valid. When a change is *meant* to move the numbers, regenerate the files with `--regenerate` below
and say so in the commit.

    python tests/test_golden.py --regenerate
"""

import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

pytestmark = pytest.mark.slow  # notebooks, the course kit, benchmarks, subprocesses: not in the quick loop

ROOT = pathlib.Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
EXPERIMENTS = ("yin2019-toy", "ste-check", "vq-toy", "quant-act", "vq-bottleneck", "vq-ablation")


def run_quick(name, out):
    """`python -m stevq run NAME --quick` in a fresh process that sees no Fashion-MNIST files."""
    with tempfile.TemporaryDirectory(prefix="stevq-empty-cache-") as empty:
        environment = dict(
            os.environ,
            STEVQ_DATA=empty,
            STEVQ_NO_SYSTEM_DATA="1",
            MPLBACKEND="Agg",
            PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        )
        environment.pop("STEVQ_BACKEND", None)
        result = subprocess.run(
            [sys.executable, "-m", "stevq", "run", name, "--quick", "--no-progress", "--out", str(out)],
            capture_output=True,
            text=True,
            env=environment,
            cwd=ROOT,
            timeout=900,
        )
    assert result.returncode == 0, result.stderr
    return (pathlib.Path(out) / "metrics.json").read_bytes()


def first_difference(name, produced, golden):
    """The first line at which ``produced`` and ``golden`` differ, both shown."""
    produced_lines, golden_lines = produced.decode().splitlines(), golden.decode().splitlines()
    first = next(
        (i for i, (a, b) in enumerate(zip(produced_lines, golden_lines)) if a != b),
        min(len(produced_lines), len(golden_lines)),
    )
    return (
        f"{name}: quick metrics.json differs from tests/golden/{name}.json from line {first + 1}:\n"
        f"  golden:   {golden_lines[first] if first < len(golden_lines) else '<end>'}\n"
        f"  produced: {produced_lines[first] if first < len(produced_lines) else '<end>'}"
    )


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_quick_metrics_are_bit_identical_to_the_golden_file(name, tmp_path):
    produced = run_quick(name, tmp_path / name)
    golden = (GOLDEN / f"{name}.json").read_bytes()
    assert produced == golden, first_difference(name, produced, golden)


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit("usage: python tests/test_golden.py --regenerate")
    with tempfile.TemporaryDirectory() as scratch:
        for experiment in EXPERIMENTS:
            (GOLDEN / f"{experiment}.json").write_bytes(run_quick(experiment, pathlib.Path(scratch) / experiment))
            print("wrote", GOLDEN / f"{experiment}.json")
