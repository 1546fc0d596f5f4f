"""The experiments: each a module with a ``Config`` dataclass (fields ``quick`` and ``seed`` among
them) and ``run(config, out_dir, progress=True) -> dict`` that writes config.json, metrics.json,
PNG figures and summary.md into ``out_dir`` through ``stevq.runio``.

``EXPERIMENTS`` maps the command-line name to the module path; modules are imported on demand.
"""
import importlib

from stevq import validate

EXPERIMENTS = {
    "quant-act": "stevq.experiments.quant_act",
    "ste-check": "stevq.experiments.ste_check",
    "vq-ablation": "stevq.experiments.vq_ablation",
    "vq-bottleneck": "stevq.experiments.vq_bottleneck",
    "vq-toy": "stevq.experiments.vq_toy",
    "yin2019-toy": "stevq.experiments.yin2019_toy",
}


def get(name):
    """The experiment module registered as ``name``."""
    if name not in EXPERIMENTS:
        raise validate.ArgumentError("experiment", f"unknown name {name!r}; expected one of {sorted(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name])
