"""Running an experiment's parts: one seed in order, or seeds x parts in worker processes.

An experiment module declares its work as named *parts* (one training run each) and how the
finished parts are summarised:

    plan(config)                            -> [Part(name, after=(names it needs), args=...)]
    compute_part(config, part, run_dir, progress) -> the part's metrics (JSON-ready dict)
    summarize(config, results)              -> (metrics, summary_markdown, {figure name: Figure})
    SEED_TABLES = {metrics key: key fields}    what ``seeds.aggregate`` averages over seeds
    effective(config) (optional)            -> the config actually run
    prepare(config) (optional)              loads what the parts need (data): called before any
                                            directory is made, so missing data makes no run

A part's random numbers come from its config (seed included) and its own arguments only, never
from the order in which parts run or from another part's state in the same process; a part
that continues another one (``after``) reads what that one saved in ``run_dir``. So a part
computes the same numbers in the main process or in a worker, in any order: a parallel run is
bit for bit a serial run. Every finished part is stored as ``parts/NAME.json`` (``runio.Run``)
and the summary is made from those files, so a resumed run and a fresh one summarise the same
numbers.

``run_one`` computes one seed's parts in this process (the Python API: ``module.run``).
``run_seeds`` (the command line) runs several seeds: each seed is a complete run in
``out_dir/seed-N`` (``out_dir`` itself for one seed), and ``out_dir`` gets the mean and standard
deviation over seeds (``seeds``). The (seed, part) pairs still missing run in a pool of ``jobs``
worker processes started with the 'spawn' method and one BLAS thread each (set in their
environment before NumPy loads), ``jobs = 1`` included: OpenBLAS's thread count changes the last
bits of a float32 product, so only the same thread count everywhere gives the same numbers.
Workers are spawned, so a script that calls ``run_seeds`` needs the usual
``if __name__ == "__main__":`` guard (the command line has it).
"""
import concurrent.futures
import contextlib
import dataclasses
import importlib
import multiprocessing
import os
import pathlib
import signal
import threading
import time
from collections import namedtuple

from stevq import allocator, backend, runio, validate
from stevq.experiments import provenance

Part = namedtuple("Part", "name after args", defaults=((), None))
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def default_jobs():
    """The number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def effective(module, config):
    return module.effective(config) if hasattr(module, "effective") else config


# the data loaders' arguments, as the settings that feed them are called
SETTING_OF = {"train_limit": "train_size", "test_limit": "test_size"}


def prepare(module, config):
    """Load what the parts need (``module.prepare``); data or settings that do not fit (a truncated
    or damaged data file, more examples than the data set has) raise ``runio.SetupError``."""
    if not hasattr(module, "prepare"):
        return
    try:
        module.prepare(config)
    except validate.ArgumentError as err:
        setting = SETTING_OF.get(err.argument)
        raise runio.SetupError(err.renamed(setting) if setting else str(err)) from err
    except (FileNotFoundError, runio.SetupError):  # DataUnavailableError: its own message
        raise
    except (ValueError, EOFError, OSError) as err:  # a truncated or damaged file
        raise runio.SetupError(str(err)) from err


def ordered(parts):
    """``parts`` with every part after the parts it needs (a stable topological order); raises
    ValueError naming a part whose dependency is not planned."""
    names = {part.name for part in parts}
    for part in parts:
        missing = [name for name in part.after if name not in names]
        if missing:
            raise ValueError(f"plan: part {part.name!r} needs {missing}, which are not planned")
    done, order, waiting = set(), [], list(parts)
    while waiting:
        ready = [part for part in waiting if set(part.after) <= done]
        if not ready:
            raise ValueError(f"plan: circular dependencies among {[part.name for part in waiting]}")
        order += ready
        done |= {part.name for part in ready}
        waiting = [part for part in waiting if part.name not in done]
    return order


def summarize_run(module, config, record, parts):
    """Summarise the finished ``parts`` of ``record`` (read back from disk) and write its files."""
    results = {part.name: runio.load_json(record.part_path(part.name)) for part in parts}
    metrics, text, figures = module.summarize(config, results)
    record.finish(metrics, text, figures)
    return metrics


def run_one(module, config, out_dir, progress=True):
    """One seed, every part in this process in plan order; returns the metrics."""
    started, clock = provenance.now(), time.perf_counter()
    config = effective(module, config)
    prepare(module, config)
    data = provenance.data_of(module, config)
    runio.Run.check(out_dir, config, data)  # another run's directory is refused before anything is made
    with runio.locked(out_dir):
        record = runio.Run(out_dir, config, data)
        parts = ordered(module.plan(config))
        todo = [(config.seed, part) for part in parts if not record.part_path(part.name).exists()]
        _run_here(module, todo, {config.seed: config}, {config.seed: record}, progress)
        metrics = summarize_run(module, config, record, parts)
        provenance.save_run(record.dir, module.NAME, data, [record.dir], [part.name for part in parts],
                            provenance.invocation(started, time.perf_counter() - clock, 1, len(todo)))
    return metrics


def _label(module):
    return module.NAME


def _run_here(module, todo, configs, records, progress):
    """Compute the (seed, part) pairs of ``todo`` (the parts not yet on disk) in this process, in
    order, under one progress bar over the parts."""
    for seed, part in runio.progress(todo, f"{_label(module)}: parts", progress and len(todo) > 1):
        compute_and_save(module, configs[seed], part, records[seed].dir, progress)


def compute_and_save(module, config, part, run_dir, progress):
    """Compute one part, record its provenance (commit, seconds), then store the part itself."""
    clock, cpu = time.perf_counter(), time.process_time()
    result = module.compute_part(config, part, pathlib.Path(run_dir), progress)
    provenance.save_part(run_dir, part.name, time.perf_counter() - clock, time.process_time() - cpu)
    runio.save_json(pathlib.Path(run_dir) / "parts" / f"{part.name}.json", result)
    return result


def seed_dir(out_dir, seed, seeds):
    """The run directory of ``seed``: ``out_dir`` itself for a single seed, else ``out_dir/seed-N``."""
    return pathlib.Path(out_dir) if len(seeds) == 1 else pathlib.Path(out_dir) / f"seed-{seed}"


def run_seeds(module, config, seeds, out_dir, jobs=None, progress=True):
    """Every part of every seed in ``jobs`` worker processes, each seed's files, and for several
    seeds the mean and standard deviation over them in ``out_dir``. Returns the metrics of the
    single seed, or the aggregate of several. The parts are computed in workers even for
    ``jobs = 1``: with one BLAS thread each, as this process may not have (the BLAS thread count
    changes the last bits of float32 products), so that every ``jobs`` gives the same numbers."""
    from stevq.experiments import seeds as across_seeds
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: expected distinct seeds, got {seeds}")
    started, clock = provenance.now(), time.perf_counter()
    provenance.commit()  # read now, when the code this run uses was loaded
    jobs = default_jobs() if jobs is None else jobs
    configs = {seed: effective(module, dataclasses.replace(config, seed=seed)) for seed in seeds}
    prepare(module, configs[seeds[0]])  # the data (the same for every seed): no data, no run
    data = provenance.data_of(module, configs[seeds[0]])
    top_config = across_seeds.top_config(effective(module, config), seeds) if len(seeds) > 1 else None
    if top_config is not None:  # another run's directory is refused before anything is written
        runio.Run.check(out_dir, top_config, data)
    for seed in seeds:
        runio.Run.check(seed_dir(out_dir, seed, seeds), configs[seed], data)
    with runio.locked(out_dir):
        top = runio.Run(out_dir, top_config, data) if top_config is not None else None
        records = {seed: runio.Run(seed_dir(out_dir, seed, seeds), configs[seed], data) for seed in seeds}
        plans = {seed: ordered(module.plan(configs[seed])) for seed in seeds}
        todo = [(seed, part) for seed in seeds for part in plans[seed]
                if not records[seed].part_path(part.name).exists()]
        if todo:
            _run_pool(module, todo, configs, records, jobs, progress)
        per_seed = {seed: summarize_run(module, configs[seed], records[seed], plans[seed]) for seed in seeds}
        names = [part.name for part in plans[seeds[0]]]
        provenance.save_run(out_dir, module.NAME, data, [records[s].dir for s in seeds], names,
                            provenance.invocation(started, time.perf_counter() - clock, jobs, len(todo)))
        if top is None:
            return per_seed[seeds[0]]
        metrics = across_seeds.aggregate(per_seed, module.SEED_TABLES)
        top.finish(metrics, across_seeds.summary(_label(module), config, metrics, {s: records[s].dir for s in seeds}))
    return metrics


@contextlib.contextmanager
def _environment(values):
    """Set environment variables for the processes started inside the block, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """In the main thread, SIGTERM (``kill``, a batch system's time limit) stops the workers as
    Ctrl-C does; without this the parent would die and its spawned workers run on."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _worker_start(backend_name):
    allocator.keep_freed_memory()  # as in the main process (stevq.allocator)
    backend.use(backend_name)
    provenance.commit()  # read now, when the code this worker runs was loaded


def _worker_part(module_name, config, part, run_dir, progress):
    """In a worker: compute one part and store it as the main process would."""
    compute_and_save(importlib.import_module(module_name), config, part, run_dir, progress)
    return part.name


def _run_pool(module, todo, configs, records, jobs, progress):
    """Compute the (seed, part) pairs of ``todo`` in ``jobs`` spawned workers, each part once the
    parts it needs are on disk. One progress bar over the parts (a single worker shows its
    training's bars instead). On an error the parts already running finish (and are kept) before
    it is raised; on Ctrl-C the workers are stopped."""
    unfinished = {(seed, part.name) for seed, part in todo}  # parts not in todo are on disk
    waiting, running = list(todo), {}
    workers = min(jobs, len(todo))
    bar = runio.progress(range(len(todo)), f"{_label(module)}: parts, {workers} workers", progress and workers > 1)
    bar = bar if hasattr(bar, "update") else None
    context = multiprocessing.get_context("spawn")
    with _environment(ONE_THREAD), _sigterm_as_interrupt():
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                      initializer=_worker_start, initargs=(backend.name(),))
        try:
            while waiting or running:
                for seed, part in [(s, p) for s, p in waiting if not any((s, name) in unfinished for name in p.after)]:
                    if len(running) >= jobs:
                        break
                    waiting.remove((seed, part))
                    future = pool.submit(_worker_part, module.__name__, configs[seed], part, str(records[seed].dir),
                                         progress and workers == 1)
                    running[future] = (seed, part.name)
                if not running:
                    raise RuntimeError(f"scheduler: parts {[(s, p.name) for s, p in waiting]} wait for parts that never run")
                finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    seed, name = running.pop(future)
                    future.result()  # re-raises the worker's error
                    unfinished.discard((seed, name))
                    if bar is not None:
                        bar.set_postfix_str(f"seed {seed} {name}", refresh=False)
                        bar.update()
        except KeyboardInterrupt:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # lets running parts finish and be saved
            if bar is not None:
                bar.close()

