#!/usr/bin/env bash
# The GPU check (issue 11): on a machine with CuPy and a CUDA GPU, and no package index.
#
#   # beforehand, on a machine with network (the wheels are pure Python, any platform):
#   pip download --no-deps -d .whl autograd array-api-compat array-api-strict
#   # on the GPU machine, from the repository root:
#   bash benchmarks/gpu_check.sh [REPORT.json]        # default gpu_report.json; under 8 minutes
#
# Steps, each under its own time limit (the whole under BUDGET seconds, default 450):
#   1. install stevq's pure-Python dependencies from .whl/ (--no-index; whatever CuPy is present
#      is used: the [gpu] extra does not pin a CUDA version);
#   2. the CuPy double's contract tests and the engine / VQ / FSQ / theory / metrics catalogue on
#      the real CuPy (pytest -k cupy: the cupy-parametrised tests and tests/test_cupy_double.py);
#   3. every experiment's `python -m stevq run NAME --quick --backend cupy`;
#   4. benchmarks/gpu.py (NumPy against CuPy, the same training steps).
# It writes one JSON report with each step's exit status, time and output tail.
set -uo pipefail
cd "$(dirname "$0")/.."
REPORT=${1:-gpu_report.json}
BUDGET=${BUDGET:-450}
WORK=$(mktemp -d)
START=$(date +%s)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg

left() { echo $(( BUDGET - ($(date +%s) - START) )); }

# step NAME LIMIT COMMAND...: run with a time limit (never past the budget), keep status and output
step() {
  local name=$1 limit=$2; shift 2
  local remaining; remaining=$(left)
  (( limit > remaining - 5 )) && limit=$(( remaining - 5 ))
  if (( limit < 10 )); then
    printf '%s\t%s\t%s\n' "$name" "skipped" "0" >> "$WORK/steps.tsv"; echo "out of time" > "$WORK/$name.log"; return
  fi
  local begin=$(date +%s)
  timeout "$limit" "$@" > "$WORK/$name.log" 2>&1
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - begin ))" >> "$WORK/steps.tsv"
  echo "== $name: exit $rc in $(( $(date +%s) - begin )) s"
}

step install 60 python -m pip install -q --no-index --find-links .whl autograd array-api-compat array-api-strict
step cupy 30 python -c "import cupy; print('cupy', cupy.__version__, 'devices', cupy.cuda.runtime.getDeviceCount())"
# one process (-o addopts: pyproject's -n auto needs pytest-xdist, which .whl/ need not hold)
step tests 200 python -m pytest -q -p no:cacheprovider -p no:xdist -o "addopts=-ra" -k cupy --junitxml="$WORK/tests.xml" \
  tests/test_cupy_double.py tests/test_ops.py tests/test_ops_shape.py tests/test_ops_conv.py tests/test_autodiff.py \
  tests/test_ste.py tests/test_backend.py tests/test_fsq.py tests/test_metrics.py tests/test_nn_optim.py \
  tests/test_vq_core.py tests/test_vq_codebook.py tests/test_vq_fixes.py tests/test_vq_layer.py tests/test_yin2019.py \
  tests/test_errors.py tests/test_experiment_vq.py
for name in yin2019-toy vq-toy quant-act vq-bottleneck; do
  step "run-$name" 45 python -m stevq run "$name" --quick --backend cupy --no-progress --out "$WORK/runs/$name"
done
step benchmark 90 python benchmarks/gpu.py --steps 20 --repeats 3 --json "$WORK/benchmark.json"

python - "$WORK" "$REPORT" "$START" <<'PY'
import json, pathlib, sys, time, xml.etree.ElementTree as ET
work, report, start = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
steps = {}
for line in (work / "steps.tsv").read_text().splitlines():
    name, rc, seconds = line.split("\t")
    log = (work / f"{name}.log").read_text(errors="replace")
    steps[name] = {"exit": rc, "seconds": int(seconds), "tail": log[-1500:]}
if (work / "tests.xml").exists():
    suite = ET.parse(work / "tests.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    steps["tests"]["counts"] = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
bench = work / "benchmark.json"
result = {"seconds": int(time.time()) - start, "steps": steps,
          "benchmark": json.loads(bench.read_text()) if bench.exists() else None}
pathlib.Path(report).write_text(json.dumps(result, indent=1))
print(f"report: {report} ({result['seconds']} s)")
PY
