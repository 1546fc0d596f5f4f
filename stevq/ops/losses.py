"""log-softmax, cross-entropy and the mean absolute error."""

from autograd.extend import defvjp

from .. import validate
from ..autodiff import getval, isbox
from ..backend import namespace_of
from ._util import primitive
from .arith import abs, multiply, negative, subtract
from .reductions import mean, sum
from .shape import one_hot


@primitive
def log_softmax(x, axis=-1):
    """log_softmax(x)_i = x_i - log sum_j exp(x_j), computed after subtracting max_j x_j.
    VJP: g - softmax(x) * sum(g)."""
    xp = namespace_of(x)
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


defvjp(
    log_softmax,
    lambda ans, x, axis=-1: lambda g: g - namespace_of(g).exp(ans) * namespace_of(g).sum(g, axis=axis, keepdims=True),
)


def cross_entropy(logits, labels):
    """Mean over the batch of -log softmax(logits)[label], for logits (N, C) and integer labels (N,).
    Shapes, dtypes and the label range are checked (no finiteness check: it is the training loop's;
    the range is not read back when ``logits`` are traced: a training step, see ``stevq.validate``)."""
    validate.array(logits, "logits", ndim=2, finite=False)
    validate.array(labels, "labels", ndim=1, dtype="int", shape=(logits.shape[0],))
    xp = namespace_of(getval(labels))
    if labels.shape[0] and not isbox(logits) and bool(xp.any((labels < 0) | (labels >= logits.shape[-1]))):
        raise ValueError(
            f"labels: expected class indices in [0, {logits.shape[-1]}), got values in "
            f"[{int(xp.min(labels))}, {int(xp.max(labels))}]"
        )
    picked = multiply(log_softmax(logits, axis=-1), one_hot(labels, logits.shape[-1], logits.dtype))
    return negative(mean(sum(picked, axis=-1)))


def mean_absolute_error(prediction, target):
    """L1 loss: mean over all elements of |prediction - target| (PyTorch's ``nn.L1Loss``);
    d/dprediction = sign(prediction - target) / N (zero where they are equal)."""
    validate.array(prediction, "prediction", finite=False)
    validate.array(target, "target", finite=False, shape=tuple(prediction.shape))
    return mean(abs(subtract(prediction, target)))
