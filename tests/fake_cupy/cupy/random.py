"""cupy.random of the test double: NumPy's generators, results on device."""

import numpy as _np

from . import _function, _wrap


class Generator:
    def __init__(self, seed=None):
        self._rng = _np.random.default_rng(seed)

    def __getattr__(self, name):
        return _function(getattr(self._rng, name), name)


def default_rng(seed=None):
    return Generator(seed)


__all__ = ["default_rng", "Generator"]
_ = _wrap
