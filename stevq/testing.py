"""Gradient checking: the engine's gradient against central finite differences and against the
same function written in ``autograd.numpy`` (the oracle), on any backend.

    check_grads(f, x, W)                          # finite differences for every float array argument
    check_grads(f, x, W, reference=f_anp)         # ... and autograd.numpy's gradient of f_anp
"""
import numpy as np
from autograd import grad

from .backend import asarray, is_array, name, to_numpy


def numerical_grad(f, args, argnum, eps=1e-6):
    """Central differences (f(x + eps e_i) - f(x - eps e_i)) / (2 eps) for every element of args[argnum]."""
    point = to_numpy(args[argnum]).astype(np.float64)
    dtype = args[argnum].dtype
    result = np.zeros_like(point)

    def at(value):
        shifted = list(args)
        shifted[argnum] = asarray(value, dtype)
        return float(to_numpy(f(*shifted)))

    for index in np.ndindex(point.shape):
        up, down = point.copy(), point.copy()
        up[index] += eps
        down[index] -= eps
        result[index] = (at(up) - at(down)) / (2 * eps)
    return result


def _compare(label, got, expected, rtol, atol):
    if got.shape != expected.shape:
        raise AssertionError(f"{label}: gradient of shape {got.shape}, expected shape {expected.shape}")
    error = np.abs(got - expected)
    allowed = atol + rtol * np.abs(expected)
    if not np.all(error <= allowed):
        worst = np.unravel_index(np.argmax(error - allowed), error.shape) if error.ndim else ()
        raise AssertionError(f"{label}: gradient mismatch, worst at index {worst}: got {got[worst]!r}, "
                             f"expected {expected[worst]!r} (|error| {error[worst]:.3g} > {allowed[worst]:.3g})")
    return float(np.max(error)) if error.size else 0.0


def check_grads(f, *args, argnums=None, eps=1e-6, rtol=1e-5, atol=1e-7, reference=None):
    """Check d f / d args[i] for a scalar-valued ``f`` and return the largest absolute errors.

    ``argnums`` defaults to every floating-point array argument. With ``reference`` (the same
    function written with ``autograd.numpy``), its autograd gradient on NumPy copies of the
    arguments is compared too. Raises AssertionError naming the argument and the worst element.
    """
    if argnums is None:
        argnums = [i for i, a in enumerate(args) if is_array(a) and "float" in str(a.dtype)]
    errors = {}
    for argnum in argnums:
        engine = to_numpy(grad(f, argnum)(*args)).astype(np.float64)
        numeric = numerical_grad(f, args, argnum, eps)
        errors[f"arg{argnum} vs finite differences"] = _compare(
            f"argument {argnum} ({name()} backend) vs finite differences", engine, numeric, rtol, atol)
        if reference is not None:
            host_args = [to_numpy(a) if is_array(a) else a for a in args]
            oracle = np.asarray(grad(reference, argnum)(*host_args), dtype=np.float64)
            errors[f"arg{argnum} vs autograd.numpy"] = _compare(
                f"argument {argnum} ({name()} backend) vs autograd.numpy", engine, oracle, rtol, atol)
    return errors
