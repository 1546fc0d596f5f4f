"""The sync budget: on a GPU every host read of a device value waits for the device, so a training
step may read back at most 2 values on average (its loss and one combined finiteness check).

The CuPy test double counts the reads (tests/support/sync_meter.py keeps the count per training
loop, evaluations excluded). The VectorQuantizer step is measured in-process for every variant;
every experiment runs as ``python -m stevq run NAME --quick --backend cupy`` on the double (the
meter rides along in every process through tests/support/sitecustomize.py), with its sizes shrunk
by ``--set`` to keep CI short (same code paths, fewer steps and images), and must finish with zero
refused implicit conversions. The counts are printed in the session summary.
"""

from pathlib import Path

import cupy
import numpy as np
import pytest
from conftest import CUPY_IS_DOUBLE, cupy_env
from support import stevq_process, sync_meter

import stevq
from stevq.experiments import training
from stevq.experiments.huh2023 import vq_quantizers, vq_training

pytestmark = [
    pytest.mark.skipif(not CUPY_IS_DOUBLE, reason="counts transfers: the CuPy test double only"),
    pytest.mark.slow,  # quick runs of every experiment in subprocesses
]
BUDGET = 2.0
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("variant", sorted(vq_quantizers.VARIANTS))
def test_vector_quantizer_step_stays_within_the_budget(variant, monkeypatch, report_transfers):
    from test_experiment_vq import _toy_network

    sync_meter.install(monkeypatch.setattr)
    with stevq.use("cupy"):
        network = _toy_network(variant, 64 if variant == "fsq" else 16, "float32")
        params, state = vq_training.init_network(network, np.random.default_rng(0))
        data = training.Data(np.random.default_rng(7).standard_normal((96, 6)))
        schedule = vq_training.Schedule(12, batch_size=32, record_every=6, seed=1)
        vq_training.train(network, params, state, data, data, schedule, variant, show_progress=False)
    (row,) = sync_meter.report()["loops"].values()
    report_transfers(f"VectorQuantizer step, {variant}", row["per_step"])
    assert row["steps"] == 12 and row["per_step"] <= BUDGET, (row, sync_meter.report()["sites"])


SHRUNK = {
    "quant-act": (
        "--set train_size=512 --set test_size=128 --set loss_eval_size=128 --set pretrain_steps=20 "
        "--set steps=12 --set instability_steps=6 --set bits=(2,) --set "
        "stes=('identity','clipped_relu')"
    ).split(),
    "vq-ablation": (
        "--set models=autoencoder --set steps=12 --set record_every=6 --set train_size=128 --set test_size=64"
    ).split(),
    "vq-bottleneck": (
        "--set train_size=256 --set test_size=64 --set curve_size=64 --set steps=12 --set record_every=6"
    ).split(),
    "vq-toy": (
        "--set shift_seeds=1 --set steps=20 --set record_every=10 --set train_size=512 --set "
        "eval_size=256 --set num_codes=32"
    ).split(),
    "yin2019-toy": [],
    "ste-check": "--set ste=approx_sign --set steps=50 --set runs=2 --set angles=3 --set norms=2".split(),
}


@pytest.mark.parametrize("name", sorted(SHRUNK))
def test_quick_run_on_the_cupy_double(name, tmp_path, report_transfers):
    meter = tmp_path / "meter"
    # tests/support's sitecustomize installs the meter in every process of the run
    env = cupy_env(stevq_process.environment(ROOT / "tests" / "support", STEVQ_SYNC_METER=str(meter)))
    arguments = ["run", name, "--quick", "--backend", "cupy", "--no-progress", "--out", tmp_path / "run", *SHRUNK[name]]
    done = stevq_process.run(*arguments, cwd=tmp_path, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = sync_meter.merged(meter)
    assert report["transfers"].get("implicit", 0) == 0, report
    for loop, row in report["loops"].items():
        report_transfers(f"{name}: {loop}", row["per_step"])
        assert row["per_step"] <= BUDGET, (loop, row, report["sites"])
    if name not in ("yin2019-toy", "ste-check"):  # their descent runs on the host (closed forms, quadrature) by design
        assert report["steps"] > 0, report


def test_a_loop_written_with_the_public_layer_reads_back_only_its_loss(report_transfers):
    """Lecture 8's loop: nn layers, the public VectorQuantizer and Adam, the loss read once per step.
    The layer checks values only outside a gradient (it scanned x and the codebook every step)."""
    from stevq import nn, ops, optim, vq
    from stevq.autodiff import value_and_grad

    with stevq.use("cupy"):
        rng = np.random.default_rng(0)
        data = stevq.asarray(rng.standard_normal((320, 8)), "float32")
        encoder, decoder = nn.serial(nn.Dense(16), nn.Relu, nn.Dense(4)), nn.serial(nn.Dense(16), nn.Relu, nn.Dense(8))
        quantizer = vq.VectorQuantizer(32)
        params = {"e": encoder[0](rng, (8,))[1], "q": quantizer[0](rng, (4,))[1], "d": decoder[0](rng, (4,))[1]}

        def loss(p, x):
            out, aux = quantizer[1](p["q"], encoder[1](p["e"], x))
            return ops.add(ops.mean(ops.square(ops.subtract(decoder[1](p["d"], out), x))), aux["loss"])

        init, update, get_params = optim.adam(1e-3)
        state, loss_and_grad = init(params), value_and_grad(loss)
        before = sum(n for kind, n in cupy.transfers.items() if kind != "implicit")
        for step in range(10):
            value, grads = loss_and_grad(get_params(state), data[32 * step : 32 * (step + 1)])
            state = update(step, grads, state)
            float(value)
        per_step = (sum(n for kind, n in cupy.transfers.items() if kind != "implicit") - before) / 10
        report_transfers("public VectorQuantizer + Adam loop (lecture 8)", per_step)
        assert per_step == 1.0
        bad = stevq.asarray(np.full((4, 4), np.nan), "float32")
        with pytest.raises(ValueError, match="x: contains NaN"):  # outside a gradient the values are checked
            quantizer[1](params["q"], bad)
