"""Gradient checking: the engine's gradient against central finite differences and against the
same function written in ``autograd.numpy`` (the oracle), on any backend.

    check_grads(f, x, W)                          # finite differences for every float array argument
    check_grads(f, x, W, reference=f_anp)         # ... and autograd.numpy's gradient of f_anp
    check_op(op, op_anp, x_host, W_host)          # an array-valued op: value, gradients, backends agree
"""

import autograd.numpy as anp
import numpy as np
from autograd import grad

from . import backend, ops
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
        raise AssertionError(
            f"{label}: gradient mismatch, worst at index {worst}: got {got[worst]!r}, "
            f"expected {expected[worst]!r} (|error| {error[worst]:.3g} > {allowed[worst]:.3g})"
        )
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
            f"argument {argnum} ({name()} backend) vs finite differences", engine, numeric, rtol, atol
        )
        if reference is not None:
            host_args = [to_numpy(a) if is_array(a) else a for a in args]
            oracle = np.asarray(grad(reference, argnum)(*host_args), dtype=np.float64)
            errors[f"arg{argnum} vs autograd.numpy"] = _compare(
                f"argument {argnum} ({name()} backend) vs autograd.numpy", engine, oracle, rtol, atol
            )
    return errors


def _float_argnums(host_args):
    return [i for i, a in enumerate(host_args) if np.asarray(a).dtype.kind == "f"]


def _weighted_sum(op, out_shape, seed=99):
    """f(*args) = sum(op(*args) * R) with a fixed random R, so every output element carries its own
    weight; returns f on the active backend and R on the host."""
    weights_host = np.random.default_rng(seed).standard_normal(out_shape)
    weights = asarray(weights_host)
    return (lambda *args: ops.sum(ops.multiply(op(*args), weights))), weights_host


def _engine_grads(op, host_args):
    args = [asarray(a) for a in host_args]
    loss, _ = _weighted_sum(op, tuple(op(*args).shape))
    return [to_numpy(grad(loss, i)(*args)) for i in _float_argnums(host_args)]


def check_op(op, reference, *host_args, rtol=1e-5, atol=1e-7, agreement=1e-10):
    """Check an array-valued ``op`` (stevq) against ``reference`` (the same op in autograd.numpy).

    ``host_args`` are NumPy arrays (integer arrays are passed along, not differentiated). On the
    active backend: the forward value equals the reference's to 1e-12; the gradient of
    sum(op(args) * R), R fixed and random, with respect to every float argument matches central
    finite differences and autograd.numpy's gradient; and, off NumPy, it equals the gradient
    computed on NumPy to ``agreement``.
    """
    args = [asarray(a) for a in host_args]
    out = op(*args)
    np.testing.assert_allclose(to_numpy(out), reference(*host_args), rtol=1e-12, atol=1e-12)
    loss, weights_host = _weighted_sum(op, tuple(out.shape))
    check_grads(
        loss,
        *args,
        argnums=_float_argnums(host_args),
        rtol=rtol,
        atol=atol,
        reference=lambda *a: anp.sum(reference(*a) * weights_host),
    )
    if name() != "numpy":
        here = _engine_grads(op, host_args)
        with backend.use("numpy"):
            on_numpy = _engine_grads(op, host_args)
        for argnum, got, expected in zip(_float_argnums(host_args), here, on_numpy):
            difference = float(np.max(np.abs(got - expected), initial=0.0))
            if got.shape != expected.shape or difference > agreement:
                raise AssertionError(f"argument {argnum}: {name()} and NumPy gradients differ by {difference:.3g}")
