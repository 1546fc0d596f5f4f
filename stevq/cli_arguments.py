"""The command line's arguments, checked and turned into what a command needs: the experiment of a
name, its Config from ``--quick``, ``--seed``, ``--data-dir`` and ``--set FIELD=VALUE``, the seeds and
the worker count, the executor the parts go to, and the output directory. A mistake raises
``UsageError`` with a message that says what to change, before anything runs or is created
(``python -m stevq`` prints it as an ``error:`` line and exits with status 2).
"""

import os
import pathlib
import sys
import tempfile


class UsageError(Exception):
    """A mistake in the command line; the message says what to change."""


def experiment_named(name):
    """The experiment ``name`` (``stevq.experiments.get``); an unknown name is a usage error."""
    from stevq import experiments, validate

    try:
        return experiments.get(name)
    except validate.ArgumentError as err:
        raise UsageError(str(err)) from None


def build_config(experiment, args):
    """The experiment's Config from --quick, --seed, --data-dir and --set FIELD=VALUE, each value
    converted by the type of its field and the whole Config checked: nothing is created before."""
    from stevq.experiments import settings

    fields = {setting.name: setting for setting in settings.settings(experiment)}
    values = {"quick": True} if args.quick else {}
    if args.seed is not None:
        if args.seed < 0:
            raise UsageError(f"--seed: expected an integer >= 0, got {args.seed}")
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
            raise UsageError(
                f"--set: {args.name!r} has no setting {field!r}; its settings are {sorted(fields)} "
                f"(python -m stevq show {args.name})"
            )
        try:
            value = settings.convert(fields[field], text)
        except settings.SettingError as err:
            raise UsageError(f"--set {err}") from None
        if field == "quick" and args.quick and not value:
            raise UsageError("--set quick=false contradicts --quick; give one of them")
        if field == "seed" and value < 0:
            raise UsageError(f"--set seed: expected an integer >= 0, got {value}")
        values[field] = value
    directory = values.get("data_dir")
    if directory is not None and not pathlib.Path(directory).expanduser().is_dir():
        option = "--data-dir" if args.data_dir is not None and directory == str(args.data_dir) else "--set data_dir"
        raise UsageError(f"{option}: expected a directory holding the IDX files, got {directory!r} (no such directory)")
    try:
        config = experiment.Config(**values)
    except (TypeError, ValueError) as err:
        raise UsageError(f"bad setting for {args.name!r}: {err}") from None
    return config


def check_seeds(config, seeds):
    """Every seed of --seeds makes a valid run (a seed can make a setting impossible, e.g. a toy
    teacher without spurious minima); checked before anything runs."""
    import dataclasses

    for seed in seeds:
        try:
            dataclasses.replace(config, seed=seed)
        except (TypeError, ValueError) as err:
            raise UsageError(f"--seeds: seed {seed}: {err}") from None


def check_out_dir(out_dir):
    """``--out`` must be a directory, or a place where one can be made; nothing is created here."""
    path = pathlib.Path(out_dir).expanduser()
    longest = max((len(os.fsencode(part)) for part in path.parts), default=0)
    if longest > 255 or len(os.fsencode(str(path.absolute()))) > 4000:
        raise UsageError(
            f"--out: the path is too long for the file system (a name of {longest} bytes; at most 255 "
            "per name); choose a shorter directory name"
        )
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out: {path} is a file; expected a directory (existing or to be made)")
    ancestor = path if path.exists() else path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"--out: {ancestor} is a file, so {path} cannot be made; expected a directory")
    try:  # the only sure test (permissions, read-only file systems, root): make and remove a directory
        os.rmdir(tempfile.mkdtemp(dir=ancestor, prefix=".stevq-probe-"))
    except OSError as err:
        raise UsageError(f"--out: cannot write in {ancestor} ({err.strerror}); choose another directory") from None
    return path


def seeds_and_jobs(args):
    """The seeds (--seed N or --seeds 0,1,2; default the Config's) and the worker count (--jobs)."""
    if args.seeds is None:
        seeds = None
    else:
        if args.seed is not None or any(a.partition("=")[0].strip() == "seed" for a in args.set or []):
            raise UsageError("--seeds: give either --seeds or --seed (--seeds 3 is --seed 3)")
        try:
            seeds = [int(text) for text in args.seeds.split(",")]
        except ValueError:
            raise UsageError(
                f"--seeds: expected integers separated by commas, like 0,1,2; got {args.seeds!r}"
            ) from None
        if any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
            raise UsageError(f"--seeds: expected distinct non-negative integers, got {args.seeds!r}")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs: expected a number of worker processes >= 1, got {args.jobs}")
    if args.executor is not None:  # a cluster: at most --jobs parts at a time if given, else every ready part
        return seeds, args.jobs
    from stevq.experiments import workers

    cores = workers.default_jobs()
    jobs = cores if args.jobs is None else args.jobs
    if jobs > cores:
        print(
            f"note: --jobs {jobs} is more than the {cores} cores this process may use; running {cores} workers "
            "(more would only share the cores and multiply the memory)",
            file=sys.stderr,
        )
        jobs = cores
    return seeds, jobs


def executor_of(args, jobs):
    """The executor the parts go to: ``--executor dask://HOST:PORT`` (a Dask cluster), else ``jobs``
    local worker processes (a context manager either way)."""
    from stevq.experiments import workers

    if args.executor is None:
        return workers.processes(jobs)
    scheme, _, address = args.executor.partition("://")
    if scheme != "dask" or not address.strip():
        raise UsageError(
            f"--executor: expected dask://HOST:PORT (the address of a Dask scheduler), got {args.executor!r}"
        )
    return workers.dask(f"tcp://{address.strip()}")
