"""Straight-through estimators: a forward rule and a different backward rule.

A quantizer q(x) is piecewise constant, so dq/dx = 0 almost everywhere and no gradient reaches the
layers below it. A straight-through estimator (STE) keeps the forward value q(x) and, in the
backward pass, pretends that the layer was a smooth surrogate mu(x):

    forward:  y = q(x)
    backward: dL/dx = dL/dy * mu'(x)

``straight_through(forward_value, surrogate)`` is this rule for any pair; the named estimators below
are two-line uses of it. References: Bengio et al. 2013; Yin et al., ICLR 2019, "Understanding
Straight-Through Estimator in Training Activation Quantized Neural Nets".
"""

import dataclasses
import weakref
from typing import Callable

import numpy as np
from autograd.extend import defvjp, primitive

from . import backend, ops, validate
from .autodiff import grad
from .backend import namespace_of

SURROGATES = ("identity", "relu", "clipped_relu")  # Yin et al.'s three, with closed forms in theory.yin2019


@dataclasses.dataclass(frozen=True)
class Surrogate:
    """A straight-through surrogate: the backward pass uses mu'(x) in place of the quantizer's
    derivative. Give mu (``function``: the engine takes its derivative) or mu' (``derivative``),
    each written with ``stevq.ops`` (or the array's own namespace) so that it runs on every backend
    and on host NumPy arrays (the quadrature of ``theory.yin2019`` evaluates mu' there).
    ``kinks``: the points where mu' jumps or bends, if known (quadrature splits there; without them
    it bisects until it finds them). ``formula`` and ``source`` say what it is and where it is from.

        Surrogate("half_tanh", function=lambda x: ops.multiply(0.5, ops.tanh(x)))
        Surrogate("triangle", derivative=lambda x: ops.relu(ops.subtract(1.0, ops.abs(x))), kinks=(-1, 0, 1))
    """

    name: str
    derivative: Callable | None = None
    function: Callable | None = None
    kinks: tuple = ()
    formula: str = ""
    source: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name: expected a non-empty string naming the surrogate, got {self.name!r}")
        for field in ("derivative", "function"):
            value = getattr(self, field)
            if value is not None and not callable(value):
                raise TypeError(
                    f"surrogate {self.name!r}: {field} must be a function of an array, got {type(value).__name__}"
                )
        if self.derivative is None and self.function is None:
            raise TypeError(f"surrogate {self.name!r}: give function=mu or derivative=mu' (a function of an array)")
        object.__setattr__(self, "kinks", tuple(float(k) for k in self.kinks))

    def mu_prime(self, x):
        """mu'(x), elementwise."""
        if self.derivative is not None:
            return self.derivative(x)
        return grad(lambda t: ops.sum(self.function(t)))(x)

    def backward_of(self, x):
        """A value whose gradient with respect to ``x`` is mu'(x) (what ``straight_through`` needs)."""
        if self.function is not None:
            return self.function(x)
        return _with_derivative(x, self.derivative)


@primitive
def _with_derivative(x, derivative):
    """x itself, with d/dx = ``derivative(x)`` (a surrogate given by its derivative alone)."""
    return x


defvjp(_with_derivative, lambda ans, x, derivative: lambda g: g * derivative(x))


def _ones(x):
    return ops.add(ops.multiply(x, 0.0), 1.0)


def _indicator(condition, x):
    xp = namespace_of(x)
    return xp.astype(condition, x.dtype)


def tanh_surrogate(temperature=1.0):
    """mu(x) = (1 + tanh(x / T)) / 2, the smooth step; mu'(x) = (1 - tanh^2(x / T)) / (2 T)."""
    validate.number(temperature, "temperature", low=0.0, low_inclusive=False)
    return Surrogate(
        "tanh" if temperature == 1.0 else f"tanh_T{temperature:g}",
        function=lambda x: ops.multiply(0.5, ops.add(1.0, ops.tanh(ops.divide(x, temperature)))),
        formula=f"mu(x) = (1 + tanh(x / {temperature:g})) / 2, mu'(x) = (1 - tanh^2(x / T)) / (2 T)",
        source="the smooth relaxation of the step used by annealed soft quantizers (e.g. Gong et al. "
        "2019, Differentiable Soft Quantization)",
    )


REGISTRY = {
    "identity": Surrogate(
        "identity", function=lambda x: x, formula="mu(x) = x, mu'(x) = 1", source="Bengio et al. 2013; Yin et al. 2019"
    ),
    "relu": Surrogate(
        "relu",
        function=ops.relu,
        kinks=(0.0,),
        formula="mu(x) = max(x, 0), mu'(x) = 1{x > 0}",
        source="Yin et al. 2019",
    ),
    "clipped_relu": Surrogate(
        "clipped_relu",
        function=lambda x: ops.clip(x, 0.0, 1.0),
        kinks=(0.0, 1.0),
        formula="mu(x) = min(max(x, 0), 1), mu'(x) = 1{0 < x < 1}",
        source="Yin et al. 2019",
    ),
    "leaky_clipped_relu": Surrogate(
        "leaky_clipped_relu",
        derivative=lambda x: ops.add(0.1, ops.multiply(0.9, _indicator((x > 0) & (x < 1), x))),
        kinks=(0.0, 1.0),
        formula="mu'(x) = 1 on (0, 1), 0.1 elsewhere",
        source="the clipped ReLU with a leak outside its window, so that saturated inputs keep a gradient",
    ),
    "tanh": tanh_surrogate(1.0),
    "approx_sign": Surrogate(
        "approx_sign",
        derivative=lambda x: ops.relu(ops.subtract(1.0, ops.abs(x))),
        kinks=(-1.0, 0.0, 1.0),
        formula="mu'(x) = max(0, 1 - |x|): half the derivative of ApproxSign(x) = 2x + x^2 on [-1, 0), 2x - x^2 on "
        "[0, 1), sign(x) outside (for the 0/1 step, which is (sign + 1) / 2)",
        source="Liu et al. 2018, Bi-Real Net",
    ),
}


def surrogate(spec, argument="surrogate"):
    """The ``Surrogate`` named by ``spec`` (a registered name, or a Surrogate itself), checked once:
    its mu' must give a finite array of its input's shape. Errors name ``argument``."""
    if isinstance(spec, str):
        validate.choice(spec, argument, tuple(REGISTRY))
        return REGISTRY[spec]
    if not isinstance(spec, Surrogate):
        raise TypeError(
            f"{argument}: expected a registered name {tuple(REGISTRY)} or a stevq.ste.Surrogate, got "
            f"{type(spec).__name__} (wrap a function: Surrogate('mine', derivative=f) or function=f)"
        )
    if spec in _CHECKED or (spec.name in REGISTRY and REGISTRY[spec.name] is spec):
        return spec
    probe = np.linspace(-3.0, 3.0, 13)
    try:
        with backend.use("numpy"):  # a host probe, whatever the backend
            value = np.asarray(spec.mu_prime(probe), dtype=float)
    except Exception as err:  # noqa: BLE001 - any failure of the user's function, named
        raise ValueError(
            f"{argument}: surrogate {spec.name!r}: mu' failed on a test array: {type(err).__name__}: {err}"
        ) from err
    if value.shape != probe.shape:
        raise ValueError(
            f"{argument}: surrogate {spec.name!r}: mu' must keep its input's shape {probe.shape}, got {value.shape}"
        )
    if not np.all(np.isfinite(value)):
        raise ValueError(
            f"{argument}: surrogate {spec.name!r}: mu' gave non-finite values on [-3, 3] (e.g. at x = "
            f"{probe[~np.isfinite(value)][0]:g})"
        )
    _CHECKED.add(spec)
    return spec


_CHECKED = weakref.WeakSet()  # surrogates already probed (a training loop calls binary_step every step)


@primitive
def straight_through(forward_value, surrogate):
    """Return ``forward_value`` exactly; send the gradient to ``surrogate`` as if it had been returned.

        y = forward_value,    dL/d(surrogate) = dL/dy,    dL/d(forward_value) = 0

    i.e. y = sg(forward_value) + surrogate - sg(surrogate), but without the rounding error of that sum.
    The two must have the same shape (the gradient of one is handed to the other unchanged).
    """
    for name, value in (("forward_value", forward_value), ("surrogate", surrogate)):
        validate.array(value, name, dtype=None, finite=False)  # arrays of the active backend (no silent host result)
    if tuple(getattr(surrogate, "shape", ())) != tuple(getattr(forward_value, "shape", ())):
        raise ValueError(
            f"surrogate: shape {tuple(getattr(surrogate, 'shape', ()))} does not match "
            f"forward_value's {tuple(getattr(forward_value, 'shape', ()))}"
        )
    return forward_value


defvjp(
    straight_through,
    lambda ans, forward_value, surrogate: lambda g: namespace_of(g).zeros_like(g),
    lambda ans, forward_value, surrogate: lambda g: g,
)


def _surrogate(x, backward, top=1.0):
    """A value whose gradient is mu'(x): identity x, ReLU max(x, 0), clipped ReLU min(max(x, 0), top)
    for the three named ones; any other surrogate (registered name or ``Surrogate``) as it is."""
    if isinstance(backward, str) and backward in SURROGATES:
        if backward == "identity":
            return x
        if backward == "relu":
            return ops.relu(x)
        return ops.clip(x, 0.0, top)
    return surrogate(backward, "backward").backward_of(x)


def binary_step(x, backward="relu"):
    """Binary activation sigma(x) = 1{x > 0} with a straight-through backward rule (Yin et al. 2019).

    forward:  sigma(x) = 1{x > 0}
    backward: dL/dx = dL/dy * mu'(x), with
              identity:      mu'(x) = 1
              relu:          mu'(x) = 1{x > 0}
              clipped_relu:  mu'(x) = 1{0 < x < 1}
              or any other surrogate: a name of ``REGISTRY`` or a ``Surrogate`` of your own.
    """
    validate.array(x, "x")
    return straight_through(ops.heaviside(x), _surrogate(x, backward))


def quantize_relu_levels(x, bits, step):
    """The uniform ``bits``-bit quantized ReLU (no gradient): levels 0, step, ..., (2^bits - 1) step,

        q(x) = 0                      for x <= 0
             = k step                 for (k - 1) step < x <= k step,  k = 1 .. 2^bits - 1
             = (2^bits - 1) step      for x > (2^bits - 1) step
    i.e. q(x) = step * clip(ceil(x / step), 0, 2^bits - 1), the form used by Yin et al. 2019.
    """
    top = 2**bits - 1
    return ops.multiply(ops.clip(ops.ceil(ops.divide(x, step)), 0.0, float(top)), step)


def quantized_relu(x, bits=2, step=None, backward="clipped_relu"):
    """k-bit quantized ReLU activation with a straight-through backward rule (Yin et al. 2019).

        forward:  q(x) = step * clip(ceil(x / step), 0, 2^bits - 1)
        backward: dL/dx = dL/dy * mu'(x), with
                  identity:      mu'(x) = 1
                  relu:          mu'(x) = 1{x > 0}
                  clipped_relu:  mu'(x) = 1{0 < x < (2^bits - 1) step}
    ``step`` defaults to 1 / (2^bits - 1), so that the top level is 1 (for bits = 1 this is the
    binary step).
    """
    validate.array(x, "x")
    validate.number(bits, "bits", low=1, high=16, integer=True)
    top = 2**bits - 1
    step = 1.0 / top if step is None else validate.number(step, "step", low=0.0, low_inclusive=False)
    return straight_through(
        quantize_relu_levels(ops.stop_gradient(x), bits, step), _surrogate(x, backward, top=top * step)
    )


def round_ste(x):
    """Rounding with the identity straight-through rule: forward round(x), backward dL/dx = dL/dy.
    Used by finite scalar quantization (Mentzer et al. 2023)."""
    validate.array(x, "x")
    return straight_through(ops.round(ops.stop_gradient(x)), x)


def surrogate_derivative(x, backward, top=1.0):
    """mu'(x) of a surrogate (a name or a ``Surrogate``), elementwise, as a float array (for tests and
    for teaching); ``top`` is the clipped ReLU's upper end."""
    validate.array(x, "x")
    if not (isinstance(backward, str) and backward in SURROGATES):
        return surrogate(backward, "backward").mu_prime(x)
    xp = namespace_of(x)
    if backward == "identity":
        return xp.ones_like(x)
    if backward == "relu":
        return xp.astype(x > 0, x.dtype)
    return xp.astype((x > 0) & (x < top), x.dtype)
