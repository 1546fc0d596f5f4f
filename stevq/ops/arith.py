"""Elementwise arithmetic, elementwise functions and matmul, each with its VJP.

One line per rule, as in autograd's numpy_vjps.py: ``defvjp(f, vjp_wrt_x, vjp_wrt_y)`` where each
vjp maker receives the forward answer and the inputs and returns ``g -> gradient``.
Operands may be arrays of the active backend or Python scalars; broadcasting follows NumPy.
"""

import math

from autograd.extend import defvjp

from ..autodiff import getval
from ..backend import namespace_of
from ._util import as_float, primitive, traced_once_at_most, unbroadcast


@primitive
def add(x, y):
    """x + y."""
    return x + y


@primitive
def subtract(x, y):
    """x - y."""
    return x - y


@primitive
def multiply(x, y):
    """x * y (elementwise)."""
    return x * y


@primitive
def divide(x, y):
    """x / y (elementwise)."""
    return x / y


@primitive
def negative(x):
    """-x."""
    return -x


@primitive
def power(x, p):
    """x ** p; d/dx = p x^(p-1), d/dp = x^p log x (log 1 where x = 0, as autograd does)."""
    return x**p


@primitive
def remainder(x, y):
    """x mod y (the sign of y, as Python's %); d/dx = 1, d/dy = -floor(x / y)."""
    return x % y


defvjp(add, lambda ans, x, y: lambda g: unbroadcast(g, x), lambda ans, x, y: lambda g: unbroadcast(g, y))
defvjp(subtract, lambda ans, x, y: lambda g: unbroadcast(g, x), lambda ans, x, y: lambda g: unbroadcast(-g, y))
defvjp(multiply, lambda ans, x, y: lambda g: unbroadcast(g * y, x), lambda ans, x, y: lambda g: unbroadcast(g * x, y))
defvjp(
    divide, lambda ans, x, y: lambda g: unbroadcast(g / y, x), lambda ans, x, y: lambda g: unbroadcast(-g * ans / y, y)
)
defvjp(negative, lambda ans, x: lambda g: -g)
defvjp(
    power,
    lambda ans, x, p: lambda g: unbroadcast(g * p * x ** (p - 1), x),
    lambda ans, x, p: lambda g: unbroadcast(g * ans * _log_or_zero(x), p),
)
defvjp(
    remainder,
    lambda ans, x, y: lambda g: unbroadcast(g, x),
    lambda ans, x, y: lambda g: unbroadcast(-g * namespace_of(x, y).floor(x / y), y),
)


def _log_or_zero(x):
    """log x, and 0 where x = 0 (the exponent's gradient of 0 ** p, as autograd's numpy rule)."""
    if isinstance(x, (int, float)):
        return math.log(x) if x != 0 else 0.0
    xp = namespace_of(x)
    return xp.log(xp.where(x == 0, xp.ones_like(x), x))


@primitive
def exp(x):
    """exp(x); d/dx = exp(x)."""
    return namespace_of(x).exp(x)


@primitive
def log(x):
    """log(x); d/dx = 1/x."""
    return namespace_of(x).log(x)


@primitive
def tanh(x):
    """tanh(x); d/dx = 1 - tanh(x)^2."""
    return namespace_of(x).tanh(x)


@primitive
def sigmoid(x):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x/2)) / 2 so it never overflows; d/dx = s (1 - s)."""
    return 0.5 * (namespace_of(x).tanh(0.5 * x) + 1.0)


@primitive
def relu(x):
    """max(x, 0); d/dx = 1{x > 0}."""
    # maximum, not where(x > 0, x, 0): NumPy's where branches on every element and is ten times slower
    return namespace_of(x).maximum(x, 0.0)


@primitive
def abs(x):
    """|x|; d/dx = sign(x)."""
    return namespace_of(x).abs(x)


@primitive
def square(x):
    """x^2; d/dx = 2x."""
    return x * x


@primitive
def sqrt(x):
    """sqrt(x); d/dx = 1 / (2 sqrt(x))."""
    return namespace_of(x).sqrt(x)


@primitive
def clip(x, low, high):
    """min(max(x, low), high); d/dx = 1{low < x < high} (zero on and beyond the bounds)."""
    # not xp.clip: array_api_compat's CuPy clip assigns through boolean masks, a host sync each
    xp = namespace_of(x)
    return xp.minimum(xp.maximum(x, low), high)


_GELU_C = 0.7978845608028654  # sqrt(2 / pi)
_GELU_A = 0.044715


def _gelu_tanh(x):
    """tanh(u), u = sqrt(2/pi) (x + 0.044715 x^3): shared by GELU's value and its derivative."""
    return namespace_of(x).tanh(_GELU_C * (x + _GELU_A * x * x * x))


def gelu(x):
    """GELU, tanh form (Hendrycks and Gimpel 2016): x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    d/dx = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2),  t = tanh(...).

    PyTorch's default is the exact form x Phi(x) with the normal CDF Phi; the tanh form is
    ``approximate='tanh'`` there. It is used here because neither NumPy nor the array API has erf,
    and the two differ by less than 5e-4 everywhere (a closed form on every backend instead of
    a hand-rolled erf series). t is computed once, from the value of x, and kept for the derivative
    (under a gradient of a gradient, where t must depend on x, the plain primitive recomputes it)."""
    if not traced_once_at_most(x):
        return _gelu(x)
    return _gelu_of(x, _gelu_tanh(getval(x)))


def _gelu_derivative(x, t):
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _GELU_C * (1.0 + 3.0 * _GELU_A * x * x)


@primitive
def _gelu(x):
    """GELU as one primitive, t recomputed for the derivative (the plain version)."""
    return 0.5 * x * (1.0 + _gelu_tanh(x))


@primitive
def _gelu_of(x, t):
    """GELU given t = tanh(sqrt(2/pi) (x + 0.044715 x^3)) (not differentiated: x carries the gradient)."""
    return 0.5 * x * (1.0 + t)


defvjp(_gelu, lambda ans, x: lambda g: g * _gelu_derivative(x, _gelu_tanh(x)))
defvjp(_gelu_of, lambda ans, x, t: lambda g: g * _gelu_derivative(x, t), None)
defvjp(exp, lambda ans, x: lambda g: g * ans)
defvjp(log, lambda ans, x: lambda g: g / x)
defvjp(tanh, lambda ans, x: lambda g: g * (1.0 - ans * ans))
defvjp(sigmoid, lambda ans, x: lambda g: g * ans * (1.0 - ans))
defvjp(relu, lambda ans, x: lambda g: g * as_float(x > 0, g))
defvjp(abs, lambda ans, x: lambda g: g * namespace_of(x).sign(x))
defvjp(square, lambda ans, x: lambda g: 2.0 * g * x)
defvjp(sqrt, lambda ans, x: lambda g: g / (2.0 * ans))
defvjp(clip, lambda ans, x, low, high: lambda g: g * as_float((x > low) & (x < high), g))


@primitive
def where(condition, x, y):
    """x where condition holds, else y (condition is not differentiated)."""
    xp = namespace_of(x, y)
    return xp.where(condition, x, y)


def _where_vjp(pick_x):
    def vjp_maker(ans, condition, x, y):
        def vjp(g):
            xp = namespace_of(g)
            chosen = xp.where(condition, g, xp.zeros_like(g)) if pick_x else xp.where(condition, xp.zeros_like(g), g)
            return unbroadcast(chosen, x if pick_x else y)

        return vjp

    return vjp_maker


defvjp(where, None, _where_vjp(True), _where_vjp(False))


@primitive
def heaviside(x):
    """The binary step 1{x > 0} as floats, NaN where x is NaN (as relu and NumPy's heaviside do, so
    that a diverged network is seen, not hidden). Its true derivative is zero almost everywhere, and
    autograd is told exactly that: this is why quantized networks need a straight-through estimator."""
    xp = namespace_of(x)
    # min(max(x, 0), 0) is 0 for every number, +-inf included, and NaN for NaN (maximum and minimum
    # propagate NaN); cheaper than where(isnan(x), x, step), which branches on every element
    return as_float(x > 0, x) + xp.minimum(xp.maximum(x, 0.0), 0.0)


@primitive
def round(x):
    """Round half to even. True derivative zero almost everywhere."""
    return namespace_of(x).round(x)


@primitive
def floor(x):
    """Largest integer <= x. True derivative zero almost everywhere."""
    return namespace_of(x).floor(x)


@primitive
def ceil(x):
    """Smallest integer >= x. True derivative zero almost everywhere."""
    return namespace_of(x).ceil(x)


_zero_vjp = lambda ans, x: lambda g: namespace_of(g).zeros_like(g)
defvjp(heaviside, _zero_vjp)
defvjp(round, _zero_vjp)
defvjp(floor, _zero_vjp)
defvjp(ceil, _zero_vjp)


@primitive
def matmul(x, y):
    """x @ y for x of shape (..., n, k) and y of shape (..., k, m) or (k,); batch axes broadcast.
    VJPs: dx = g @ y^T, dy = x^T @ g, each summed over broadcast batch axes."""
    if x.ndim < 2:
        raise ValueError(f"matmul: x must have at least 2 dimensions, got shape {tuple(x.shape)}")
    return x @ y


def _matmul_vjp_x(ans, x, y):
    xp = namespace_of(x, y)
    if y.ndim == 1:
        return lambda g: unbroadcast(xp.expand_dims(g, axis=-1) * y, x)
    return lambda g: unbroadcast(g @ xp.matrix_transpose(y), x)


def _matmul_vjp_y(ans, x, y):
    xp = namespace_of(x, y)
    if y.ndim == 1:
        return lambda g: xp.reshape(g, (-1,)) @ xp.reshape(x, (-1, x.shape[-1]))
    return lambda g: unbroadcast(xp.matrix_transpose(x) @ g, y)


defvjp(matmul, _matmul_vjp_x, _matmul_vjp_y)
