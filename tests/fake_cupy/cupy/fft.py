"""cupy.fft of the test double: numpy.fft on device arrays."""

import numpy as _np

from . import _function

__all__ = [n for n in dir(_np.fft) if not n.startswith("_") and callable(getattr(_np.fft, n))]
globals().update({n: _function(getattr(_np.fft, n), n) for n in __all__})
