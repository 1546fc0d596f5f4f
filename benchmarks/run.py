"""stevq against tuned PyTorch (CPU), plain autograd.numpy and compute floors, each in its own process.

    python benchmarks/run.py                 # cases (f), (a), (b), (c), (e); a few minutes
    python benchmarks/run.py --cases f --rounds 5   # the headline: Huh et al.'s networks at batch 256
    python benchmarks/run.py --kernels       # ... and the NumPy contenders again with OPENBLAS_CORETYPE
                                             #     and OPENBLAS_L2_SIZE unset (OpenBLAS's own choice)
    python benchmarks/run.py --suite         # ... and (d): the test suite and the lectures (minutes)
    python benchmarks/run.py --threads 2 --repeats 40 --cases ab --json results.json
    python benchmarks/run.py --malloc default  # glibc's own malloc thresholds for every contender

Cases (one module each): (a) ``vqvae_mlp``: a training step of an MLP VQ-VAE; (b) ``vqvae_conv``:
a training step of the experiments' conv VQ-VAE; (c) ``lookup``: nearest code against a matmul
into a preallocated buffer; (e) ``vqvae_mlp_large``: case (a) at batch 4096 and K = 16384, and the
codebook gradient alone; (f) ``vq_ablation_step``: a training step of each of the ``vq-ablation``
networks (Huh et al.'s autoencoder and classifier) at batch 256, and its BLAS products alone; (d) wall time of ``python -m pytest -q`` and of the lecture notebooks.
``scaling.py`` prints the scaling table of case (a) (batch x K).

Every library computes in float32 with the same number of threads (``--threads``, default 1: the
BLAS of NumPy through OPENBLAS_NUM_THREADS/OMP_NUM_THREADS, set before NumPy is imported, and
``torch.set_num_threads``). Each contender runs in a fresh process (``--child``; see ``timing.py``),
in the fixed order its case lists, ``--rounds`` times; the table shows the median and the 25-75 %
spread of the pooled calls, wall and CPU time, and the extra memory of a step. The BLAS, its kernel
and the OPENBLAS_* variables are printed with the table, with the load average of the machine.
Every contender's process gets the same malloc setting (``--malloc``): by default it keeps freed
memory for reuse (``stevq.allocator``), which removes the page faults of every later step for
PyTorch as for stevq; ``--malloc default`` measures glibc's own behaviour.
PyTorch is optional: without it (or with ``--no-torch``) its rows and ratios are left out and the
output says so.
"""

import argparse
import importlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]

import table  # noqa: E402
import timing  # noqa: E402  (no NumPy import: threads are set first)

MALLOC_LINES = {
    "kept": "malloc: every contender's process keeps freed memory for reuse (stevq.keep_freed_memory: glibc's "
    "mmap threshold 32 MiB, trim threshold 1 GiB), as python -m stevq run does",
    "default": "malloc: glibc's default thresholds in every contender's process (freed memory goes back to the "
    "kernel; the next step page-faults)",
}
CASES = {"a": "vqvae_mlp", "b": "vqvae_conv", "c": "lookup", "e": "vqvae_mlp_large", "f": "vq_ablation_step"}


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per contender process and round")
    parser.add_argument("--rounds", type=int, default=2, help="fresh processes per contender (pooled)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/torch threads for every library")
    parser.add_argument("--cases", default="fabce", help="which of a, b, c, e, f to run (f first: the headline)")
    parser.add_argument("--small", action="store_true", help="tiny sizes (a smoke test, not a benchmark)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument(
        "--kernels",
        action="store_true",
        help="also run the NumPy contenders with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset",
    )
    parser.add_argument("--suite", action="store_true", help="also time the test suite and the lectures (d)")
    parser.add_argument(
        "--malloc",
        choices=("kept", "default"),
        default="kept",
        help="kept (default): every contender's process keeps freed memory for reuse "
        "(stevq.keep_freed_memory, glibc's mallopt), as python -m stevq run does; "
        "default: glibc's own thresholds for every contender",
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "CONTENDER", "FIRST_FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)  # "n_in,hidden,D,K,batch" for case a (scaling.py)
    args = parser.parse_args(argv)
    if set(args.cases) - set(CASES) or min(args.repeats, args.rounds, args.threads) < 1:
        parser.error("--cases takes letters among a, b, c, e, f; --repeats, --rounds and --threads at least 1")
    return args


def import_torch(args):
    if args.no_torch:
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(args.threads)
    return torch


def run_child(args):
    """Child mode: build one contender, keep its first result, time it, measure its memory; print JSON."""
    import numpy as np

    case, name, first_file = args.child
    if args.malloc == "kept":  # the same allocator setting for every contender, PyTorch included
        from stevq import allocator

        allocator.keep_freed_memory()
    module = importlib.import_module(CASES[case])
    torch = import_torch(args) if "PyTorch" in name else None  # torch's libraries stay out of the others
    factory = module.contenders(True)[name]
    sizes = None if args.sizes is None else tuple(int(v) for v in args.sizes.split(","))
    step = factory(args.small) if sizes is None else factory(args.small, sizes=sizes)
    repeats = min(args.repeats, getattr(module, "REPEATS", {}).get(name, args.repeats))
    first = step()
    if first is not None:  # floors return nothing (their output is a preallocated buffer)
        np.save(first_file, np.asarray(first))
    wall, cpu = timing.time_calls(step, repeats)
    memory = (None, None) if args.no_memory else timing.step_memory(step)
    traced = timing.traced_peak(step) if not args.no_memory and name in getattr(module, "TRACED", ()) else None
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "memory_mb": memory[0],
                "memory_method": memory[1],
                "traced_mb": traced,
                "blas": timing.blas_report(torch),
            }
        )
    )


def measure(case, name, args, env=None, sizes=None):
    """Run contender ``name`` of ``case`` in a fresh process; returns its JSON and its first result."""
    import numpy as np

    with tempfile.TemporaryDirectory() as folder:
        first_file = os.path.join(folder, "first.npy")
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            case,
            name,
            first_file,
            "--threads",
            str(args.threads),
            "--repeats",
            str(args.repeats),
            "--malloc",
            args.malloc,
        ]
        command += ["--small"] * args.small + ["--no-memory"] * args.no_memory
        command += [] if sizes is None else ["--sizes", ",".join(map(str, sizes))]
        done = subprocess.run(command, capture_output=True, text=True, env=env or os.environ.copy())
        if done.returncode:
            raise RuntimeError(f"benchmark process for {case}/{name} failed:\n{done.stderr[-4000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["first"] = np.load(first_file) if os.path.exists(first_file) else None
    return result


def race(case, names, args, env=None, sizes=None):
    """name -> pooled results of ``args.rounds`` fresh processes per contender, in the order of ``names``."""
    pooled = {name: {"wall": [], "cpu": [], "memory_mb": [], "first": None} for name in names}
    for _ in range(args.rounds):
        for name in names:
            result = measure(case, name, args, env, sizes)
            entry = pooled[name]
            entry["wall"] += result["wall"]
            entry["cpu"] += result["cpu"]
            entry["memory_mb"].append(result["memory_mb"])
            entry.setdefault("traced_mb", []).append(result["traced_mb"])
            entry["first"], entry["blas"], entry["memory_method"] = (
                result["first"],
                result["blas"],
                result["memory_method"],
            )
    return pooled


def run_case(case, args, torch_available, env=None):
    module = importlib.import_module(CASES[case])
    names = list(module.contenders(torch_available))
    pooled = race(case, names, args, env)
    rows = table.summarize(pooled, module)
    by_name = {row["contender"]: row for row in rows}
    targets = []
    for target in module.TARGETS:  # (other, limit): stevq against other; or (ours, other, limit)
        ours, other, limit = ("stevq",) + tuple(target) if len(target) == 2 else target
        if other in by_name:
            ratio = by_name[ours]["wall_ms"] / by_name[other]["wall_ms"]
            ratio_cpu = by_name[ours]["cpu_ms"] / by_name[other]["cpu_ms"] if by_name[other]["cpu_ms"] > 0 else math.nan
            targets.append(
                {
                    "ours": ours,
                    "versus": other,
                    "limit": limit,
                    "ratio_wall": ratio,
                    "ratio_cpu": ratio_cpu,
                    "met": ratio <= limit,
                    "met_cpu": ratio_cpu <= limit,
                }
            )
        else:
            targets.append(
                {"ours": ours, "versus": other, "limit": limit, "ratio_wall": None, "ratio_cpu": None, "met": None}
            )
    for name, limit in getattr(module, "MEMORY_TARGETS", ()):
        megabytes = by_name[name]["traced_mb"]
        targets.append(
            {
                "memory_of": name,
                "limit_mb": limit,
                "megabytes": megabytes,
                "met": None if megabytes is None else megabytes < limit,
            }
        )
    return {
        "case": case,
        "title": module.TITLE,
        "rows": rows,
        "targets": targets,
        "memory_method": pooled[names[0]]["memory_method"],
        "blas": pooled[names[0]]["blas"],
        "blas_torch": next((pooled[n]["blas"] for n in names if "PyTorch" in n), None),
    }


def timed_command(command, env_extra=None):
    env = dict(os.environ, MPLBACKEND="Agg", **(env_extra or {}))
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(variable, None)  # the suite runs as CI runs it, with the libraries' own defaults
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    summary = (done.stdout.strip().splitlines() or [""])[-1]
    return {"command": " ".join(command), "seconds": seconds, "returncode": done.returncode, "summary": summary}


def run_suite():
    """(d): the CI test command, and the lecture notebooks alone in quick mode."""
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    lectures = [*pytest, "tests/test_lectures.py", "-k", "quick_mode"]
    return [timed_command(pytest), timed_command(lectures, {"STEVQ_QUICK": "1"})]


def run_other_kernel(args, torch_available):
    """The NumPy contenders (not PyTorch, which has its own BLAS) in processes whose environment
    lacks OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, so that OpenBLAS picks its kernel by itself.
    Only the child processes' environment changes; this process's stays as it is."""
    env = {k: v for k, v in os.environ.items() if k not in timing.OPENBLAS_KERNEL_VARIABLES}
    found = []
    for case in args.cases:
        module = importlib.import_module(CASES[case])
        names = [n for n in module.contenders(torch_available) if "PyTorch" not in n]
        pooled = race(case, names, args, env)
        found.append({"case": case, "rows": table.summarize(pooled, module), "blas": pooled[names[0]]["blas"]})
    return found


def load_line():
    try:
        return "load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average: unavailable"


def main(argv=None):
    args = parse(argv)
    timing.set_threads(args.threads)
    if args.child:
        return run_child(args)
    import numpy as np

    torch = import_torch(args)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(
        f"{started}; numpy {np.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}; {args.threads} thread(s) for every library; float32; every contender in "
        f"its own process, {args.rounds} x {args.repeats} calls{'; SMALL sizes (smoke test)' if args.small else ''}"
    )
    print(
        f"PyTorch {torch.__version__}"
        if torch is not None
        else "PyTorch: not installed or --no-torch; its rows and ratios are left out"
    )
    print(MALLOC_LINES[args.malloc])
    print(load_line())
    results = {
        "started": started,
        "threads": args.threads,
        "repeats": args.repeats,
        "rounds": args.rounds,
        "malloc": args.malloc,
        "small": args.small,
        "torch": None if torch is None else torch.__version__,
        "cases": [],
    }
    for case in args.cases:
        result = run_case(case, args, torch is not None)
        results["cases"].append(result)
        table.print_case(result)
    if results["cases"]:
        first = results["cases"][0]
        print()
        for line in first["blas"] + ([first["blas_torch"][-2]] if first["blas_torch"] else []):
            print(f"  {line}")
        if not args.no_memory:
            print(f"  step MB: {first['memory_method']}, largest over the processes")
    if args.kernels:
        results["other_kernel"] = run_other_kernel(args, torch is not None)
        print(
            "\nThe NumPy contenders again, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (in the child processes only):"
        )
        print(f"  {results['other_kernel'][0]['blas'][0]}" if results["other_kernel"] else "")
        for found in results["other_kernel"]:
            for row in found["rows"]:
                print(
                    f"  ({found['case']}) {row['contender']:<36} {row['wall_ms']:9.2f} ms wall {row['cpu_ms']:9.2f} ms CPU"
                )
    results["load_after"] = load_line()
    print(results["load_after"])
    if args.suite:
        results["suite"] = run_suite()
        print("\n(d) test suite and lectures, quick mode (wall time)")
        for item in results["suite"]:
            print(f"  {item['seconds']:7.1f} s  {item['command']}  -> {item['summary']}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
    return results


if __name__ == "__main__":
    main()
