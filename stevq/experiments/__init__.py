"""The experiments, grouped by paper (``yin2019``, ``huh2023``), each a module that defines
``EXPERIMENT``, a ``protocol.Experiment`` record (its name, ``Config`` dataclass, plan of parts,
summary, tables over seeds and data), which ``runner.run`` runs: it writes config.json,
metrics.json, PNG figures and summary.md into the run directory through ``stevq.runio``.

The framework beside them: ``protocol`` (the record and its parts), ``runner`` (seeds x parts on
any executor; results over seeds), ``workers`` (local worker processes, a Dask cluster),
``training`` (the one training loop and data container), ``images`` (the MNIST-scale data),
``settings`` (Config fields as the command line sees them), ``provenance``, ``figures`` and
``claims`` (the ledger of the papers' claims).

``EXPERIMENTS`` maps the command-line name to the module; modules are imported on demand.
"""

import importlib

from stevq import validate

EXPERIMENTS = {
    "quant-act": "stevq.experiments.yin2019.quant_act",
    "ste-check": "stevq.experiments.yin2019.ste_check",
    "vq-ablation": "stevq.experiments.huh2023.vq_ablation",
    "vq-bottleneck": "stevq.experiments.huh2023.vq_bottleneck",
    "vq-toy": "stevq.experiments.huh2023.vq_toy",
    "yin2019-toy": "stevq.experiments.yin2019.toy",
}


def get(name):
    """The ``Experiment`` registered as ``name``."""
    if name not in EXPERIMENTS:
        raise validate.ArgumentError("experiment", f"unknown name {name!r}; expected one of {sorted(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name]).EXPERIMENT
