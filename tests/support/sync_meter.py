"""Count device-to-host transfers per training step, with the CuPy test double (tests/fake_cupy).

``install()`` wraps every training loop of the experiments (their ``train`` functions, and the
covariate-shift descent) and the evaluations they call; a transfer made inside a loop but outside
an evaluation belongs to the training steps. ``report()`` gives, per loop description (the variant),
the steps, the transfers in the steps, and their ratio, plus the double's counters.

Run as ``python tests/support/sync_meter.py REPORT.json run NAME --quick --backend cupy ...``: it
executes ``python -m stevq run ...`` (through runpy) with the meter installed and writes the report.
"""
import collections
import functools
import importlib
import json
import runpy
import sys

import cupy

loops = collections.defaultdict(lambda: {"steps": 0, "transfers": 0, "in_evaluation": 0})
_active = []  # descriptions of the loops being run (innermost last)


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
    from stevq.experiments import quant_act, vq_training
    covariate_shift = importlib.import_module("stevq.vq.covariate_shift")
    _wrap_loop(vq_training, "train", lambda a, k: _argument(5, "schedule")(a, k).steps,
               _argument(6, "description", "training"), patch)
    _wrap_evaluation(vq_training, "evaluate", patch)
    _wrap_loop(quant_act, "train", lambda a, k: sum(s for s, _ in _argument(3, "phases")(a, k)),
               _argument(8, "description", "training"), patch)
    _wrap_evaluation(quant_act, "evaluate", patch)
    _wrap_loop(covariate_shift, "_run", _argument(3, "steps"), _argument(0, "name"), patch)


def report():
    """{"loops": {description: {steps, transfers, in_evaluation, per_step}}, "steps", "per_step",
    "transfers": the double's counters by kind (implicit = refused implicit conversions)}."""
    rows = {}
    for key, row in loops.items():
        in_steps = row["transfers"] - row["in_evaluation"]
        rows[key] = dict(row, per_step=in_steps / row["steps"] if row["steps"] else None)
    steps = sum(r["steps"] for r in rows.values())
    in_steps = sum(r["transfers"] - r["in_evaluation"] for r in rows.values())
    return {"loops": rows, "steps": steps, "per_step": in_steps / steps if steps else None,
            "transfers": dict(cupy.transfers), "sites": dict(cupy.transfer_sites.most_common(15))}


if __name__ == "__main__":
    path, argv = sys.argv[1], sys.argv[2:]
    cupy.record_sites = True
    install()
    sys.argv = ["stevq"] + argv
    try:
        runpy.run_module("stevq", run_name="__main__", alter_sys=True)
    finally:
        with open(path, "w") as file:
            json.dump(report(), file, indent=1)
