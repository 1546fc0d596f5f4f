"""stevq's primitives: array operations with explicit vector-Jacobian products.

Every function here is an ``autograd.extend.primitive`` with a ``defvjp`` rule, or a short
composition of them, written against the array namespace of its inputs. Model code calls these
functions (``ops.matmul(x, W)``) instead of NumPy's, which is what lets it run on CuPy and on the
strict array-API namespace used in the tests.
"""

from .arith import (
    abs,
    add,
    ceil,
    clip,
    divide,
    exp,
    floor,
    gelu,
    heaviside,
    log,
    matmul,
    multiply,
    negative,
    power,
    relu,
    remainder,
    round,
    sigmoid,
    sqrt,
    square,
    subtract,
    tanh,
    where,
)
from .conv import (
    add_channel_bias,
    avg_pool2d,
    col2im,
    conv2d,
    conv_transpose2d,
    global_max_pool2d,
    im2col,
    max_pool2d,
    output_size,
    upsample_nearest,
)
from .losses import cross_entropy, log_softmax, mean_absolute_error
from .reductions import max, mean, min, sum
from .shape import (
    broadcast_to,
    concat,
    expand_dims,
    getitem,
    matrix_transpose,
    one_hot,
    reshape,
    stack,
    stop_gradient,
    take_rows,
    transpose,
)
