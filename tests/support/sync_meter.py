"""Count device-to-host transfers per training step, with the CuPy test double (tests/fake_cupy).

``install()`` wraps every training loop of the experiments (their ``train`` functions, and the
covariate-shift descent) and the evaluations they call; a transfer made inside a loop but outside
an evaluation belongs to the training steps. ``report()`` gives, per loop description (the variant),
the steps, the transfers in the steps, and their ratio, plus the double's counters.

For a command line run (``python -m stevq run ...``, whose parts run in spawned worker processes)
put tests/support and tests/fake_cupy on PYTHONPATH and set STEVQ_SYNC_METER to a folder: the
``sitecustomize`` module here installs the meter in every process and each process writes its
report to FOLDER/PID.json (``merged`` adds them up).
"""

import atexit
import collections
import functools
import importlib
import json
import os
import pathlib

import cupy

loops = collections.defaultdict(lambda: {"steps": 0, "transfers": 0, "in_evaluation": 0})
_active = []  # descriptions of the loops being run (innermost last)
_on_loop_end = []  # callbacks after each metered loop (a process's report to disk)


def _total():
    return sum(n for kind, n in cupy.transfers.items() if kind != "implicit")


def _wrap_loop(module, name, steps_of, description_of, patch=setattr):
    original = getattr(module, name)

    @functools.wraps(original)
    def metered(*args, **kwargs):
        key = f"{module.__name__.rsplit('.', 1)[-1]}: {description_of(args, kwargs)}"
        before = _total()
        _active.append(key)
        try:
            return original(*args, **kwargs)
        finally:
            _active.pop()
            loops[key]["steps"] += steps_of(args, kwargs)
            loops[key]["transfers"] += _total() - before
            for callback in _on_loop_end:
                callback()

    patch(module, name, metered)


def _wrap_evaluation(module, name, patch=setattr):
    original = getattr(module, name)

    @functools.wraps(original)
    def metered(*args, **kwargs):
        before = _total()
        try:
            return original(*args, **kwargs)
        finally:
            if _active:
                loops[_active[-1]]["in_evaluation"] += _total() - before

    patch(module, name, metered)


def _argument(position, keyword, default=None):
    return lambda args, kwargs: args[position] if len(args) > position else kwargs.get(keyword, default)


def install(patch=setattr):
    """Wrap the training loops and evaluations of every experiment (``patch``: a test's
    ``monkeypatch.setattr``, to undo it afterwards)."""
    loops.clear()
    from stevq.experiments.huh2023 import vq_training
    from stevq.experiments.yin2019 import quant_act, sgd_training

    covariate_shift = importlib.import_module("stevq.theory.covariate_shift")
    _wrap_loop(
        vq_training,
        "train",
        lambda a, k: _argument(5, "schedule")(a, k).steps,
        _argument(6, "description", "training"),
        patch,
    )
    _wrap_evaluation(vq_training, "evaluate", patch)
    _wrap_loop(
        quant_act,
        "train",
        lambda a, k: sum(s for s, _ in _argument(3, "phases")(a, k)),
        _argument(8, "description", "training"),
        patch,
    )
    _wrap_evaluation(quant_act, "evaluate", patch)  # the test-set evaluation of a part
    _wrap_evaluation(sgd_training, "evaluate", patch)  # the training loop's own records
    _wrap_loop(covariate_shift, "_run", _argument(3, "steps"), _argument(0, "name"), patch)


def _per_step(transfers, steps):
    return transfers / steps if steps else None


def _summary(loops_by_key, transfers, sites):
    """The report's form: every loop with its transfers per step (those inside evaluations left out),
    the same over all loops, the double's counters by kind and the 15 busiest call sites."""
    rows = {
        key: dict(row, per_step=_per_step(row["transfers"] - row["in_evaluation"], row["steps"]))
        for key, row in loops_by_key.items()
    }
    steps = sum(r["steps"] for r in rows.values())
    in_steps = sum(r["transfers"] - r["in_evaluation"] for r in rows.values())
    return {
        "loops": rows,
        "steps": steps,
        "per_step": _per_step(in_steps, steps),
        "transfers": dict(transfers),
        "sites": dict(sites.most_common(15)),
    }


def report():
    """{"loops": {description: {steps, transfers, in_evaluation, per_step}}, "steps", "per_step",
    "transfers": the double's counters by kind (implicit = refused implicit conversions)}."""
    return _summary(loops, cupy.transfers, cupy.transfer_sites)


def install_for_process(folder):
    """Install the meter in this process; write its report to FOLDER/PID.json after every loop
    and at exit."""
    path = pathlib.Path(folder) / f"{os.getpid()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)

    def write():
        path.write_text(json.dumps(report()))

    cupy.record_sites = True
    install()
    _on_loop_end.append(write)
    atexit.register(write)


def merged(folder):
    """The reports of every process under ``folder`` added up, in the form of ``report()``."""
    rows, kinds, sites = collections.defaultdict(collections.Counter), collections.Counter(), collections.Counter()
    for path in pathlib.Path(folder).glob("*.json"):
        part = json.loads(path.read_text())
        for key, row in part["loops"].items():
            rows[key].update({k: row[k] for k in ("steps", "transfers", "in_evaluation")})
        kinds.update(part["transfers"])
        sites.update(part["sites"])
    return _summary(rows, kinds, sites)
