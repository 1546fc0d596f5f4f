"""stevq: the straight-through estimator and vector quantization, every gradient explicit.

    import stevq
    from stevq import ops, ste, vq
    stevq.use("array_api_strict")     # or "numpy" (default), "cupy"

Submodules are imported on first use (``stevq.vq``, ``stevq.theory``, ...).

Layers. A module imports only from its own layer or the layers below it, never in a circle
(``tests/test_layering.py`` parses every import, function-level ones included, and holds this):

    1. tree, atomic, allocator       parameter trees, atomic file writes, glibc's malloc settings
    2. autodiff                      the one user of autograd's internals; re-exports ``getval``
    3. backend                       which array library; host <-> device
    4. validate                      checks at the public boundary
    5. ops                           the differentiable primitives
    6. boxes, ste, testing, runio, data
    7. vq, fsq, nn, optim            the models' building blocks
    8. metrics                       diagnostics of quantizers
    9. theory                        closed forms and toy settings (Yin et al. 2019, Huh et al. 2023)
   10. experiments                   the paper reproductions
   11. __main__, cli_arguments       the command line (imported by nothing) and its argument checks

This package's own ``__init__`` is the facade above them all: it imports ``boxes`` so that
autograd can trace every backend's arrays (``backend.on_new_array_type``).
"""

import importlib

from . import backend, boxes, ops  # noqa: F401  (boxes: registers DeviceBox for non-NumPy backends)
from .allocator import keep_freed_memory
from .autodiff import grad, value_and_grad
from .backend import asarray, to_numpy, use

__version__ = "0.1.0"

_SUBMODULES = (
    "ste",
    "nn",
    "optim",
    "testing",
    "validate",
    "vq",
    "fsq",
    "metrics",
    "data",
    "theory",
    "runio",
    "experiments",
    "tree",
    "atomic",
    "autodiff",
)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'stevq' has no attribute {name!r}")
