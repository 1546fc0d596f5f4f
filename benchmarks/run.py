"""stevq against plain autograd.numpy and PyTorch (CPU), measured side by side (issue 7).

    python benchmarks/run.py                 # cases (a), (b), (c); about two minutes
    python benchmarks/run.py --suite         # ... and (d): the test suite and the lectures (minutes)
    python benchmarks/run.py --threads 2 --repeats 40 --cases ab --json results.json

Cases (one module each): (a) ``vqvae_mlp``: a training step of an MLP VQ-VAE; (b) ``vqvae_conv``:
a training step of the experiments' conv VQ-VAE; (c) ``lookup``: nearest code against the bare
matmul; (d) wall time of ``python -m pytest -q`` and of the lecture notebooks in quick mode.

Every library computes in float32 with the same number of threads (``--threads``, default 1: the
BLAS of NumPy through OPENBLAS_NUM_THREADS/OMP_NUM_THREADS, set before NumPy is imported, and
``torch.set_num_threads``). Times are medians over ``--repeats`` calls, the contenders taking
turns; wall time and the CPU time of the process are both shown (CPU time is less sensitive to other
programs on a shared machine). Memory: see ``timing.py`` (extra resident memory of one step,
measured in a fresh subprocess per contender). PyTorch is optional: without it (or with
``--no-torch``) its rows and ratios are left out and the output says so.
"""
import argparse
import importlib
import json
import math
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]

import timing  # noqa: E402  (no NumPy import: threads are set first)

CASES = {"a": "vqvae_mlp", "b": "vqvae_conv", "c": "lookup"}


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per contender (median)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/torch threads for every library")
    parser.add_argument("--cases", default="abc", help="which of a, b, c to run")
    parser.add_argument("--small", action="store_true", help="tiny sizes (a smoke test, not a benchmark)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--suite", action="store_true", help="also time the test suite and the lectures (d)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--memory-of", nargs=2, metavar=("CASE", "CONTENDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if set(args.cases) - set(CASES) or args.repeats < 1 or args.threads < 1:
        parser.error("--cases takes letters among a, b, c; --repeats and --threads at least 1")
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


def memory_of(args):
    """Subprocess mode: build one contender, print its step memory as JSON."""
    case, name = args.memory_of
    module = importlib.import_module(CASES[case])
    if "PyTorch" not in name:
        args.no_torch = True  # importing torch would only add its own libraries to the measurement
    step = module.contenders(import_torch(args) is not None)[name](args.small)
    megabytes, method = timing.step_memory(step)
    print(json.dumps({"megabytes": megabytes, "method": method}))


def measure_memory(case, name, args):
    command = [sys.executable, os.path.abspath(__file__), "--memory-of", case, name, "--threads", str(args.threads)]
    command += ["--small"] * args.small + ["--no-torch"] * args.no_torch
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode:
        raise RuntimeError(f"memory subprocess for {case}/{name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check(module, name, first, reference):
    """(text, number): how well contender ``name`` agrees with stevq on its first call (same start,
    same data): the fraction of equal indices (lookup) or the relative difference of the first loss."""
    if hasattr(module, "agree"):
        agreement = module.agree(name, first, reference)
        return (None, None) if agreement is None else (f"same index {100 * agreement:.2f}%", agreement)
    difference = abs(first - reference) / max(abs(reference), 1e-30)
    return f"1st loss rel. diff {difference:.0e}", difference


def run_case(case, args, torch):
    module = importlib.import_module(CASES[case])
    steps = {name: factory(args.small) for name, factory in module.contenders(torch is not None).items()}
    first = {name: step() for name, step in steps.items()}
    checks = {name: check(module, name, first[name], first["stevq"]) for name in steps if name != "stevq"}
    medians = timing.race(steps, args.repeats)
    memory = {} if args.no_memory else {name: measure_memory(case, name, args) for name in steps}
    rows = []
    for name, median in medians.items():
        rows.append({"contender": name, "wall_ms": 1e3 * median["wall"], "cpu_ms": 1e3 * median["cpu"],
                     "ratio_wall": medians["stevq"]["wall"] / median["wall"],
                     "ratio_cpu": medians["stevq"]["cpu"] / median["cpu"] if median["cpu"] > 0 else math.nan,
                     "memory_mb": memory.get(name, {}).get("megabytes"),
                     "check": checks.get(name, (None, None))[0], "agreement": checks.get(name, (None, None))[1]})
    targets = []
    for other, limit in module.TARGETS:
        if other in medians:
            ratio = medians["stevq"]["wall"] / medians[other]["wall"]
            ratio_cpu = medians["stevq"]["cpu"] / medians[other]["cpu"] if medians[other]["cpu"] > 0 else math.nan
            targets.append({"versus": other, "limit": limit, "ratio_wall": ratio, "ratio_cpu": ratio_cpu,
                            "met": ratio <= limit})
        else:
            targets.append({"versus": other, "limit": limit, "ratio_wall": None, "ratio_cpu": None,
                            "met": None})
    method = next(iter(memory.values()))["method"] if memory else None
    return {"case": case, "title": module.TITLE, "rows": rows, "targets": targets, "memory_method": method}


def print_case(result):
    print(f"\n{result['title']}")
    header = f"  {'contender':<22} {'wall ms':>9} {'CPU ms':>9} {'stevq/this':>11} {'(CPU)':>6} {'step MB':>8}  check"
    print(header)
    for row in result["rows"]:
        memory = "-" if row["memory_mb"] is None else f"{row['memory_mb']:.0f}"
        print(f"  {row['contender']:<22} {row['wall_ms']:9.2f} {row['cpu_ms']:9.2f} {row['ratio_wall']:10.2f}x "
              f"{row['ratio_cpu']:5.2f}x {memory:>8}  {row['check'] or ''}")
    for target in result["targets"]:
        if target["ratio_wall"] is None:
            print(f"  target stevq <= {target['limit']}x {target['versus']}: not measured ({target['versus']} absent)")
        else:
            verdict = "met" if target["met"] else "MISSED"
            print(f"  target stevq <= {target['limit']}x {target['versus']}: {target['ratio_wall']:.2f}x wall "
                  f"({target['ratio_cpu']:.2f}x CPU) -> {verdict}")


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
    return [timed_command([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]),
            timed_command([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_lectures.py", "-k", "quick_mode"], {"STEVQ_QUICK": "1"})]


def main(argv=None):
    args = parse(argv)
    timing.set_threads(args.threads)
    if args.memory_of:
        return memory_of(args)
    import numpy as np
    torch = import_torch(args)
    print(f"numpy {np.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{platform.machine()}; {args.threads} thread(s) for every library; float32; "
          f"median of {args.repeats}{'; SMALL sizes (smoke test)' if args.small else ''}")
    print(f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads)" if torch is not None
          else "PyTorch: not installed or --no-torch; its rows and ratios are left out")
    results = {"threads": args.threads, "repeats": args.repeats, "small": args.small,
               "torch": None if torch is None else torch.__version__, "cases": []}
    for case in args.cases:
        result = run_case(case, args, torch)
        results["cases"].append(result)
        print_case(result)
    if results["cases"] and not args.no_memory:
        print(f"\n  step MB: {results['cases'][0]['memory_method']}, in a fresh subprocess per contender")
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
