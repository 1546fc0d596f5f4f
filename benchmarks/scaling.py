"""The scaling table of case (a): the MLP VQ-VAE step (784-512-64, D = 64) at batch 64 / 256 / 1024 /
4096 and K = 256 / 1024 / 4096 / 16384, stevq and PyTorch side by side, time and peak memory.

    python benchmarks/scaling.py                       # the whole table (several minutes)
    python benchmarks/scaling.py --batches 64 256 --codes 256 --markdown table.md

Each (contender, batch, K) runs in a fresh process (``run.py --child``), stevq first; the big cells
get fewer timed calls (``repeats_for``). Shown per cell: the median wall time of a step, its CPU
time, and the step's extra peak memory (``timing.step_memory``), for stevq and for PyTorch, and
stevq / PyTorch of the wall times. Wall and CPU time both: on a shared machine CPU time moves less.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import run  # noqa: E402
import timing  # noqa: E402

N_IN, HIDDEN, DIM = 784, 512, 64


def repeats_for(batch, codes, most):
    """Fewer timed calls for the big cells: about 2e7 batch x K pairs in all, between 3 and ``most``."""
    return max(3, min(most, int(2e7 // (batch * codes))))


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024, 4096])
    parser.add_argument("--codes", type=int, nargs="+", default=[256, 1024, 4096, 16384])
    parser.add_argument("--repeats", type=int, default=10, help="timed calls of the smallest cells")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--malloc", choices=("kept", "default"), default="kept", help="as in run.py")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    if min(args.batches + args.codes + [args.repeats, args.threads]) < 1:
        parser.error("--batches, --codes, --repeats and --threads take positive numbers")
    return args


def main(argv=None):
    args = parse(argv)
    timing.set_threads(args.threads)
    torch_available = not args.no_torch and run.import_torch(args) is not None
    names = ["stevq"] + ["PyTorch"] * torch_available
    header = (
        "| batch | K | stevq ms wall (CPU) | stevq MB | PyTorch ms wall (CPU) | PyTorch MB | stevq / PyTorch wall (CPU) |\n"
        "|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [run.load_line() + "; " + run.MALLOC_LINES[args.malloc]]
    print(lines[0])
    print(header)
    for batch in args.batches:
        for codes in args.codes:
            child_args = argparse.Namespace(
                threads=args.threads,
                repeats=repeats_for(batch, codes, args.repeats),
                small=False,
                no_memory=False,
                malloc=args.malloc,
            )
            cells = {}
            for name in names:
                result = run.measure("a", name, child_args, sizes=(N_IN, HIDDEN, DIM, codes, batch))
                cells[name] = (
                    1e3 * timing.spread(result["wall"])[0],
                    1e3 * timing.spread(result["cpu"])[0],
                    result["memory_mb"],
                )
            stevq = cells["stevq"]
            torch = cells.get("PyTorch")
            row = f"| {batch} | {codes} | {stevq[0]:.1f} ({stevq[1]:.1f}) | {stevq[2]:.0f} | " + (
                f"{torch[0]:.1f} ({torch[1]:.1f}) | {torch[2]:.0f} | {stevq[0] / torch[0]:.2f}x ({stevq[1] / torch[1]:.2f}x) |"
                if torch
                else "- | - | - |"
            )
            print(row, flush=True)
            lines.append(row)
    lines.append(run.load_line())
    print(lines[-1])
    blas = timing.blas_report()
    print("\n".join(blas))
    if args.markdown:
        with open(args.markdown, "w") as out:
            out.write("\n".join([lines[0], "", header] + lines[1:-1] + ["", lines[-1]] + blas) + "\n")


if __name__ == "__main__":
    main()
