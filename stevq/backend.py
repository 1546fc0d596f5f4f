"""The array backend: which array library stevq computes with.

stevq's primitives are written against an *array namespace* (the Python array API standard), so the
same code runs on NumPy (default), CuPy (GPU) and ``array_api_strict`` (a deliberately minimal
namespace used by the tests to prove that no NumPy-only function sneaks in).

    stevq.use("cupy")                      # switch for the rest of the program
    with stevq.use("array_api_strict"):    # or only inside a block
        ...

The environment variable ``STEVQ_BACKEND`` chooses the backend at start-up. There is no silent
fallback: asking for CuPy without CuPy or without a GPU raises an error that says what to install.

Default floating dtype (parameters, codebooks, one-hot counts made without an explicit ``dtype``):
float64 on NumPy and array_api_strict, where exactness is cheap; float32 on CuPy, because most
GPUs run float64 at 1/2 to 1/64 of the float32 speed. ``stevq.use("cupy", dtype="float64")``
keeps float64 on the GPU (the tests do, to compare backends to 1e-9). ``stevq.asarray`` keeps the
dtype of the data it is given unless told otherwise.

Host data never mixes silently with device arrays: a NumPy array handed to a public function under
CuPy (or array_api_strict) is an error naming the argument; move it with ``stevq.asarray``.
"""

import os

import numpy as np

from .autodiff import getval

BACKENDS = ("numpy", "cupy", "array_api_strict")
FLOAT_DTYPES = ("float32", "float64")

DEFAULT_FLOAT = {"numpy": "float64", "array_api_strict": "float64", "cupy": "float32"}

_active = {"name": None, "xp": None, "dtype": None}
_namespace_by_type = {
    np.ndarray: np,
    np.float64: np,
    np.float32: np,
    np.float16: np,
    np.int64: np,
    np.int32: np,
    np.bool_: np,
}
_new_array_type_hooks = []


def on_new_array_type(hook):
    """Call ``hook(array_type)`` for the array type of every non-NumPy backend loaded, now for those
    already loaded and later for each new one. ``stevq.boxes`` registers its autograd Box and VSpace
    this way: they compute with ``stevq.ops``, which sits above this module."""
    _new_array_type_hooks.append(hook)
    for array_type, namespace in list(_namespace_by_type.items()):
        if namespace is not np:
            hook(array_type)


def _load(name):
    """Import the namespace of backend ``name`` and announce its array type (``on_new_array_type``)."""
    if name == "numpy":
        return np
    if name == "array_api_strict":
        try:
            import array_api_strict as xp
        except ImportError as err:
            raise ImportError(
                "backend 'array_api_strict' needs the package array-api-strict: pip install array-api-strict"
            ) from err
        array_type = type(xp.asarray(0.0))
    else:  # cupy
        try:
            import cupy
        except ImportError as err:
            raise ImportError(
                "backend 'cupy' needs CuPy and a CUDA GPU: pip install cupy-cuda12x "
                "(or cupy-cuda13x: the wheel matching your CUDA driver) and "
                "pip install -e '.[gpu]'. stevq does not fall back to NumPy."
            ) from err
        try:
            devices = cupy.cuda.runtime.getDeviceCount()
        except Exception as err:  # CUDA driver missing or broken
            raise RuntimeError(
                f"backend 'cupy': CuPy is installed but no CUDA GPU is usable "
                f"({err}). Use stevq.use('numpy') on a machine without a GPU."
            ) from err
        if devices < 1:
            raise RuntimeError("backend 'cupy': no CUDA GPU found. Use stevq.use('numpy').")
        try:
            import array_api_compat.cupy as xp
        except ImportError as err:
            raise ImportError("backend 'cupy' needs array-api-compat: pip install -e '.[gpu]'") from err
        array_type = cupy.ndarray
    if array_type not in _namespace_by_type:
        _namespace_by_type[array_type] = xp
        for hook in _new_array_type_hooks:
            hook(array_type)
    return xp


def _activate(name, dtype=None):
    if name not in BACKENDS:
        raise ValueError(f"backend: unknown name {name!r}; expected one of {BACKENDS}")
    if dtype is not None and dtype not in FLOAT_DTYPES:
        raise ValueError(f"dtype: expected one of {FLOAT_DTYPES} or None (the backend's default), got {dtype!r}")
    xp = _load(name)
    _active["name"], _active["xp"], _active["dtype"] = name, xp, dtype or DEFAULT_FLOAT[name]


def _ensure_active():
    if _active["name"] is None:
        _activate(os.environ.get("STEVQ_BACKEND", "numpy") or "numpy")


class use:
    """Make ``name`` the active backend; also a context manager that restores the previous one.

    ``name`` is one of ``"numpy"``, ``"cupy"``, ``"array_api_strict"``; ``dtype`` ("float32" or
    "float64") overrides the backend's default floating dtype (see the module docstring).
    """

    def __init__(self, name, dtype=None):
        if not isinstance(name, str):
            raise TypeError(f"backend: name must be a string, one of {BACKENDS}, got {type(name).__name__}")
        _ensure_active()
        self.previous = (_active["name"], _active["dtype"])
        self.name = name
        _activate(name, dtype)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        _activate(*self.previous)
        return False


def name():
    """Name of the active backend."""
    _ensure_active()
    return _active["name"]


def xp():
    """The active backend's array namespace."""
    _ensure_active()
    return _active["xp"]


def namespace_of(*values):
    """Namespace of the first backend array among ``values`` (Python scalars are skipped);
    the active namespace when there is none."""
    for value in values:
        namespace = _namespace_by_type.get(type(value))
        if namespace is not None:
            return namespace
    return xp()


def default_float():
    """Name of the active backend's default floating dtype ("float64", or "float32" on CuPy)."""
    _ensure_active()
    return _active["dtype"]


def resolve_dtype(name_or_dtype=None):
    """The active backend's dtype object for ``"float32"``/``"float64"`` (or one already given);
    None: the default floating dtype."""
    if name_or_dtype is None:
        name_or_dtype = default_float()
    if isinstance(name_or_dtype, str):
        if name_or_dtype not in FLOAT_DTYPES + ("int64", "int32", "bool"):
            raise ValueError(f"dtype: expected one of {FLOAT_DTYPES}, got {name_or_dtype!r}")
        return getattr(xp(), name_or_dtype)
    return name_or_dtype


def is_array(value):
    """True for an array of any registered backend (not a Python scalar or list)."""
    _ensure_active()
    return type(value) in _namespace_by_type and not isinstance(value, np.generic)


def device_of(x):
    """The device an array lives on (``x.device``; None for a Python scalar): new arrays made
    next to ``x`` pass it as ``device=``, so nothing lands on a default device by accident."""
    return getattr(getval(x), "device", None)


def to_numpy(x):
    """Copy a backend array (or anything array-like) to a NumPy array on the host."""
    x = getval(x)
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x)
    if hasattr(x, "get") and type(x).__module__.startswith("cupy"):
        return x.get()
    if hasattr(x, "__dlpack__"):
        return np.from_dlpack(x).copy()
    return np.asarray(x)


def asarray(x, dtype=None, device=None):
    """Move host data (NumPy arrays, lists, scalars) or another backend's array to the active
    backend, optionally casting to ``dtype`` (a name such as ``"float32"`` or a dtype object),
    onto ``device`` (default: the backend's default device; pass ``device_of(other)`` to put it
    next to another array)."""
    namespace = xp()
    if type(x) in _namespace_by_type and namespace_of(x) is not namespace:
        x = to_numpy(x)
    if dtype is not None:
        dtype = resolve_dtype(dtype)
    if namespace is np:
        return np.asarray(x, dtype=dtype)
    return namespace.asarray(np.asarray(x) if isinstance(x, (list, tuple)) else x, dtype=dtype, device=device)
