"""The same training steps on NumPy (CPU) and CuPy (GPU), side by side (issue 11).

    python benchmarks/gpu.py --json gpu.json          # on a machine with CuPy and a CUDA GPU
    python benchmarks/gpu.py --small                  # tiny sizes: a smoke test, not a benchmark

Cases, each a real stevq training loop in float32 on random data (no data set needed):
(a) ``vq-vae``: the vq-bottleneck experiment's conv VQ-VAE (``vq_training.train``), batch 128,
    K = 256, for the plain STE and for affine + alternating + sync (the most work per step);
(b) ``quant-mlp``: the quant-act experiment's MLP with 2-bit quantized ReLUs (``quant_act.train``),
    batch 256.
A step's time is the difference between a run of ``short + steps`` steps and one of ``short``
steps, divided by ``steps``: set-up, the step-0 and final evaluations cancel. Each loop reads its
loss back every step (a device synchronisation), so the GPU's queued work is inside the time.
Medians over ``--repeats``; the first run of each case is a warm-up (CuPy compiles its kernels).
The ratio is NumPy's time over CuPy's (above 1: the GPU is faster). Without CuPy or a GPU the
CuPy rows are left out and the output says why. The BLAS of NumPy and its kernel are reported.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402

import stevq  # noqa: E402
from stevq import optim  # noqa: E402
from stevq.experiments import training  # noqa: E402
from stevq.experiments.huh2023 import vq_bottleneck, vq_training  # noqa: E402
from stevq.experiments.yin2019 import quant_act  # noqa: E402


def vqvae_runner(variant, batch, num_codes):
    config = vq_bottleneck.Config(quick=True, sizes=(num_codes,), variants=(variant,), dtype="float32")
    rng = np.random.default_rng(0)
    images = rng.uniform(0.0, 1.0, (max(4 * batch, 512), 1, 28, 28)).astype(np.float32)

    def run(steps):
        network = vq_bottleneck.build(config, "vqvae", num_codes, variant)
        params, state = vq_training.init_network(network, np.random.default_rng(config.seed))
        schedule = vq_training.Schedule(steps, batch, 1e-3, record_every=10**9, gap_rows=64)
        train, curve = training.Data(images), training.Data(images[:64])
        vq_training.train(network, params, state, train, curve, schedule, show_progress=False)

    return run


def quant_mlp_runner(batch):
    config = quant_act.Config(quick=True, dtype="float32")
    rng = np.random.default_rng(0)
    images = rng.uniform(0.0, 1.0, (max(4 * batch, 1024), 1, 28, 28))
    labels = rng.integers(0, 10, images.shape[0])

    def run(steps):
        init, apply = quant_act.build("mlp", quant_act.quantized_activation(2, "clipped_relu"), config)
        _, params = init(np.random.default_rng(0), (1, 28, 28))
        dataset = training.Data(images, labels, "float32")
        quant_act.train(
            apply, params, dataset, [(steps, optim.sgd(0.01, 0.9))], batch, 0, 64, 10**9, show_progress=False
        )

    return run


def time_steps(run, steps, short, repeats):
    """Median seconds per step: (t(short + steps) - t(short)) / steps."""
    run(short)  # warm-up: imports, CuPy kernel compilation, memory pool
    per_step = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(short)
        middle = time.perf_counter()
        run(short + steps)
        end = time.perf_counter()
        per_step.append(((end - middle) - (middle - start)) / steps)
    return statistics.median(per_step)


def environment():
    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
    }
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = {key: blas.get(key) for key in ("name", "version", "openblas configuration")}
    except Exception as error:  # numpy < 2 or an unusual build
        info["blas"] = f"unknown ({error})"
    try:
        import cupy

        info["cupy"] = cupy.__version__
        info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        properties = cupy.cuda.runtime.getDeviceProperties(0)
        name = properties.get("name", b"")
        info["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
    except Exception as error:
        info["cupy"] = f"unavailable: {type(error).__name__}: {error}"
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run (beyond --short)")
    parser.add_argument("--short", type=int, default=3, help="steps of the run that is subtracted")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args(argv)
    if min(args.steps, args.short, args.repeats) < 1:
        parser.error("--steps, --short and --repeats must be at least 1")
    batch, codes = (16, 32) if args.small else (128, 256)
    cases = {
        "vq-vae ste": lambda: vqvae_runner("ste", batch, codes),
        "vq-vae affine+alt+sync": lambda: vqvae_runner("affine+alt+sync", batch, codes),
        "quant-mlp 2-bit": lambda: quant_mlp_runner(2 * batch),
    }
    backends = ["numpy"]
    skipped = None
    try:
        with stevq.use("cupy"):
            backends.append("cupy")
    except (ImportError, RuntimeError) as error:
        skipped = f"{type(error).__name__}: {error}"
        print(f"CuPy rows left out: {skipped}")
    rows = []
    for case, make in cases.items():
        for name in backends:
            with stevq.use(name, dtype="float32"):
                seconds = time_steps(make(), args.steps, args.short, args.repeats)
            rows.append({"case": case, "backend": name, "ms_per_step": 1e3 * seconds})
            print(f"{case:>24} {name:>6}: {1e3 * seconds:9.2f} ms/step", flush=True)
    ratios = {}
    for case in cases:
        times = {r["backend"]: r["ms_per_step"] for r in rows if r["case"] == case}
        if "cupy" in times:
            ratios[case] = times["numpy"] / times["cupy"]
            print(f"{case:>24}: NumPy / CuPy = {ratios[case]:.2f}")
    result = {
        "environment": environment(),
        "settings": vars(args),
        "batch": batch,
        "num_codes": codes,
        "rows": rows,
        "numpy_over_cupy": ratios,
        "cupy_skipped": skipped,
    }
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
