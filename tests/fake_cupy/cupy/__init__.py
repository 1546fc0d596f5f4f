"""A CuPy test double: CuPy's host/device rules on the CPU, for machines without a GPU.

The tests put this folder on ``sys.path`` only when the real CuPy cannot be imported (see
tests/conftest.py), and ``array_api_compat.cupy`` runs unmodified on top of it. Its ``ndarray`` is
a distinct type holding a NumPy array (the "device memory") and keeps the rules CuPy documents
(https://docs.cupy.dev/en/stable/user_guide/difference.html, .../interoperability.html):

- no implicit conversion to NumPy: ``numpy.asarray(x)`` (``__array__``) raises TypeError; NumPy
  functions reach ``__array_function__``/``__array_ufunc__`` and run as this module's function of
  the same name (TypeError when there is none), as CuPy does;
- an operator or function mixing it with a NumPy array raises TypeError ("Unsupported type");
- reductions and scalar indexing give 0-d arrays, never Python or NumPy scalars;
- every device-to-host transfer is explicit and counted in ``transfers``: ``.get()``,
  ``asnumpy``, ``.item()``, ``.tolist()``, ``float()``, ``int()``, ``bool()``, ``operator.index``,
  ``repr``/``str``, and the operations whose output size depends on the data (boolean-mask
  indexing, ``nonzero``, ``unique``, ...), which make CuPy read a count back before it can allocate.
  ``transfers["implicit"]`` counts refused implicit conversions (a test wants zero).

Host-to-device copies (``asarray(numpy_array)``) are allowed, as in CuPy. Rules only; no timing.
"""

import builtins as _builtins
import collections as _collections
import functools as _functools
import numbers as _numbers
import operator as _operator

import numpy as _np

from . import cuda  # noqa: F401  (cupy.cuda.runtime.getDeviceCount, Device, Stream)

__version__ = "0.0.0+test-double"  # not a GPU: reports that quote it must say so
transfers = _collections.Counter()
transfer_sites = _collections.Counter()  # filled only while record_sites is True
record_sites = False

_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy array explicitly."
)
# Output size depends on the values: CuPy synchronises to read that size back.
_DATA_DEPENDENT = {
    "nonzero",
    "argwhere",
    "flatnonzero",
    "unique",
    "unique_values",
    "unique_counts",
    "unique_inverse",
    "unique_all",
    "compress",
    "extract",
}


def reset_transfers():
    """Zero the counters (tests call this before the code they measure)."""
    transfers.clear()
    transfer_sites.clear()


def _count(kind):
    transfers[kind] += 1
    if record_sites:  # where in stevq the transfer happened, for finding it
        import traceback

        frames = [f for f in traceback.extract_stack()[:-2] if "stevq" in f.filename and "fake_cupy" not in f.filename]
        if frames:
            transfer_sites[f"{kind} {frames[-1].filename.split('stevq', 1)[-1]}:{frames[-1].lineno}"] += 1


class ndarray:
    """A device array: a NumPy array that refuses to be used as one."""

    __slots__ = ("_data",)
    __array_priority__ = 100  # as cupy.ndarray

    def __init__(self, shape, dtype=float):
        self._data = _np.zeros(shape, dtype=dtype)

    # --- metadata (no transfer) ---
    shape = property(lambda self: self._data.shape)
    ndim = property(lambda self: self._data.ndim)
    dtype = property(lambda self: self._data.dtype)
    size = property(lambda self: self._data.size)
    nbytes = property(lambda self: self._data.nbytes)
    itemsize = property(lambda self: self._data.itemsize)
    strides = property(lambda self: self._data.strides)
    T = property(lambda self: _wrap(self._data.T))
    mT = property(lambda self: _wrap(_np.swapaxes(self._data, -1, -2)))
    device = property(lambda self: cuda.Device(0))

    def __len__(self):
        return len(self._data)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # --- explicit transfers to the host ---
    def get(self, stream=None, order="C", out=None, blocking=True):
        _count("get")
        return _np.array(self._data, order=order, copy=True)

    def item(self, *args):
        _count("item")
        return self._data.item(*args)

    def tolist(self):
        _count("tolist")
        return self._data.tolist()

    def __float__(self):
        _count("float")
        return float(self._data)

    def __int__(self):
        _count("int")
        return int(self._data)

    def __bool__(self):
        _count("bool")
        return _builtins.bool(self._data)

    def __index__(self):
        _count("index")
        return _operator.index(self._data)

    def __complex__(self):
        _count("complex")
        return complex(self._data)

    def __repr__(self):
        _count("repr")
        return repr(self._data).replace("array(", "array(", 1)

    def __str__(self):
        _count("repr")
        return str(self._data)

    def __format__(self, spec):
        _count("repr")
        return format(self._data, spec) if self.ndim == 0 else str(self._data)

    # --- what CuPy refuses ---
    def __array__(self, dtype=None, copy=None):
        _count("implicit")
        raise TypeError(_IMPLICIT)

    def __array_function__(self, func, types, args, kwargs):
        # CuPy: a NumPy function runs as the CuPy function of the same name, if there is one.
        cupy_func = globals().get(func.__name__)
        if cupy_func is None or not callable(cupy_func):
            _count("implicit")
            return NotImplemented  # NumPy then raises TypeError
        return cupy_func(*args, **kwargs)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        cupy_ufunc = globals().get(ufunc.__name__)
        if cupy_ufunc is None or method != "__call__":
            return NotImplemented
        return cupy_ufunc(*inputs, **kwargs)

    def __cuda_array_interface__(self):  # pragma: no cover - marks the type as device memory
        raise AttributeError

    # --- indexing ---
    def __getitem__(self, index):
        index = _index(index)
        return _wrap(self._data[index])

    def __setitem__(self, index, value):
        parts = index if isinstance(index, tuple) else (index,)
        if (
            isinstance(value, ndarray)
            and value.ndim
            and _builtins.any(isinstance(p, ndarray) and p.dtype == _np.bool_ for p in parts)
        ):
            _count("boolean_index")  # the mask's count must match the values' length
        self._data[_index(index, counted=True)] = _unwrap(value)

    # --- everything else a cupy.ndarray method does: the NumPy method, on device ---
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        method = getattr(self._data, name)
        if not callable(method):
            return _wrap(method)
        return _function(method, name)

    def astype(self, dtype, copy=True, **kwargs):
        return _wrap(self._data.astype(dtype, copy=copy))

    def copy(self, order="C"):
        return _wrap(self._data.copy(order=order))


def _index(index, counted=False):
    """An index with device arrays unwrapped; a boolean mask needs its count on the host."""
    parts = index if isinstance(index, tuple) else (index,)
    if not counted and _builtins.any(isinstance(p, ndarray) and p.dtype == _np.bool_ for p in parts):
        _count("boolean_index")
    if _builtins.any(isinstance(p, _np.ndarray) for p in parts):
        raise IndexError("Unsupported type <class 'numpy.ndarray'> in an index of a cupy.ndarray")
    return _unwrap(index)


def _wrap(value):
    """NumPy results as device arrays; NumPy scalars as 0-d device arrays (CuPy has no scalars)."""
    if isinstance(value, _np.ndarray):
        out = ndarray.__new__(ndarray)
        out._data = value
        return out
    if isinstance(value, _np.generic):
        return _wrap(_np.asarray(value))
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    if hasattr(value, "_fields"):  # a namedtuple of arrays (eigh, svd, unique_*)
        return type(value)(*(_wrap(v) for v in value))
    return value


def _unwrap(value):
    """Device arrays as their NumPy data; a host array here is CuPy's TypeError."""
    if isinstance(value, ndarray):
        return value._data
    if isinstance(value, _np.ndarray):
        raise TypeError(f"Unsupported type {type(value)}")
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _function(numpy_function, name):
    @_functools.wraps(numpy_function)
    def device_function(*args, **kwargs):
        if name in _DATA_DEPENDENT:
            _count(name)
        return _wrap(numpy_function(*_unwrap(args), **_unwrap(kwargs)))

    return device_function


def _operator(name, kind, reflected_name=None):
    """ndarray's operator ``name``: kind "binary" (x op y), "reflected" (y op x) or "inplace"."""
    numpy_operator = getattr(_np.ndarray, name)
    allowed = (ndarray, _numbers.Number, _np.generic) + ((_np.ndarray, list, tuple) if kind == "binary" else ())

    def method(self, other):
        if not isinstance(other, allowed):
            # CuPy's rule (cupy/_core/core.pyx, _should_use_rop): an operand that sets
            # __array_ufunc__ = None gets its reflected operator; other unknown types are refused.
            if kind == "binary" and getattr(type(other), "__array_ufunc__", False) is None:
                return getattr(other, reflected_name)(self)
            raise TypeError(f"Unsupported type {type(other)}")
        result = numpy_operator(self._data, _unwrap(other))  # a host array raises in _unwrap
        if kind == "inplace":
            self._data = result
            return self
        return _wrap(result)

    method.__name__ = name
    return method


for _name in (
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "matmul",
    "and",
    "or",
    "xor",
    "lshift",
    "rshift",
):
    setattr(ndarray, f"__{_name}__", _operator(f"__{_name}__", "binary", f"__r{_name}__"))
    setattr(ndarray, f"__r{_name}__", _operator(f"__r{_name}__", "reflected"))
    setattr(ndarray, f"__i{_name}__", _operator(f"__i{_name}__", "inplace"))
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    _mirror = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq", "ne": "ne"}[_name]
    setattr(ndarray, f"__{_name}__", _operator(f"__{_name}__", "binary", f"__{_mirror}__"))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(
        ndarray, f"__{_name}__", (lambda op: lambda self: _wrap(op(self._data)))(getattr(_np.ndarray, f"__{_name}__"))
    )
ndarray.__hash__ = None
ndarray.__module__ = "cupy"


# --- the namespace: NumPy's functions (names such as any, all, sum, bool shadow the builtins
# from here on: the code above reaches the builtins through ``_builtins``), ufuncs, dtypes and constants, on device arrays ---
def _build_namespace():
    skip = {
        "asarray",
        "array",
        "ndarray",
        "asnumpy",
        "get_array_module",
        "cuda",
        "fft",
        "linalg",
        "random",
        "testing",
        "ma",
        "char",
        "rec",
        "lib",
        "ctypeslib",
        "polynomial",
        "typing",
        "emath",
        "strings",
        "exceptions",
        "dtypes",
        "f2py",
        "matlib",
        "core",
        "version",
    }
    names = {}
    for name in dir(_np):
        if name.startswith("_") or name in skip:
            continue
        value = getattr(_np, name)
        if isinstance(value, type) or not callable(value):
            names[name] = value  # dtypes (float32, ...), dtype, finfo, iinfo, pi, inf, newaxis
        else:
            names[name] = _function(value, name)
    return names


globals().update(_build_namespace())
bool_ = _np.bool_
dtype = _np.dtype
finfo = _np.finfo
iinfo = _np.iinfo


def asarray(obj, dtype=None, order=None, *, blocking=False):
    """Host data (a NumPy array, list, scalar) or a device array, as a device array."""
    if isinstance(obj, ndarray):
        return obj if dtype is None or obj.dtype == dtype else obj.astype(dtype)
    if isinstance(obj, (list, tuple)) and _builtins.any(isinstance(v, ndarray) for v in obj):
        return stack([asarray(v) for v in obj]).astype(dtype) if dtype else stack([asarray(v) for v in obj])
    if hasattr(obj, "__array_namespace__") and not isinstance(obj, _np.ndarray):
        raise TypeError(f"Unsupported type {type(obj)}")
    return _wrap(_np.array(obj, dtype=dtype, order=order or "K", copy=True))


def array(obj, dtype=None, copy=True, order="K", ndmin=0, **kwargs):
    out = asarray(obj, dtype=dtype)
    if copy and out is obj:
        out = out.copy()
    while out.ndim < ndmin:
        out = out[None]
    return out


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """A device array copied to the host (anything else: numpy.asarray)."""
    if isinstance(a, ndarray):
        return a.get()
    return _np.asarray(a, order=order)


def get_array_module(*args):
    return __import__(__name__) if _builtins.any(isinstance(a, ndarray) for a in args) else _np


from . import fft, linalg, random  # noqa: E402,F401
