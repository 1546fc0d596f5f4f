"""Running an experiment (a ``protocol.Experiment``): its parts, for one seed or several, here or on
any ``concurrent.futures.Executor``; and its results over seeds.

    run(experiment, config, out_dir, seeds=None, executor=None, jobs=None, progress=True) -> metrics

Each seed is a complete run in ``out_dir/seed-N`` (``out_dir`` itself for one seed; the default
is ``config.seed`` alone), and for several seeds ``out_dir`` gets the mean and standard deviation
over them. Every finished part is stored as ``parts/NAME.json`` with its provenance, and each
summary is made from those files, so a resumed run and a fresh one summarise the same numbers; a
run started again computes only the parts not on disk.

The missing parts go to ``executor`` as soon as the parts they need are on disk, at most ``jobs``
at a time: ``None`` computes them here, in plan order (the Python API); ``workers.processes(jobs)``
in local worker processes (the command line); ``workers.dask(address)`` on a Dask cluster; any
other executor whose workers import this stevq and see ``out_dir`` will do. A part computes the
same numbers wherever it runs (``protocol``) with the same BLAS thread count: OpenBLAS's thread
count changes the last bits of a float32 product, so both kinds of workers run one thread each.

Over several seeds, ``seed_tables`` names the entries of the metrics that are averaged, each with
its key fields (what identifies a row: ``{"rows": ("model", "K", "codes", "variant")}``). An entry
is a list of rows (dicts), matched by position, whose key fields must agree across seeds and are
kept, every other number becoming a statistic; a dict, each value aggregated the same way; or a
number, a statistic. A statistic is ``{"mean", "sd", "n", "values"}`` with the sample standard
deviation (``ddof = 1``; 0 for one seed). Booleans count as 0 / 1 (the mean is the fraction of
seeds where it holds). Text that differs across seeds is kept as the list of the seeds' values;
lists of numbers (curves) are left to the seeds' own metrics.json.
"""

import concurrent.futures
import dataclasses
import math
import numbers
import pathlib
import time

from stevq import backend, runio, validate
from stevq.experiments import provenance
from stevq.experiments.protocol import ordered

# the data loaders' arguments, as the settings that feed them are called
SETTING_OF = {"train_limit": "train_size", "test_limit": "test_size"}
NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}  # how runio stores them


def prepare(experiment, config):
    """Load what the parts read (``experiment.data``) before any directory is made; data or
    settings that do not fit (a truncated or damaged data file, more examples than the data set
    has) raise ``runio.SetupError``."""
    try:
        experiment.data(config)
    except validate.ArgumentError as err:
        setting = SETTING_OF.get(err.argument)
        raise runio.SetupError(err.renamed(setting) if setting else str(err)) from err
    except (FileNotFoundError, runio.SetupError):  # DataUnavailableError: its own message
        raise
    except (ValueError, EOFError, OSError) as err:  # a truncated or damaged file
        raise runio.SetupError(str(err)) from err


def seed_dir(out_dir, seed, seeds):
    """The run directory of ``seed``: ``out_dir`` itself for a single seed, else ``out_dir/seed-N``."""
    return pathlib.Path(out_dir) if len(seeds) == 1 else pathlib.Path(out_dir) / f"seed-{seed}"


def top_config(config, seeds):
    """The configuration of a run over ``seeds`` (stored in its directory's config.json)."""
    values = dataclasses.asdict(config)
    values.pop("seed", None)
    return {**values, "seeds": list(seeds)}


def run(experiment, config, out_dir, seeds=None, executor=None, jobs=None, progress=True):
    """Every part of every seed (see the module docstring); returns the metrics of the single
    seed, or the aggregate over several."""
    seeds = [config.seed] if seeds is None else list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: expected distinct seeds, got {seeds}")
    started, clock = provenance.now(), time.perf_counter()
    provenance.commit()  # read now, when the code this run uses was loaded
    configs = {seed: dataclasses.replace(config, seed=seed) for seed in seeds}
    prepare(experiment, configs[seeds[0]])  # the data (the same for every seed): no data, no run
    data = experiment.data_origin(configs[seeds[0]])
    top = top_config(config, seeds) if len(seeds) > 1 else None
    if top is not None:  # another run's directory is refused before anything is written
        runio.Run.check(out_dir, top, data)
    for seed in seeds:
        runio.Run.check(seed_dir(out_dir, seed, seeds), configs[seed], data)
    with runio.locked(out_dir):
        top = runio.Run(out_dir, top, data) if top is not None else None
        records = {seed: runio.Run(seed_dir(out_dir, seed, seeds), configs[seed], data) for seed in seeds}
        plans = {seed: ordered(experiment.plan(configs[seed])) for seed in seeds}
        todo = [
            (seed, part) for seed in seeds for part in plans[seed] if not records[seed].part_path(part.name).exists()
        ]
        _compute(experiment, todo, configs, records, executor, jobs, progress)
        per_seed = {seed: _summarize(experiment, configs[seed], records[seed], plans[seed]) for seed in seeds}
        provenance.save_run(
            out_dir,
            experiment.name,
            data,
            [records[s].dir for s in seeds],
            [part.name for part in plans[seeds[0]]],
            provenance.invocation(started, time.perf_counter() - clock, 1 if executor is None else jobs, len(todo)),
        )
        if top is None:
            return per_seed[seeds[0]]
        metrics = aggregate(per_seed, experiment.seed_tables)
        top.finish(metrics, summary(experiment.name, config, metrics, {s: records[s].dir for s in seeds}))
    return metrics


def _summarize(experiment, config, record, parts):
    """Summarise the finished ``parts`` of ``record`` (read back from disk) and write its files."""
    results = {part.name: runio.load_json(record.part_path(part.name)) for part in parts}
    metrics, text, figures = experiment.summarize(config, results)
    record.finish(metrics, text, figures)
    return metrics


def compute_and_save(experiment, backend_name, config, part, run_dir, progress):
    """Wherever it runs: compute one part on the backend ``backend_name``, record its provenance
    (commit, seconds), then store the part itself."""
    if backend.name() != backend_name:  # a worker that does not run the backend of the run
        backend.use(backend_name)
    clock, cpu = time.perf_counter(), time.process_time()
    result = experiment.compute_part(config, part, run_dir, progress)
    provenance.save_part(run_dir, part.name, time.perf_counter() - clock, time.process_time() - cpu)
    runio.save_json(pathlib.Path(run_dir) / "parts" / f"{part.name}.json", result)
    return part.name


class _Here(concurrent.futures.Executor):
    """Each part computed in this process when it is submitted (the runner submits one at a time)."""

    def submit(self, function, /, *args, **kwargs):
        future = concurrent.futures.Future()
        try:
            future.set_result(function(*args, **kwargs))
        except Exception as err:  # noqa: BLE001 - handed to the runner through the future, as any executor does
            future.set_exception(err)
        return future


def _compute(experiment, todo, configs, records, executor, jobs, progress):
    """Compute the (seed, part) pairs of ``todo`` (the parts not yet on disk), each once the parts
    it needs are on disk. One progress bar over the parts (a single worker shows its training's
    bars as well). On an error the parts already running finish (and are kept) before it is
    raised; on Ctrl-C the parts not started are cancelled."""
    if not todo:
        return
    limit = 1 if executor is None else jobs or len(todo)
    executor = _Here() if executor is None else executor
    unfinished = {(seed, part.name) for seed, part in todo}  # parts not in todo are on disk
    waiting, running = list(todo), {}
    bar = runio.progress(range(len(todo)), f"{experiment.name}: parts", progress and len(todo) > 1)
    bar = bar if hasattr(bar, "update") else None
    try:
        while waiting or running:
            for seed, part in [(s, p) for s, p in waiting if not any((s, name) in unfinished for name in p.after)]:
                if len(running) >= limit:
                    break
                waiting.remove((seed, part))
                future = executor.submit(
                    compute_and_save,
                    experiment,
                    backend.name(),
                    configs[seed],
                    part,
                    str(records[seed].dir),
                    progress and min(limit, len(todo)) == 1,
                )
                running[future] = (seed, part.name)
            finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                seed, name = running.pop(future)
                future.result()  # re-raises the part's error
                unfinished.discard((seed, name))
                if bar is not None:
                    bar.set_postfix_str(f"seed {seed} {name}", refresh=False)
                    bar.update()
    except Exception:
        for future in running:
            future.cancel()
        concurrent.futures.wait(running)  # the parts already running finish and are kept
        raise
    except KeyboardInterrupt:
        for future in running:
            future.cancel()
        raise
    finally:
        if bar is not None:
            bar.close()


# ---------------------------------------------------------------- results over seeds


def statistic(values):
    """Mean, sample standard deviation, count and the values themselves."""
    values = [NON_FINITE.get(v, v) if isinstance(v, str) else float(v) for v in values]
    n = len(values)
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "n": n, "values": values}


def is_statistic(value):
    return isinstance(value, dict) and set(value) == {"mean", "sd", "n", "values"}


def _number(value):
    return isinstance(value, numbers.Number) or (isinstance(value, str) and value in NON_FINITE)


def _combine(values, keys, where):
    """Aggregate one entry given as its value in every seed."""
    first = values[0]
    if all(_number(v) for v in values) and not all(isinstance(v, str) for v in values):
        return statistic(values)
    if isinstance(first, dict):
        if any(not isinstance(v, dict) or set(v) != set(first) for v in values):
            raise ValueError(f"seeds: {where} has different fields in different seeds")
        return {
            name: (
                first[name]
                if name in keys and _same([v[name] for v in values], where, name)
                else _combine([v[name] for v in values], keys, f"{where}.{name}")
            )
            for name in first
        }
    if isinstance(first, list) and first and all(isinstance(row, dict) for row in first):
        if any(len(v) != len(first) for v in values):
            raise ValueError(f"seeds: {where} has a different number of rows in different seeds")
        return [_combine([v[i] for v in values], keys, f"{where}[{i}]") for i in range(len(first))]
    if all(v == first for v in values):
        return first
    return {"values": values}


def _same(values, where, name):
    if any(v != values[0] for v in values):
        raise ValueError(f"seeds: key field {name!r} of {where} differs across seeds: {values}")
    return True


def aggregate(per_seed, tables):
    """``{"seeds": [...], "mean_sd": {entry: aggregated}}`` from ``{seed: metrics}``."""
    seeds = list(per_seed)
    return {
        "seeds": seeds,
        "mean_sd": {
            entry: _combine([per_seed[s][entry] for s in seeds], set(keys), entry)
            for entry, keys in tables.items()
            if all(entry in per_seed[s] for s in seeds)
        },
    }


def cell(value, digits=4):
    """``mean ± sd`` for a statistic, the value itself otherwise."""
    if is_statistic(value):
        return f"{value['mean']:.{digits}g} ± {value['sd']:.2g}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, dict) and set(value) == {"values"}:
        return " / ".join(map(str, value["values"]))
    return str(value)


def _table(rows):
    """A Markdown table of aggregated rows."""
    columns = list(dict.fromkeys(name for row in rows for name in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _section(entry, value):
    if is_statistic(value) or not isinstance(value, (dict, list)):
        return [f"- {entry}: {cell(value)}", ""]
    if isinstance(value, list):
        return [f"## {entry}", "", _table(value)]
    if all(isinstance(v, dict) and not is_statistic(v) for v in value.values()):
        return [f"## {entry}", "", _table([{"": name, **_flat(v)} for name, v in value.items()])]
    return [f"## {entry}", "", _table([_flat(value)])]


def _flat(row):
    """Nested dicts of statistics as one row (``outer.inner`` columns)."""
    flat = {}
    for name, value in row.items():
        if isinstance(value, dict) and not is_statistic(value) and set(value) != {"values"}:
            flat.update({f"{name}.{inner}": v for inner, v in _flat(value).items()})
        else:
            flat[name] = value
    return flat


def summary(name, config, metrics, seed_dirs):
    """The Markdown summary of experiment ``name`` over several seeds: every aggregated entry as
    mean ± sd."""
    seeds = metrics["seeds"]
    lines = [
        f"# {name}{' - quick' if getattr(config, 'quick', False) else ''}: mean ± sd over {len(seeds)} seeds "
        f"({', '.join(map(str, seeds))})",
        "",
        "Each cell: mean ± sample standard deviation over the seeds (every seed's value is in "
        "metrics.json). Each seed's own summary, figures and curves: "
        + ", ".join(f"{directory.name}/summary.md" for directory in seed_dirs.values())
        + ".",
        "",
    ]
    for entry, value in metrics["mean_sd"].items():
        lines += _section(entry, value)
    return "\n".join(lines) + "\n"
