"""Layers as ``(init, apply)`` pairs over parameter dicts, in the style of JAX's stax.

    init(rng, input_shape) -> (output_shape, params)     rng: numpy.random.Generator
    apply(params, x)       -> y

``input_shape`` excludes the batch axis. Parameters are dicts of backend arrays (``{}`` for layers
without any); ``serial`` keeps a list of its layers' dicts. Initial values are drawn on the host from
the given Generator and then moved to the active backend, so one seed gives the same network on
every backend.
"""

import math

import numpy as np

from . import ops, ste, validate
from .backend import asarray, resolve_dtype


def _float_dtype(dtype):
    """None is the backend's default floating dtype (float32 on CuPy, else float64)."""
    return validate.choice(dtype, "dtype", ("float32", "float64", None))


_rng = validate.generator


def _input_shape(input_shape, layer, ndim=None):
    """``input_shape`` (without the batch axis) as a tuple of positive ints, ``ndim`` long if given."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if (
        shape is None
        or not shape
        or (ndim is not None and len(shape) != ndim)
        or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape)
    ):
        wanted = "(channels, height, width)" if ndim == 3 else "a tuple of positive ints"
        raise ValueError(f"input_shape: {layer} expects {wanted} without the batch axis, got {input_shape!r}")
    return shape


def _spatial_output(input_shape, layer, out_h, out_w):
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"input_shape: {layer} would produce an empty {out_h}x{out_w} output from "
            f"inputs of shape {tuple(input_shape)}"
        )
    return out_h, out_w


INITS = ("normal", "uniform")


def _weights(rng, shape, fan_in, normal_std, weight_init):
    """Initial weights and bias: "normal" draws N(0, normal_std^2) weights and a zero bias; "uniform"
    draws both from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for nn.Linear and nn.Conv2d
    (kaiming_uniform with a = sqrt(5)): weight std 1/sqrt(3 fan_in), 2.4 times smaller than He normal."""
    rng, out = _rng(rng), shape[-1] if len(shape) == 2 else shape[0]
    if weight_init == "normal":
        return rng.standard_normal(shape) * normal_std, np.zeros(out)
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape), rng.uniform(-bound, bound, out)


def Dense(out_dim, dtype=None, weight_init="normal"):
    """Fully connected layer y = x W + b, W ~ N(0, 1/fan_in) (LeCun normal), b = 0
    (weight_init="uniform": PyTorch's default, see ``_weights``)."""
    validate.number(out_dim, "out_dim", low=1, integer=True)
    _float_dtype(dtype)
    validate.choice(weight_init, "weight_init", INITS)

    def init(rng, input_shape):
        input_shape = _input_shape(input_shape, "Dense")
        fan_in = input_shape[-1]
        weight, bias = _weights(rng, (fan_in, out_dim), fan_in, 1.0 / math.sqrt(fan_in), weight_init)
        params = {"W": asarray(weight, resolve_dtype(dtype)), "b": asarray(bias, resolve_dtype(dtype))}
        return tuple(input_shape[:-1]) + (out_dim,), params

    def apply(params, x):
        validate.array(x, "x", finite=False)
        if x.ndim < 2 or x.shape[-1] != params["W"].shape[0]:
            raise ValueError(
                f"x: Dense expects inputs with last dimension {params['W'].shape[0]}, "
                f"(and a batch axis), got shape {tuple(x.shape)}"
            )
        return ops.add(ops.matmul(x, params["W"]), params["b"])

    return init, apply


def _check_conv_arguments(out_channels, kernel, stride, padding, dtype):
    validate.number(out_channels, "out_channels", low=1, integer=True)
    validate.number(kernel, "kernel", low=1, integer=True)
    validate.number(stride, "stride", low=1, integer=True)
    validate.number(padding, "padding", low=0, integer=True)
    _float_dtype(dtype)


def Conv(out_channels, kernel=3, stride=1, padding=0, dtype=None, weight_init="normal"):
    """2-D convolution on NCHW inputs, He-normal weights (out, in, k, k), zero bias
    (weight_init="uniform": PyTorch's default, see ``_weights``)."""
    _check_conv_arguments(out_channels, kernel, stride, padding, dtype)
    validate.choice(weight_init, "weight_init", INITS)

    def init(rng, input_shape):
        channels, height, width = _input_shape(input_shape, "Conv", ndim=3)
        out_size = _spatial_output(
            input_shape,
            "Conv",
            ops.output_size(height, kernel, stride, padding),
            ops.output_size(width, kernel, stride, padding),
        )
        fan_in = channels * kernel * kernel
        weight, bias = _weights(
            rng, (out_channels, channels, kernel, kernel), fan_in, math.sqrt(2.0 / fan_in), weight_init
        )
        return (out_channels,) + out_size, {
            "W": asarray(weight, resolve_dtype(dtype)),
            "b": asarray(bias, resolve_dtype(dtype)),
        }

    def apply(params, x):
        validate.array(x, "x", ndim=4, finite=False)
        if x.shape[1] != params["W"].shape[1]:
            raise ValueError(f"x: Conv expects {params['W'].shape[1]} input channels, got shape {tuple(x.shape)}")
        return ops.add_channel_bias(ops.conv2d(x, params["W"], stride, padding), params["b"])

    return init, apply


def ConvTranspose(out_channels, kernel=4, stride=2, padding=1, dtype=None):
    """Transposed 2-D convolution (learned upsampling), weights (in, out, k, k), zero bias.
    Output size (H - 1) stride - 2 padding + kernel."""
    _check_conv_arguments(out_channels, kernel, stride, padding, dtype)

    def init(rng, input_shape):
        channels, height, width = _input_shape(input_shape, "ConvTranspose", ndim=3)
        out_size = _spatial_output(
            input_shape,
            "ConvTranspose",
            (height - 1) * stride - 2 * padding + kernel,
            (width - 1) * stride - 2 * padding + kernel,
        )
        # He normal with the fan-in of one output pixel: channels * kernel^2 / stride^2 taps
        fan_in = channels * kernel * kernel / stride**2
        weight = _rng(rng).standard_normal((channels, out_channels, kernel, kernel)) * math.sqrt(2.0 / fan_in)
        return (out_channels,) + out_size, {
            "W": asarray(weight, resolve_dtype(dtype)),
            "b": asarray(np.zeros(out_channels), resolve_dtype(dtype)),
        }

    def apply(params, x):
        validate.array(x, "x", ndim=4, finite=False)
        if x.shape[1] != params["W"].shape[0]:
            raise ValueError(
                f"x: ConvTranspose expects {params['W'].shape[0]} input channels, got shape {tuple(x.shape)}"
            )
        return ops.add_channel_bias(ops.conv_transpose2d(x, params["W"], stride, padding), params["b"])

    return init, apply


def _stateless(function, shape_rule=lambda shape: shape):
    """A parameter-free layer applying ``function`` elementwise or with a known output shape."""

    def init(rng, input_shape):
        return tuple(shape_rule(tuple(input_shape))), {}

    def apply(params, x):
        return function(x)

    return init, apply


Relu = _stateless(ops.relu)
Gelu = _stateless(ops.gelu)
Tanh = _stateless(ops.tanh)
Sigmoid = _stateless(ops.sigmoid)
Flatten = _stateless(lambda x: ops.reshape(x, (x.shape[0], -1)), lambda shape: (math.prod(shape),))


def Reshape(shape):
    """Reshape each example to ``shape`` (batch axis kept)."""
    shape = _input_shape(shape, "Reshape")

    def reshape(x):
        if math.prod(x.shape[1:]) != math.prod(shape):
            raise ValueError(
                f"x: Reshape to {shape} needs {math.prod(shape)} values per example, got shape {tuple(x.shape)}"
            )
        return ops.reshape(x, (x.shape[0],) + shape)

    def out_shape(input_shape):
        if math.prod(input_shape) != math.prod(shape):
            raise ValueError(f"input_shape: Reshape to {shape} needs {math.prod(shape)} values, got {input_shape}")
        return shape

    return _stateless(reshape, out_shape)


def MaxPool(size=2):
    """Max pooling over non-overlapping size x size windows."""
    validate.number(size, "size", low=1, integer=True)
    return _stateless(lambda x: ops.max_pool2d(x, size), lambda s: (s[0], s[1] // size, s[2] // size))


def GlobalMaxPool():
    """(C, H, W) -> (C,): the maximum of every feature map."""
    return _stateless(ops.global_max_pool2d, lambda s: (s[0],))


def Clip(low=-1.0, high=1.0):
    """Clamp every value to [low, high] (gradient 1 strictly inside, 0 outside)."""
    validate.number(low, "low")
    validate.number(high, "high")
    if not low < high:
        raise ValueError(f"high: expected high > low = {low}, got {high}")
    return _stateless(lambda x: ops.clip(x, low, high))


def AvgPool(size=2):
    """Average pooling over non-overlapping size x size windows."""
    validate.number(size, "size", low=1, integer=True)
    return _stateless(lambda x: ops.avg_pool2d(x, size), lambda s: (s[0], s[1] // size, s[2] // size))


def Upsample(factor=2):
    """Nearest-neighbour upsampling by an integer ``factor``."""
    validate.number(factor, "factor", low=1, integer=True)
    return _stateless(lambda x: ops.upsample_nearest(x, factor), lambda s: (s[0], s[1] * factor, s[2] * factor))


def _backward(backward):
    """A surrogate name of ``ste.REGISTRY`` or a ``ste.Surrogate``, checked once here."""
    return backward if isinstance(backward, str) and backward in ste.SURROGATES else ste.surrogate(backward, "backward")


def BinaryAct(backward="relu"):
    """Binary activation 1{x > 0} with a straight-through backward rule (see ``stevq.ste``): any
    registered surrogate name or a ``ste.Surrogate`` of one's own."""
    backward = _backward(backward)
    return _stateless(lambda x: ste.binary_step(x, backward))


def QuantReLU(bits=2, step=None, backward="clipped_relu"):
    """k-bit quantized ReLU activation with a straight-through backward rule (see ``stevq.ste``); a
    surrogate other than the three of Yin et al. is used as given (not rescaled to the top level)."""
    backward = _backward(backward)
    validate.number(bits, "bits", low=1, high=16, integer=True)
    if step is not None:
        validate.number(step, "step", low=0.0, low_inclusive=False)
    return _stateless(lambda x: ste.quantized_relu(x, bits, step, backward))


def serial(*layers):
    """Compose layers; params is a list with one dict per layer."""
    inits, applies = zip(*layers)

    def init(rng, input_shape):
        params = []
        for layer_init in inits:
            input_shape, layer_params = layer_init(rng, input_shape)
            params.append(layer_params)
        return input_shape, params

    def apply(params, x):
        if len(params) != len(applies):
            raise ValueError(f"params: expected {len(applies)} layer dicts, got {len(params)}")
        validate.on_backend(params, "params")
        for layer_apply, layer_params in zip(applies, params):
            x = layer_apply(layer_params, x)
        return x

    return init, apply
