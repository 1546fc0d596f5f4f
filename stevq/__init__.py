"""stevq: the straight-through estimator and vector quantization, every gradient explicit.

    import stevq
    from stevq import ops, ste, vq
    stevq.use("array_api_strict")     # or "numpy" (default), "cupy"

Submodules are imported on first use (``stevq.vq``, ``stevq.theory``, ...).
"""
import importlib

from . import backend, ops
from .allocator import keep_freed_memory
from .autodiff import grad, value_and_grad
from .backend import asarray, to_numpy, use

__version__ = "0.1.0"

_SUBMODULES = ("ste", "nn", "optim", "testing", "validate", "vq", "fsq", "metrics", "data", "theory",
               "runio", "experiments")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'stevq' has no attribute {name!r}")
