"""What an experiment is to the runner: an ``Experiment`` record, its work split into ``Part``s.

    Experiment(name, Config, plan, summarize, seed_tables, load_data=None, data_origin=generated, doc="")

- ``name``: the command-line name (``python -m stevq run NAME``), recorded in every run directory;
- ``Config``: a frozen dataclass, a subclass of ``settings.BaseConfig`` (fields ``quick`` and ``seed``);
- ``plan(config) -> [Part]``: the work, as named parts (one training run each);
- ``summarize(config, results) -> (metrics, summary_markdown, {figure name: Figure})``, from the
  parts' results by name;
- ``seed_tables``: ``{metrics key: key fields}``, the entries averaged over seeds (``runner``);
- ``load_data(config)``: what the parts read, loaded once per process and config (on the active
  backend), and before any run directory is made: missing data makes no run. None: the parts draw
  their own data from the seed;
- ``data_origin(config)``: what ``load_data`` reads (``stevq.data.origin``), stored with the run.

``Part(name, compute, args=(), after=())``: the part computes ``compute(context, *args)``, a
JSON-ready dict; ``context`` is a ``Context`` (the config, the loaded data, the run directory and
whether to show progress). ``after`` names the parts whose saved files it reads. A part that
needs the config alone is ``config_part(name, function, args)``: ``function(config, *args)``. A part's random
numbers come from its config (seed included) and its own arguments only, never from the order in
which parts run or from another part's state in the same process, so a part computes the same
numbers in the main process, in a worker process or on another machine.
"""

import dataclasses
import functools
import pathlib
from collections import namedtuple
from typing import Callable

from stevq import backend

Part = namedtuple("Part", "name compute args after", defaults=((), ()))
Context = namedtuple("Context", "config data dir progress")
GENERATED = {"data": "generated"}  # the toy experiments: the data comes from the seed


def _with_config(context, function, *args):
    return function(context.config, *args)


def config_part(name, function, args=(), after=()):
    """A part computed from the config alone, ``function(config, *args)``."""
    return Part(name, _with_config, (function, *args), after)


def generated(config):
    """``data_origin`` of an experiment that draws its data from the seed."""
    return dict(GENERATED)


@functools.lru_cache(maxsize=1)
def _loaded(load_data, config, backend_name):
    return load_data(config)


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An experiment as the runner takes it (see the module docstring)."""

    name: str
    Config: type
    plan: Callable
    summarize: Callable
    seed_tables: dict
    load_data: Callable | None = None
    data_origin: Callable = generated
    doc: str = ""

    @property
    def description(self):
        """The first line of the experiment's docstring (``python -m stevq list``)."""
        lines = self.doc.strip().splitlines()
        return lines[0] if lines else ""

    def data(self, config):
        """What the parts of ``config`` read: loaded once per (config, backend) in a process, so
        that the parts of a run share one copy."""
        return None if self.load_data is None else _loaded(self.load_data, config, backend.name())

    def compute_part(self, config, part, run_dir, progress=False):
        """The result of ``part`` of the run of ``config`` in ``run_dir``."""
        return part.compute(Context(config, self.data(config), pathlib.Path(run_dir), progress), *part.args)


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
