"""Checks at the public boundary: every error names the argument and what was expected.

A public function checks its inputs once and then calls unchecked kernels (``stevq.vq.unchecked``
lists those of stevq.vq); a hyperparameter is checked where it is given, in a constructor or a
Config. The checks look at values only (through ``getval``), never at the trace, so they cost
nothing in the backward pass.

Reading a value back (is any element NaN or inf? do the indices lie in [0, K)?) costs one
reduction, and on a GPU a device-to-host transfer: the host waits for the device. Such checks are
made on the arrays a caller hands in, and *not* on traced arrays (inside ``stevq.grad``): a traced
call is a training step, whose caller reads one loss per step, and a NaN anywhere in the step
reaches that loss. Shapes, dtypes and backends are always checked.
"""

import numbers

import numpy as np

from . import backend
from .autodiff import getval, isbox
from .backend import is_array, namespace_of


def _host_array_error(value, name):
    """The error for an array of another backend than the active one (e.g. a NumPy array under CuPy)."""
    active = backend.name()
    kind = (
        "a NumPy (host) array"
        if isinstance(value, (np.ndarray, np.generic))
        else f"an array of another backend ({type(value).__module__.split('.')[0]})"
    )
    return TypeError(
        f"{name}: got {kind} while the active backend is {active!r}; move it there first "
        f"with stevq.asarray({name}) (stevq never computes on the CPU behind your back)"
    )


class NonFiniteInputError(ValueError):
    """An input array holds NaN or inf (a ValueError, so callers can also catch it as one)."""


class ArgumentError(ValueError):
    """A value that does not fit the argument ``argument``; ``message`` says what was expected. The
    text is "argument: message"; a caller that knows the argument by another name (an experiment's
    setting, a command-line option) says it with ``renamed``."""

    def __init__(self, argument, message):
        super().__init__(f"{argument}: {message}")
        self.argument, self.message = argument, message

    def renamed(self, name):
        """The message under the caller's ``name`` for the argument, e.g. "train_size (train_limit): ..."."""
        return f"{name} ({self.argument}): {self.message}"


def _is_float_dtype(xp, dtype):
    return dtype in (xp.float32, xp.float64) or (xp is np and np.issubdtype(dtype, np.floating))


def _is_int_dtype(xp, dtype):
    return dtype in (xp.int8, xp.int16, xp.int32, xp.int64, xp.uint8, xp.uint16, xp.uint32, xp.uint64)


def array(x, name, ndim=None, dtype="float", finite=True, shape=None, host=False):
    """Check that ``x`` is an array of the active backend with the stated properties.

    ``ndim`` an int or a tuple of allowed ints; ``dtype`` "float", "int" or None (any);
    ``shape`` a tuple where None means any length; ``host=True`` also accepts an array of another
    backend (for functions documented to compute in their inputs' own namespace, e.g. the closed
    forms of ``stevq.theory``). Returns the (possibly boxed) ``x`` unchanged.
    """
    value = getval(x)
    if not is_array(value):
        raise TypeError(
            f"{name}: expected an array of the active backend, got {type(value).__name__} "
            "(convert host data with stevq.asarray)"
        )
    xp = namespace_of(value)
    if xp is not backend.xp() and not host:
        raise _host_array_error(value, name)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed:
            raise ValueError(
                f"{name}: expected {' or '.join(map(str, allowed))} dimensions, got shape {tuple(value.shape)}"
            )
    if shape is not None:
        if len(shape) != value.ndim or any(s is not None and s != n for s, n in zip(shape, value.shape)):
            sizes = ["any" if s is None else str(s) for s in shape]
            wanted = "(" + ", ".join(sizes) + ("," if len(sizes) == 1 else "") + ")"
            raise ValueError(f"{name}: expected shape {wanted}, got {tuple(value.shape)}")
    if dtype == "float" and not _is_float_dtype(xp, value.dtype):
        raise TypeError(f"{name}: expected a floating-point array (float32 or float64), got dtype {value.dtype}")
    if dtype == "int" and not _is_int_dtype(xp, value.dtype):
        raise TypeError(f"{name}: expected an integer array, got dtype {value.dtype}")
    if finite and dtype == "float" and not isbox(x) and not bool(xp.all(xp.isfinite(value))):
        raise NonFiniteInputError(f"{name}: contains NaN or inf")
    return x


def on_backend(tree, name, active=None):
    """Every array leaf of ``tree`` (an array, or dicts, lists, tuples of them) belongs to the active
    backend (``active``, a namespace, if the caller has it at hand): the error names the leaf
    (``params[0]['W']``). A type lookup only, no value is read: ``stevq.ops`` runs it on every
    primitive's arguments."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            on_backend(value, f"{name}[{key!r}]", active)
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            on_backend(value, f"{name}[{index}]", active)
    else:
        value = getval(tree)
        kind = type(value)
        if (
            kind in backend._namespace_by_type
            and not isinstance(value, np.generic)
            and namespace_of(value) is not (active or backend.xp())
        ):
            raise _host_array_error(value, name)
    return tree


def rate(x, name):
    """A step size: a positive real number, or a 0-d float array of the active backend (one computed
    on the device, e.g. from the data, whose sign is not read: that would stall the device)."""
    if is_array(getval(x)):
        return array(x, name, ndim=0, finite=False)
    return number(x, name, low=0.0, low_inclusive=False)


def same_last_dim(a, a_name, b, b_name):
    """``a`` and ``b`` must agree in their last dimension (the embedding dimension)."""
    if getval(a).shape[-1] != getval(b).shape[-1]:
        raise ValueError(
            f"{b_name}: last dimension {getval(b).shape[-1]} does not match {a_name}'s {getval(a).shape[-1]}"
        )


def number(x, name, low=None, high=None, integer=False, low_inclusive=True, high_inclusive=True):
    """A Python (or NumPy) real number within [low, high] (ends excluded on request);
    ``integer`` demands an int."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(x, bool) or not isinstance(x, kind):
        raise TypeError(f"{name}: expected {'an integer' if integer else 'a real number'}, got {x!r}")
    if not np.isfinite(x):
        raise ValueError(f"{name}: expected a finite number, got {x!r}")
    if low is not None and (x < low or (x == low and not low_inclusive)):
        raise ValueError(f"{name}: expected a value {'>=' if low_inclusive else '>'} {low}, got {x!r}")
    if high is not None and (x > high or (x == high and not high_inclusive)):
        raise ValueError(f"{name}: expected a value {'<=' if high_inclusive else '<'} {high}, got {x!r}")
    return x


def distinct(values, name):
    """The items of ``values`` (a list of things to run) must differ: a repeated one would run twice
    and show as two rows."""
    repeated = sorted({repr(v) for v in values if list(values).count(v) > 1})
    if repeated:
        raise ValueError(
            f"{name}: expected distinct values, got {', '.join(repeated)} more than once in {tuple(values)}"
        )
    return values


def generator(rng, name="rng"):
    """``rng`` must be a NumPy Generator: stevq draws its random numbers on the host, the same on
    every backend."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{name}: expected a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    return rng


def choice(x, name, options):
    """``x`` must be one of ``options``."""
    if x not in options:
        raise ValueError(f"{name}: expected one of {tuple(options)}, got {x!r}")
    return x


# The shapes of vector quantization (stevq.vq, stevq.metrics): a codebook C (K, D), embeddings z
# (..., D), integer code indices in [0, K).


def codebook(table, name="codebook"):
    """``table`` must be a finite float array of shape (K, D) with K >= 1."""
    array(table, name, ndim=2)
    if table.shape[0] == 0:
        raise ValueError(f"{name}: empty codebook (shape {tuple(table.shape)}); need at least one code")
    return table


def embeddings(z, table, name="z"):
    """``z`` must be a finite float array (..., D) whose last dimension matches the codebook
    ``table``'s (itself checked as a codebook)."""
    array(z, name)
    if z.ndim < 1:
        raise ValueError(f"{name}: expected an array of shape (..., D), got a 0-d array")
    codebook(table)
    same_last_dim(table, "codebook", z, name)
    return z


def indices(x, num_codes, name="indices", read=True):
    """``x`` must be an integer array with every value in [0, num_codes): one read of its minimum
    and maximum (``read=False``, for the indices of a traced call: dtype and backend only)."""
    number(num_codes, "num_codes", low=1, integer=True)
    array(x, name, dtype="int")
    value = getval(x)
    if value.size and read:
        xp = namespace_of(value)
        low, high = (int(v) for v in backend.to_numpy(xp.stack([xp.min(value), xp.max(value)])))
        if low < 0 or high >= num_codes:
            raise ValueError(f"{name}: values must lie in [0, {num_codes}), got min {low} and max {high}")
    return x


def embedding_pair(z_e, z_q):
    """Embeddings ``z_e`` and their codes ``z_q``: float arrays of one shape (values not read)."""
    array(z_e, "z_e", finite=False)
    array(z_q, "z_q", finite=False)
    if tuple(z_e.shape) != tuple(z_q.shape):
        raise ValueError(f"z_q: shape {tuple(z_q.shape)} does not match z_e's {tuple(z_e.shape)}")


def codebook_groups(table, groups):
    """``groups`` (an int >= 1) must divide the codebook's K codes into equal groups."""
    number(groups, "groups", low=1, integer=True)
    if table.shape[0] % groups:
        raise ValueError(f"groups: {groups} groups do not divide the {table.shape[0]} codes evenly")


def affine(table, scale, shift, groups, finite=True):
    """``scale`` and ``shift`` of an affine codebook: float arrays (groups, D), or (D,) for one group."""
    for name, value in (("scale", scale), ("shift", shift)):
        array(value, name, ndim=(1, 2), finite=finite)
        shape = tuple(value.shape) if value.ndim == 2 else (1, value.shape[0])
        if shape != (groups, table.shape[1]):
            raise ValueError(
                f"{name}: expected shape ({groups}, {table.shape[1]}) for {groups} "
                f"group(s) of {table.shape[1]}-dimensional codes, got {tuple(value.shape)}"
            )
