"""The command line:

    python -m stevq list                         the experiments, one line each
    python -m stevq show NAME                    NAME's settings: types, quick and full defaults, meaning
    python -m stevq run NAME [--quick] [--backend numpy|cupy|array_api_strict] [--seed N | --seeds 0,1,2]
                        [--jobs N | --executor dask://HOST:PORT] [--out DIR] [--data-dir DIR]
                        [--set FIELD=VALUE ...] [--no-progress]
    python -m stevq report DIR                   the summary tables of a run, or of every run below DIR
    python -m stevq claims DIR [--out FILE] [--readme README.md]
                                                 the ledger of the papers' claims from the runs below DIR
                                                 (default FILE: docs/claims.md); with --readme, also the
                                                 README's record tables (python -m stevq claims records
                                                 --readme README.md regenerates both from the record)

A run writes config.json, metrics.json, PNG figures and summary.md into DIR (default
runs/NAME, or runs/NAME-quick in quick mode). Running the same command again after an interruption
loads the parts that finished and computes the rest. With ``--seeds 0,1,2`` each seed is a run
in DIR/seed-N and DIR gets the mean ± sd over the seeds; the (seed, part) runs go to ``--jobs``
worker processes (default: one per core) with one BLAS thread each, so any ``--jobs`` gives the
same numbers, bit for bit; ``--executor dask://HOST:PORT`` sends them to a Dask cluster instead
(``stevq.experiments.workers``). ``--set`` changes any field of the experiment's
Config, e.g. ``--set lr=0.05 --set bits=2,4 --set quick=yes``; the text is converted by the field's
type (``stevq.experiments.settings``), and a value that does not fit is a usage error.

Exit status: 0 on success, 1 when training stopped on NaN/inf, 2 for a usage error, 130 when
interrupted.
"""

import argparse
import os
import pathlib
import signal
import sys
import threading

from stevq.cli_arguments import (
    UsageError,
    build_config,
    check_out_dir,
    check_seeds,
    executor_of,
    experiment_named,
    seeds_and_jobs,
)

EXIT_USAGE, EXIT_TRAINING, EXIT_INTERRUPTED = 2, 1, 130


def _description(name):
    """First line of an experiment's docstring."""
    from stevq import experiments

    try:
        return experiments.get(name).description
    except Exception as err:  # one broken module must not hide the others
        return f"(cannot be imported: {type(err).__name__}: {err})"


def command_list(args):
    from stevq.experiments import EXPERIMENTS

    width = max((len(name) for name in EXPERIMENTS), default=0)
    for name in sorted(EXPERIMENTS):
        print(f"{name:<{width}}  {_description(name)}")
    return 0


def _inside(filename, directory):
    """True when ``filename`` (may be None) is ``directory`` or lies below it."""
    if filename is None:
        return False
    path = pathlib.Path(filename).resolve()
    return directory.resolve() in (path, *path.parents)


def command_show(args):
    from stevq.experiments import settings

    print(settings.describe(experiment_named(args.name)), end="")
    return 0


class _RunHelp(argparse.Action):
    """``run NAME --help``: the options, then NAME's settings (as ``show NAME``)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.print_help()
        name = getattr(namespace, "name", None)
        if name:
            from stevq import experiments
            from stevq.experiments import settings

            if name in experiments.EXPERIMENTS:
                print("\n" + settings.describe(experiments.get(name)), end="")
            else:
                print(f"\nunknown experiment {name!r}; the experiments: {', '.join(sorted(experiments.EXPERIMENTS))}")
        parser.exit()


def command_run(args):
    from stevq import allocator, backend, data, runio, validate
    from stevq.experiments import runner

    experiment = experiment_named(args.name)
    seeds, jobs = seeds_and_jobs(args)
    if seeds is not None:
        args.seed = seeds[0]
    config = build_config(experiment, args)
    if seeds:
        check_seeds(config, seeds)
    if args.out is not None and not args.out.strip():
        raise UsageError(
            f"--out: expected a directory name, got an empty string (leave --out out for the default runs/{args.name})"
        )
    out_dir = check_out_dir(args.out or f"runs/{args.name}{'-quick' if config.quick else ''}")
    executor = executor_of(args, jobs)
    try:
        switch = backend.use(args.backend or backend.name())
    except (ImportError, RuntimeError, ValueError) as err:
        raise UsageError(f"--backend: {err}") from err
    allocator.keep_freed_memory()  # each step's arrays reuse the last step's memory (stevq.allocator)
    if threading.current_thread() is threading.main_thread():
        # a shell starts background jobs with SIGINT ignored; `kill -INT` on this process should still
        # stop the run (and its workers) as Ctrl-C does
        signal.signal(signal.SIGINT, signal.default_int_handler)
    with switch:
        try:
            with executor as parts_go_to:  # every (seed, part) in worker processes, or on the cluster
                runner.run(experiment, config, out_dir, seeds, parts_go_to, jobs, not args.no_progress)
        except validate.ArgumentError as err:  # no Dask here, or no scheduler at that address
            if err.argument != "executor":
                raise
            raise UsageError(f"--executor: {err.message}") from None
        except (runio.OutDirError, runio.SetupError) as err:  # another run's directory, data that do not fit
            raise UsageError(str(err)) from None
        except data.DataUnavailableError as err:
            raise UsageError(err.advice("--data-dir DIR")) from None
        except OSError as err:  # e.g. the directory made read-only while running
            if not _inside(err.filename, out_dir):
                raise
            raise UsageError(f"--out: cannot write the results in {out_dir}: {err.strerror} ({err.filename})") from None
        except runio.NonFiniteError as err:
            print(f"error: training stopped: {err}\nfinished parts are kept in {out_dir}", file=sys.stderr)
            return EXIT_TRAINING
        except KeyboardInterrupt:
            print(
                f"\ninterrupted: finished parts are kept in {out_dir}; run the same command again to resume",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
    print((out_dir / "summary.md").read_text())
    print(f"results in {out_dir}")
    return 0


def command_claims(args):
    from stevq import runio, validate
    from stevq.experiments import claims

    root = pathlib.Path(args.dir)
    if not root.is_dir():
        raise UsageError(f"claims: {root} is not a directory")
    out = pathlib.Path(args.out)
    if out.exists() and out.is_dir():
        raise UsageError(f"--out: {out} is a directory; expected a file name such as docs/claims.md")
    readme = None
    if args.readme is not None:
        try:
            readme = claims.tables.update_readme(root, args.readme)
        except OSError as err:
            raise UsageError(f"--readme: cannot read {args.readme}: {err.strerror}") from None
        except validate.ArgumentError as err:  # no record-table markers
            raise UsageError(f"--readme: {err.message}") from None
    for path, reason in claims.damaged_results(root):
        print(f"warning: {path} is damaged ({reason}); its run is left out of the ledger", file=sys.stderr)
    try:
        rows = claims.write(root, out)
        if readme is not None:
            runio.save_text(args.readme, readme)
            print(f"record tables written to {args.readme}")
    except runio.NotARegularFile as err:
        raise UsageError(f"--out: {err}") from None
    except OSError as err:
        raise UsageError(f"--out: cannot write {err.filename or out}: {err.strerror}") from None
    counts = {}
    for row in rows:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    print(
        f"{len(rows)} claims: " + ", ".join(f"{n} {verdict}" for verdict, n in counts.items()) + f"; written to {out}"
    )
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
        parts = len(list(directory.glob("**/parts/*.json")))  # a run over seeds: its seed-N/parts
        print(f"unfinished run: {directory} ({parts} parts done); run it again to finish")
    from stevq.experiments import claims

    for path, reason in claims.damaged_results(root):
        print(f"damaged result: {path} ({reason}); run its command again (finished parts are reused) to rewrite it")
    if not summaries and not unfinished:
        raise UsageError(f"report: no results under {root} (no summary.md or config.json found)")
    return 0


def parser():
    from stevq.backend import BACKENDS

    top = argparse.ArgumentParser(
        prog="python -m stevq", description="stevq experiments: run them and read their results."
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="{list,show,run,report,claims}")
    commands.add_parser("list", help="list the experiments").set_defaults(handler=command_list)
    show = commands.add_parser("show", help="an experiment's settings: types, quick and full defaults, meaning")
    show.add_argument("name", help="experiment name (see: python -m stevq list)")
    show.set_defaults(handler=command_show)
    run = commands.add_parser(
        "run",
        help="run an experiment",
        add_help=False,
        epilog="python -m stevq run NAME --help also lists NAME's settings",
    )
    run.add_argument("-h", "--help", action=_RunHelp, help="show this help (and NAME's settings) and exit")
    run.add_argument("name", help="experiment name (see: python -m stevq list)")
    run.add_argument("--quick", action="store_true", help="the quick mode (seconds): a subset of the grid and the data")
    run.add_argument("--backend", choices=BACKENDS, help="array backend (default: STEVQ_BACKEND or numpy)")
    run.add_argument("--seed", type=int, help="random seed, an integer >= 0 (default: the Config's)")
    run.add_argument("--seeds", metavar="S1,S2,...", help="several seeds, e.g. 0,1,2: mean ± sd over them")
    run.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: the number of cores)")
    run.add_argument(
        "--executor",
        metavar="dask://HOST:PORT",
        help="compute the parts on the Dask cluster of that "
        "scheduler (pip install stevq[cluster]; the workers need this stevq and --out on a shared file "
        "system); default: local worker processes",
    )
    run.add_argument("--out", help="results directory (default: runs/NAME or runs/NAME-quick)")
    run.add_argument("--data-dir", help="directory holding the IDX files of the data set")
    run.add_argument("--set", action="append", metavar="FIELD=VALUE", help="change a Config field (repeatable)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(handler=command_run)
    report = commands.add_parser("report", help="print the summary tables of a results directory")
    report.add_argument("dir", help="a run directory, or a directory holding several")
    report.set_defaults(handler=command_report)
    ledger = commands.add_parser(
        "claims", help="write the ledger of the papers' claims from the runs below a directory"
    )
    ledger.add_argument("dir", help="a directory holding runs (e.g. runs)")
    ledger.add_argument("--out", default="docs/claims.md", help="the Markdown file to write (default: docs/claims.md)")
    ledger.add_argument(
        "--readme", metavar="FILE", help="also rewrite the record tables between the markers of FILE (the README)"
    )
    ledger.set_defaults(handler=command_claims)
    return top


def main(argv=None):
    try:
        args = parser().parse_args(argv)
        return args.handler(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # before or after a run's own handler (e.g. while importing): no traceback
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `python -m stevq report runs | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
