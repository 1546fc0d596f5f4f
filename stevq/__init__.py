"""stevq: the straight-through estimator and vector quantization, every gradient explicit."""
from autograd import grad, value_and_grad

from . import backend, ops
from .backend import asarray, to_numpy, use

__version__ = "0.1.0"
