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
from autograd.extend import defvjp, primitive

from . import ops
from .backend import namespace_of
from . import validate

SURROGATES = ("identity", "relu", "clipped_relu")


@primitive
def straight_through(forward_value, surrogate):
    """Return ``forward_value`` exactly; send the gradient to ``surrogate`` as if it had been returned.

        y = forward_value,    dL/d(surrogate) = dL/dy,    dL/d(forward_value) = 0

    i.e. y = sg(forward_value) + surrogate - sg(surrogate), but without the rounding error of that sum.
    The two must have the same shape (the gradient of one is handed to the other unchanged).
    """
    if tuple(getattr(surrogate, "shape", ())) != tuple(getattr(forward_value, "shape", ())):
        raise ValueError(f"surrogate: shape {tuple(getattr(surrogate, 'shape', ()))} does not match "
                         f"forward_value's {tuple(getattr(forward_value, 'shape', ()))}")
    return forward_value


defvjp(straight_through,
       lambda ans, forward_value, surrogate: lambda g: namespace_of(g).zeros_like(g),
       lambda ans, forward_value, surrogate: lambda g: g)


def _surrogate(x, backward, top=1.0):
    """mu(x) for the named surrogate: identity x, ReLU max(x, 0), clipped ReLU min(max(x, 0), top)."""
    validate.choice(backward, "backward", SURROGATES)
    if backward == "identity":
        return x
    if backward == "relu":
        return ops.relu(x)
    return ops.clip(x, 0.0, top)


def binary_step(x, backward="relu"):
    """Binary activation sigma(x) = 1{x > 0} with a straight-through backward rule (Yin et al. 2019).

        forward:  sigma(x) = 1{x > 0}
        backward: dL/dx = dL/dy * mu'(x), with
                  identity:      mu'(x) = 1
                  relu:          mu'(x) = 1{x > 0}
                  clipped_relu:  mu'(x) = 1{0 < x < 1}
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
    top = 2 ** bits - 1
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
    top = 2 ** bits - 1
    step = 1.0 / top if step is None else validate.number(step, "step", low=0.0, low_inclusive=False)
    return straight_through(quantize_relu_levels(ops.stop_gradient(x), bits, step),
                            _surrogate(x, backward, top=top * step))


def round_ste(x):
    """Rounding with the identity straight-through rule: forward round(x), backward dL/dx = dL/dy.
    Used by finite scalar quantization (Mentzer et al. 2023)."""
    validate.array(x, "x")
    return straight_through(ops.round(ops.stop_gradient(x)), x)


def surrogate_derivative(x, backward, top=1.0):
    """mu'(x) of a named surrogate, elementwise, as a float array (for tests and for teaching)."""
    validate.array(x, "x")
    validate.choice(backward, "backward", SURROGATES)
    xp = namespace_of(x)
    if backward == "identity":
        return xp.ones_like(x)
    if backward == "relu":
        return xp.astype(x > 0, x.dtype)
    return xp.astype((x > 0) & (x < top), x.dtype)
