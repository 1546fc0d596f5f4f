"""Bad input at the public boundary raises ValueError/TypeError naming the argument (and saying
what was expected), on both CPU backends."""

import numpy as np
import pytest

import stevq
from stevq import nn, ops, optim, ste, validate


def floats(*shape):
    return stevq.asarray(np.random.default_rng(0).standard_normal(shape))


def ints(*values):
    return stevq.asarray(np.array(values, dtype=np.int64))


def init(layer, input_shape):
    return layer[0](np.random.default_rng(0), input_shape)


# --- layers: wrong shapes and dtypes at apply time --------------------------------------------------


def test_dense_wrong_input(backend):
    _, apply = dense = nn.Dense(3)
    _, params = init(dense, (4,))
    with pytest.raises(ValueError, match=r"^x: .*last dimension 4"):
        apply(params, floats(2, 5))
    with pytest.raises(ValueError, match=r"^x: .*batch"):
        apply(params, floats(4))
    with pytest.raises(TypeError, match=r"^x: .*floating-point"):
        apply(params, ints(1, 2, 3, 4)[None, ...])
    with pytest.raises(TypeError, match=r"^x: .*stevq.asarray"):
        apply(params, [[1.0, 2.0, 3.0, 4.0]])


def test_conv_wrong_input(backend):
    _, apply = conv = nn.Conv(2, kernel=3)
    _, params = init(conv, (3, 5, 5))
    with pytest.raises(ValueError, match=r"^x: expected 4 dimensions"):
        apply(params, floats(3, 5, 5))
    with pytest.raises(ValueError, match=r"^x: Conv expects 3 input channels"):
        apply(params, floats(1, 2, 5, 5))
    with pytest.raises(ValueError, match=r"^x: conv2d .* is empty"):
        apply(params, floats(1, 3, 2, 2))
    with pytest.raises(TypeError, match=r"^x: .*floating-point"):
        apply(params, stevq.asarray(np.zeros((1, 3, 5, 5), dtype=np.int64)))


def test_conv_transpose_wrong_input(backend):
    _, apply = layer = nn.ConvTranspose(2)
    _, params = init(layer, (3, 4, 4))
    with pytest.raises(ValueError, match=r"^x: ConvTranspose expects 3 input channels"):
        apply(params, floats(1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"^x: expected 4 dimensions"):
        apply(params, floats(3, 4, 4))


def test_pool_and_reshape_wrong_input(backend):
    with pytest.raises(ValueError, match=r"^x: spatial size 5x4 .* divisible by the pool size 2"):
        nn.MaxPool(2)[1]({}, floats(1, 1, 5, 4))
    with pytest.raises(ValueError, match=r"^x: pooling expects a 4-D"):
        nn.AvgPool(2)[1]({}, floats(4, 4))
    with pytest.raises(ValueError, match=r"^x: Reshape to \(2, 3\) needs 6"):
        nn.Reshape((2, 3))[1]({}, floats(2, 5))


def test_serial_checks_the_parameter_list(backend):
    model = nn.serial(nn.Dense(2), nn.Relu)
    _, params = init(model, (3,))
    with pytest.raises(ValueError, match=r"^params: expected 2 layer dicts, got 1"):
        model[1](params[:1], floats(1, 3))


# --- layers: bad construction and init arguments -------------------------------------------------------


BAD_LAYER_ARGUMENTS = {
    "dense-out0": (lambda: nn.Dense(0), ValueError, r"^out_dim: expected a value >= 1"),
    "dense-float-out": (lambda: nn.Dense(2.5), TypeError, r"^out_dim: expected an integer"),
    "dense-dtype": (lambda: nn.Dense(3, dtype="float16"), ValueError, r"^dtype: expected one of"),
    "conv-kernel": (lambda: nn.Conv(4, kernel=0), ValueError, r"^kernel:"),
    "conv-stride": (lambda: nn.Conv(4, stride=0), ValueError, r"^stride:"),
    "conv-padding": (lambda: nn.Conv(4, padding=-1), ValueError, r"^padding:"),
    "conv-bool-channels": (lambda: nn.Conv(True), TypeError, r"^out_channels:"),
    "convT-kernel": (lambda: nn.ConvTranspose(2, kernel=0), ValueError, r"^kernel:"),
    "convT-stride": (lambda: nn.ConvTranspose(2, stride=1.5), TypeError, r"^stride:"),
    "maxpool-size": (lambda: nn.MaxPool(0), ValueError, r"^size:"),
    "avgpool-size": (lambda: nn.AvgPool(1.5), TypeError, r"^size:"),
    "upsample": (lambda: nn.Upsample(0), ValueError, r"^factor:"),
    "reshape": (lambda: nn.Reshape((2, 0)), ValueError, r"^input_shape: Reshape"),
    "binary-backward": (
        lambda: nn.BinaryAct("sign"),
        ValueError,
        r"^backward: expected one of \('identity', 'relu', 'clipped_relu', 'leaky_clipped_relu'",
    ),
    "quant-bits": (lambda: nn.QuantReLU(bits=0), ValueError, r"^bits:"),
    "quant-step": (lambda: nn.QuantReLU(bits=2, step=0.0), ValueError, r"^step: expected a value > 0"),
    "quant-backward": (lambda: nn.QuantReLU(backward="softsign"), ValueError, r"^backward:"),
}


@pytest.mark.parametrize(
    "layer, input_shape, pattern",
    [
        (nn.Conv(2), (5, 5), r"^input_shape: Conv expects \(channels, height, width\)"),
        (nn.Conv(2, kernel=5), (1, 3, 3), r"^input_shape: Conv would produce an empty"),
        (
            nn.ConvTranspose(2, kernel=2, stride=1, padding=3),
            (1, 2, 2),
            r"^input_shape: ConvTranspose would produce an empty",
        ),
        (nn.Dense(2), (), r"^input_shape: Dense"),
        (nn.Dense(2), (0,), r"^input_shape: Dense"),
        (nn.Reshape((2, 3)), (5,), r"^input_shape: Reshape to \(2, 3\) needs 6"),
    ],
    ids=["conv-2d-shape", "conv-too-small", "convT-empty", "dense-empty", "dense-zero", "reshape"],
)
def test_bad_input_shapes_at_init(layer, input_shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        init(layer, input_shape)


def test_init_needs_a_generator():
    with pytest.raises(TypeError, match=r"^rng: expected a numpy.random.Generator"):
        nn.Dense(2)[0](0, (3,))


# --- STE functions ---------------------------------------------------------------------------------------

STE_FUNCTIONS = {
    "binary_step": lambda x: ste.binary_step(x),
    "quantized_relu": lambda x: ste.quantized_relu(x, 2),
    "round_ste": ste.round_ste,
    "surrogate_derivative": lambda x: ste.surrogate_derivative(x, "relu"),
}


@pytest.mark.parametrize("name", sorted(STE_FUNCTIONS))
def test_ste_rejects_integer_arrays(backend, name):
    with pytest.raises(TypeError, match=r"^x: expected a floating-point array .* got dtype .*int64"):
        STE_FUNCTIONS[name](ints(1, 2, 3))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", sorted(STE_FUNCTIONS))
def test_ste_rejects_non_finite_inputs(backend, name, bad):
    with pytest.raises(ValueError, match=r"^x: contains NaN or inf"):
        STE_FUNCTIONS[name](stevq.asarray(np.array([0.5, bad, -1.0])))


@pytest.mark.parametrize("name", sorted(STE_FUNCTIONS))
def test_ste_rejects_host_data(name):
    with pytest.raises(TypeError, match=r"^x: expected an array of the active backend"):
        STE_FUNCTIONS[name]([0.5, 1.0])


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda x: ste.quantized_relu(x, bits=0), ValueError, r"^bits: expected a value >= 1"),
        (lambda x: ste.quantized_relu(x, bits=2.0), TypeError, r"^bits: expected an integer"),
        (lambda x: ste.quantized_relu(x, bits=2, step=-0.1), ValueError, r"^step: expected a value > 0"),
        (lambda x: ste.quantized_relu(x, bits=2, step=float("nan")), ValueError, r"^step: expected a finite number"),
        (lambda x: ste.quantized_relu(x, backward="sigmoid"), ValueError, r"^backward: expected one of"),
        (lambda x: ste.binary_step(x, backward="hard_tanh"), ValueError, r"^backward: expected one of"),
        (
            lambda x: ste.straight_through(x, ops.reshape(x, (1, 3))),
            ValueError,
            r"^surrogate: shape \(1, 3\) does not match",
        ),
    ],
    ids=["bits-0", "bits-float", "step-negative", "step-nan", "quant-backward", "binary-backward", "st-shapes"],
)
def test_ste_bad_arguments(backend, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(floats(3))


# --- optimizers -------------------------------------------------------------------------------------------


BAD_OPTIMIZER_HYPERPARAMETERS = {
    "sgd-lr0": (lambda: optim.sgd(0.0), ValueError, r"^lr: expected a value > 0"),
    "sgd-lr-neg": (lambda: optim.sgd(-0.1), ValueError, r"^lr:"),
    "sgd-lr-str": (lambda: optim.sgd("0.1"), TypeError, r"^lr: expected a real number"),
    "sgd-lr-inf": (lambda: optim.sgd(float("inf")), ValueError, r"^lr: expected a finite number"),
    "momentum-big": (lambda: optim.sgd(0.1, momentum=1.5), ValueError, r"^momentum: expected a value <= 1"),
    "momentum-neg": (lambda: optim.sgd(0.1, momentum=-0.1), ValueError, r"^momentum:"),
    "adam-lr0": (lambda: optim.adam(0.0), ValueError, r"^lr:"),
    "adam-b1-1": (lambda: optim.adam(1e-3, b1=1.0), ValueError, r"^b1: expected a value < 1"),
    "adam-b2": (lambda: optim.adam(1e-3, b2=1.2), ValueError, r"^b2:"),
    "adam-b1-neg": (lambda: optim.adam(1e-3, b1=-0.5), ValueError, r"^b1:"),
    "adam-eps": (lambda: optim.adam(1e-3, eps=0.0), ValueError, r"^eps: expected a value > 0"),
    "adam-lr-none": (lambda: optim.adam(None), TypeError, r"^lr:"),
}


@pytest.mark.parametrize(
    "make, error, pattern",
    [*BAD_LAYER_ARGUMENTS.values(), *BAD_OPTIMIZER_HYPERPARAMETERS.values()],
    ids=[*BAD_LAYER_ARGUMENTS, *BAD_OPTIMIZER_HYPERPARAMETERS],
)
def test_bad_layer_arguments_and_optimizer_hyperparameters(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


# --- backend, ops, losses -----------------------------------------------------------------------------------


def test_unknown_backend_names():
    with pytest.raises(
        ValueError, match=r"^backend: unknown name 'jax'; expected one of \('numpy', 'cupy', 'array_api_strict'\)"
    ):
        stevq.use("jax")
    with pytest.raises(ValueError, match=r"'NumPy'"):
        stevq.use("NumPy")
    with pytest.raises(ValueError, match=r"^dtype: expected one of"):
        stevq.asarray([1.0], "float16")


def test_cross_entropy_checks_its_inputs(backend):
    logits = floats(3, 4)
    with pytest.raises(TypeError, match=r"^labels: expected an integer array"):
        ops.cross_entropy(logits, stevq.asarray(np.array([0.0, 1.0, 2.0])))
    with pytest.raises(ValueError, match=r"^labels: expected shape \(3,\)"):
        ops.cross_entropy(logits, ints(0, 1))
    with pytest.raises(ValueError, match=r"^labels: expected class indices in \[0, 4\), got values in \[0, 4\]"):
        ops.cross_entropy(logits, ints(0, 4, 1))
    with pytest.raises(ValueError, match=r"^labels: expected class indices"):
        ops.cross_entropy(logits, ints(0, -1, 1))
    with pytest.raises(ValueError, match=r"^logits: expected 2 dimensions"):
        ops.cross_entropy(floats(3), ints(0, 1, 2))


def test_conv_ops_check_shapes(backend):
    with pytest.raises(ValueError, match=r"^weight: conv2d expects a 4-D \(out, in, kh, kw\) array with in = 3"):
        ops.conv2d(floats(1, 3, 5, 5), floats(2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"^x: conv2d expects a 4-D"):
        ops.conv2d(floats(3, 5, 5), floats(2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"^weight: conv_transpose2d expects a 4-D \(in, out, kh, kw\)"):
        ops.conv_transpose2d(floats(1, 3, 4, 4), floats(2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"^output_padding: expected 0 <= output_padding < stride = 2"):
        ops.conv_transpose2d(floats(1, 3, 4, 4), floats(3, 2, 3, 3), stride=2, output_padding=2)


def test_matmul_needs_a_matrix_on_the_left(backend):
    with pytest.raises(ValueError, match=r"^matmul: x must have at least 2 dimensions"):
        ops.matmul(floats(3), floats(3, 2))


def test_validate_helpers_name_the_argument(backend):
    with pytest.raises(ValueError, match=r"^codebook: expected shape \(any, 3\), got \(4, 2\)"):
        validate.array(floats(4, 2), "codebook", shape=(None, 3))
    with pytest.raises(ValueError, match=r"^z_e: expected 2 or 3 dimensions"):
        validate.array(floats(4), "z_e", ndim=(2, 3))
    with pytest.raises(ValueError, match=r"^z_e: last dimension 2 does not match codebook's 3"):
        validate.same_last_dim(floats(4, 3), "codebook", floats(5, 2), "z_e")
    with pytest.raises(TypeError, match=r"^steps: expected an integer, got True"):
        validate.number(True, "steps", integer=True)
    with pytest.raises(ValueError, match=r"^decay: expected a value < 1"):
        validate.number(1.0, "decay", high=1.0, high_inclusive=False)
    assert validate.number(0.5, "decay", low=0.0, high=1.0, high_inclusive=False) == 0.5
