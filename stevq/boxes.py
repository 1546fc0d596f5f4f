"""How autograd sees a non-NumPy array (CuPy, array_api_strict): a Box and a VSpace.

autograd traces a computation by wrapping arrays in Boxes. For NumPy it brings its own ArrayBox;
for any other array type stevq registers ``DeviceBox`` (whose operators call stevq primitives, so the
backward pass never leaves the device) and ``DeviceVSpace`` (zeros/ones/size/inner product made by
the array's own namespace). Registration is by exact type, see
``docs/reference/autograd-engine-notes.md``; ``stevq.backend`` announces each backend's array type
as it loads it, and this module registers that type (``backend.on_new_array_type``).
"""

import math

import numpy as np
from autograd.extend import Box, VSpace

from . import backend, ops


class DeviceBox(Box):
    """A traced array of a non-NumPy backend. Arithmetic goes through ``stevq.ops``."""

    __slots__ = []
    # NumPy's convention, which CuPy follows: ``raw_array * box`` and ``raw @ box`` call the box's
    # reflected operator instead of the array's ufunc (which would fail on an unknown type).
    __array_ufunc__ = None

    shape = property(lambda self: self._value.shape)
    ndim = property(lambda self: self._value.ndim)
    dtype = property(lambda self: self._value.dtype)
    size = property(lambda self: math.prod(self._value.shape))
    T = property(lambda self: ops.matrix_transpose(self))
    mT = T

    def __len__(self):
        return self._value.shape[0]

    def __getitem__(self, index):
        return ops.getitem(self, index)

    def __neg__(self):
        return ops.negative(self)

    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.subtract(self, other)

    def __rsub__(self, other):
        return ops.subtract(other, self)

    def __mul__(self, other):
        return ops.multiply(self, other)

    def __rmul__(self, other):
        return ops.multiply(other, self)

    def __truediv__(self, other):
        return ops.divide(self, other)

    def __rtruediv__(self, other):
        return ops.divide(other, self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __pow__(self, power):
        return ops.power(self, power)

    def __rpow__(self, base):
        return ops.power(base, self)

    def __mod__(self, other):
        return ops.remainder(self, other)

    def __rmod__(self, other):
        return ops.remainder(other, self)

    def __pos__(self):
        return self

    def __abs__(self):
        return ops.abs(self)

    # Comparisons are not differentiable: they act on the value and return a plain boolean array.
    def __lt__(self, other):
        return self._value < _raw(other)

    def __le__(self, other):
        return self._value <= _raw(other)

    def __gt__(self, other):
        return self._value > _raw(other)

    def __ge__(self, other):
        return self._value >= _raw(other)

    def __eq__(self, other):
        return self._value == _raw(other)

    def __ne__(self, other):
        return self._value != _raw(other)

    __hash__ = object.__hash__

    def __float__(self):
        return float(self._value)


def _raw(value):
    return value._value if isinstance(value, Box) else value


class DeviceVSpace(VSpace):
    """The vector space of arrays of one shape and dtype on a non-NumPy backend."""

    def __init__(self, value):
        self.shape = tuple(value.shape)
        self.dtype = value.dtype
        self.xp = backend.namespace_of(value)
        self.device = getattr(value, "device", None)

    size = property(lambda self: math.prod(self.shape))
    ndim = property(lambda self: len(self.shape))

    def zeros(self):
        return self.xp.zeros(self.shape, dtype=self.dtype, device=self.device)

    def ones(self):
        return self.xp.ones(self.shape, dtype=self.dtype, device=self.device)

    def randn(self):
        sample = np.random.standard_normal(self.shape)
        return self.xp.asarray(sample, dtype=self.dtype, device=self.device)

    def standard_basis(self):
        for i in range(self.size):
            basis = np.zeros(self.size)
            basis[i] = 1.0
            yield self.xp.asarray(np.reshape(basis, self.shape), dtype=self.dtype, device=self.device)

    def _add(self, x, y):
        return x + y

    def _mut_add(self, x, y):
        # Never add in place: x may be a broadcast view or an array the caller still holds.
        return x + y

    def _inner_prod(self, x, y):
        return self.xp.sum(x * y)


_registered = set()


def register(array_type):
    """Register ``array_type`` with autograd (once)."""
    if array_type in _registered:
        return
    DeviceBox.register(array_type)
    VSpace.register(array_type, DeviceVSpace)
    _registered.add(array_type)


backend.on_new_array_type(register)
