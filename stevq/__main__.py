"""The command line:

    python -m stevq list                         the experiments, one line each
    python -m stevq run NAME [--quick] [--backend numpy|cupy|array_api_strict] [--seed N | --seeds 0,1,2]
                        [--jobs N] [--out DIR] [--data-dir DIR] [--set FIELD=VALUE ...] [--no-progress]
    python -m stevq report DIR                   the summary tables of a run, or of every run below DIR

A run writes config.json, metrics.json, PNG figures and summary.md into DIR (default
runs/NAME or runs/NAME-quick). Running the same command again after an interruption loads the
parts that finished and computes the rest. With ``--seeds 0,1,2`` each seed is a run in
DIR/seed-N and DIR gets the mean ± sd over the seeds; the (seed, part) runs go to ``--jobs``
worker processes (default: one per core; a parallel run's numbers are a serial run's). ``--set`` changes any field of the experiment's Config,
e.g. ``--set lr=0.05 --set "bits=(2, 4)"`` (values are Python literals; anything else is a string).

Exit status: 0 on success, 1 when training stopped on NaN/inf, 2 for a usage error, 130 when
interrupted.
"""
import argparse
import ast
import dataclasses
import os
import pathlib
import sys

EXIT_USAGE, EXIT_TRAINING, EXIT_INTERRUPTED = 2, 1, 130


class UsageError(Exception):
    """A mistake in the command line; the message says what to change."""


def _description(module_path):
    """First line of an experiment module's docstring."""
    import importlib
    try:
        module = importlib.import_module(module_path)
    except Exception as err:  # one broken module must not hide the others
        return f"(cannot be imported: {type(err).__name__}: {err})"
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""


def command_list(args):
    from stevq.experiments import EXPERIMENTS
    width = max((len(name) for name in EXPERIMENTS), default=0)
    for name in sorted(EXPERIMENTS):
        print(f"{name:<{width}}  {_description(EXPERIMENTS[name])}")
    return 0


def _literal(text):
    """A --set value: a Python literal if it parses as one, else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def build_config(module, args):
    """The experiment's Config from --quick, --seed, --data-dir and --set FIELD=VALUE."""
    fields = {field.name for field in dataclasses.fields(module.Config)}
    values = {"quick": args.quick}
    if args.seed is not None:
        values["seed"] = args.seed
    if args.data_dir is not None:
        if "data_dir" not in fields:
            raise UsageError(f"--data-dir: experiment {args.name!r} does not read an image data set")
        values["data_dir"] = str(args.data_dir)
    for assignment in args.set or []:
        field, separator, text = assignment.partition("=")
        field = field.strip()
        if not separator or not field:
            raise UsageError(f"--set: expected FIELD=VALUE, got {assignment!r}")
        if field not in fields:
            raise UsageError(f"--set: {args.name!r} has no setting {field!r}; its settings are {sorted(fields)}")
        values[field] = _literal(text.strip())
    try:
        return module.Config(**values)
    except (TypeError, ValueError) as err:
        raise UsageError(f"bad setting for {args.name!r}: {err}") from err


def seeds_and_jobs(module, args):
    """The seeds (--seed N or --seeds 0,1,2; default the Config's) and the worker count (--jobs)."""
    if args.seed is not None and args.seeds is not None:
        raise UsageError("--seed and --seeds: give one of them (--seeds 3 is --seed 3)")
    if args.seeds is None:
        seeds = None
    else:
        try:
            seeds = [int(text) for text in args.seeds.split(",")]
        except ValueError:
            raise UsageError(f"--seeds: expected integers separated by commas, like 0,1,2; got {args.seeds!r}") from None
        if any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
            raise UsageError(f"--seeds: expected distinct non-negative integers, got {args.seeds!r}")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs: expected a number of worker processes >= 1, got {args.jobs}")
    if seeds is not None and len(seeds) > 1 and not hasattr(module, "plan"):
        raise UsageError(f"--seeds: experiment {args.name!r} runs one seed at a time; use --seed N")
    return seeds, args.jobs


def command_run(args):
    from stevq import backend, data, experiments, runio
    from stevq.experiments import scheduler
    try:
        module = experiments.get(args.name)
    except ValueError as err:
        raise UsageError(str(err)) from err
    seeds, jobs = seeds_and_jobs(module, args)
    if seeds is not None:
        args.seed = seeds[0]
    config = build_config(module, args)
    out_dir = pathlib.Path(args.out or f"runs/{args.name}{'-quick' if args.quick else ''}")
    try:
        switch = backend.use(args.backend or backend.name())
    except (ImportError, RuntimeError, ValueError) as err:
        raise UsageError(f"--backend: {err}") from err
    with switch:
        try:
            if hasattr(module, "plan"):
                scheduler.run_seeds(module, config, seeds or [config.seed], out_dir, jobs, not args.no_progress)
            else:
                module.run(config, out_dir, progress=not args.no_progress)
        except ValueError as err:
            if str(err).startswith("out_dir:"):  # runio.Run: the directory holds a run with another config
                raise UsageError(str(err)) from err
            raise
        except data.DataUnavailableError as err:
            raise UsageError(str(err)) from err
        except runio.NonFiniteError as err:
            print(f"error: training stopped: {err}\nfinished parts are kept in {out_dir}", file=sys.stderr)
            return EXIT_TRAINING
        except KeyboardInterrupt:
            print(f"\ninterrupted: finished parts are kept in {out_dir}; run the same command again "
                  "to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
    print((out_dir / "summary.md").read_text())
    print(f"results in {out_dir}")
    return 0


def command_report(args):
    root = pathlib.Path(args.dir)
    if not root.is_dir():
        raise UsageError(f"report: {root} is not a directory")
    summaries = [root / "summary.md"] if (root / "summary.md").exists() else sorted(root.rglob("summary.md"))
    unfinished = sorted(path.parent for path in root.rglob("config.json") if not (path.parent / "summary.md").exists())
    for path in summaries:
        if len(summaries) > 1:
            print(f"==> {path.parent} <==")
        print(path.read_text())
    for directory in unfinished:
        parts = len(list((directory / "parts").glob("*.json")))
        print(f"unfinished run: {directory} ({parts} parts done); run it again to finish")
    if not summaries and not unfinished:
        raise UsageError(f"report: no results under {root} (no summary.md or config.json found)")
    return 0


def parser():
    from stevq.backend import BACKENDS
    top = argparse.ArgumentParser(prog="python -m stevq", description="stevq experiments: run them and read their results.")
    commands = top.add_subparsers(dest="command", required=True, metavar="{list,run,report}")
    commands.add_parser("list", help="list the experiments").set_defaults(handler=command_list)
    run = commands.add_parser("run", help="run an experiment")
    run.add_argument("name", help="experiment name (see: python -m stevq list)")
    run.add_argument("--quick", action="store_true", help="the quick mode (seconds): a subset of the grid and the data")
    run.add_argument("--backend", choices=BACKENDS, help="array backend (default: STEVQ_BACKEND or numpy)")
    run.add_argument("--seed", type=int, help="random seed (default: the Config's)")
    run.add_argument("--seeds", metavar="S1,S2,...", help="several seeds, e.g. 0,1,2: mean ± sd over them")
    run.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: the number of cores)")
    run.add_argument("--out", help="results directory (default: runs/NAME or runs/NAME-quick)")
    run.add_argument("--data-dir", help="directory holding the IDX files of the data set")
    run.add_argument("--set", action="append", metavar="FIELD=VALUE", help="change a Config field (repeatable)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(handler=command_run)
    report = commands.add_parser("report", help="print the summary tables of a results directory")
    report.add_argument("dir", help="a run directory, or a directory holding several")
    report.set_defaults(handler=command_report)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `python -m stevq report runs | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
