"""Small networks for MNIST-scale images (1 x 28 x 28), shared by the experiments.

Each builder returns a ``stevq.nn`` layer pair ``(init, apply)``. The activation is a parameter, a
function ``activation(position)`` returning a layer, so one builder gives the float network (ReLU)
and its activation-quantized versions (``nn.QuantReLU``) with the *same* parameter structure: a
quantized network can start from the float network's weights.

``normalize=True`` puts a ``Standardize`` layer (batch normalisation without scale and shift, as in
Yin et al. 2019) before every hidden activation, so that the quantizer sees pre-activations with
mean 0 and variance 1 whatever the weights do.
"""

from stevq import nn, ops, validate

EPSILON = 1e-5


def Standardize(eps=EPSILON):
    """Batch normalisation without scale or shift, always with the statistics of the current batch:

        y = (x - mean) / sqrt(var + eps)

    mean and var over the batch axis (and over height and width for NCHW inputs). There are no
    running averages: evaluation uses large batches, whose statistics are those of the data set up
    to sampling noise. The backward pass differentiates through mean and var (autograd does it from
    the ops), as batch normalisation does (Ioffe and Szegedy 2015).
    """
    validate.number(eps, "eps", low=0.0, low_inclusive=False)

    def init(rng, input_shape):
        return tuple(input_shape), {}

    def apply(params, x):
        axes = (0, 2, 3) if x.ndim == 4 else (0,)
        centred = ops.subtract(x, ops.mean(x, axis=axes, keepdims=True))
        variance = ops.mean(ops.square(centred), axis=axes, keepdims=True)
        return ops.divide(centred, ops.sqrt(ops.add(variance, eps)))

    return init, apply


def _hidden(layer, activation, position, normalize):
    """A hidden block: the affine/conv layer, optional standardisation, the activation."""
    return [layer] + ([Standardize()] if normalize else []) + [activation(position)]


def relu_activation(position):
    """The float activation: ReLU everywhere."""
    return nn.Relu


def mlp(activation=relu_activation, hidden=(256, 256), classes=10, normalize=False, dtype="float32"):
    """Flatten -> [Dense(h) -> (Standardize) -> activation] for h in ``hidden`` -> Dense(classes)."""
    validate.number(classes, "classes", low=2, integer=True)
    layers = [nn.Flatten]
    for position, width in enumerate(hidden):
        layers += _hidden(nn.Dense(width, dtype), activation, position, normalize)
    return nn.serial(*layers, nn.Dense(classes, dtype))


def lenet5(activation=relu_activation, classes=10, normalize=False, dtype="float32"):
    """A LeNet-5-style CNN for 1 x 28 x 28 inputs (LeCun et al. 1998, without the input padding):

        conv 5x5, 6 ch -> act -> maxpool 2   (6 x 12 x 12)
        conv 5x5, 16 ch -> act -> maxpool 2  (16 x 4 x 4)
        flatten -> dense 120 -> act -> dense 84 -> act -> dense ``classes``
    with an optional ``Standardize`` before every activation.
    """
    validate.number(classes, "classes", low=2, integer=True)
    layers = (
        _hidden(nn.Conv(6, 5, dtype=dtype), activation, 0, normalize)
        + [nn.MaxPool(2)]
        + _hidden(nn.Conv(16, 5, dtype=dtype), activation, 1, normalize)
        + [nn.MaxPool(2), nn.Flatten]
        + _hidden(nn.Dense(120, dtype), activation, 2, normalize)
        + _hidden(nn.Dense(84, dtype), activation, 3, normalize)
    )
    return nn.serial(*layers, nn.Dense(classes, dtype))


NETWORKS = {"mlp": mlp, "lenet5": lenet5}
