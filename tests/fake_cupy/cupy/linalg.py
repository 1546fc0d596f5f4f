"""cupy.linalg of the test double: numpy.linalg on device arrays."""

import numpy as _np

from . import _function

__all__ = [
    n
    for n in dir(_np.linalg)
    if not n.startswith("_") and callable(getattr(_np.linalg, n)) and not isinstance(getattr(_np.linalg, n), type)
]
globals().update({n: _function(getattr(_np.linalg, n), n) for n in __all__})
