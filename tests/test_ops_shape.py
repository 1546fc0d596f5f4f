"""Gradient tests for the shape operations of ``stevq.ops``: reshaping, transposing, broadcasting,
indexing, concatenating and stacking, row lookup, one-hot encoding and stop_gradient.

Each case is checked as in test_ops.py (``stevq.testing.check_op``): the forward value against the
same function written with ``autograd.numpy``, the gradient of sum(op(args) * R) against central
finite differences and autograd.numpy's, and on ``array_api_strict`` against NumPy's to 1e-10.
"""

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad
from support.op_cases import case, normal

import stevq
from stevq import ops
from stevq.testing import check_op

SHAPE = [
    case("reshape", lambda x: ops.reshape(x, (2, 6)), lambda x: anp.reshape(x, (2, 6)), lambda r: [normal(r, 3, 4)]),
    case(
        "reshape-flat", lambda x: ops.reshape(x, (-1,)), lambda x: anp.reshape(x, (-1,)), lambda r: [normal(r, 2, 3, 2)]
    ),
    case("transpose", ops.transpose, anp.transpose, lambda r: [normal(r, 2, 3, 4)]),
    case(
        "transpose-axes",
        lambda x: ops.transpose(x, (2, 0, 1)),
        lambda x: anp.transpose(x, (2, 0, 1)),
        lambda r: [normal(r, 2, 3, 4)],
    ),
    case(
        "transpose-negative-axes",
        lambda x: ops.transpose(x, (0, -1, 1)),
        lambda x: anp.transpose(x, (0, 2, 1)),
        lambda r: [normal(r, 2, 3, 4)],
    ),
    case("matrix_transpose", ops.matrix_transpose, lambda x: anp.swapaxes(x, -1, -2), lambda r: [normal(r, 2, 3, 4)]),
    # the oracle broadcasts by adding zeros: autograd.numpy's broadcast_to rejects new leading axes
    case(
        "broadcast_to",
        lambda x: ops.broadcast_to(x, (2, 3, 4)),
        lambda x: x + np.zeros((2, 3, 4)),
        lambda r: [normal(r, 3, 1)],
    ),
    case(
        "broadcast_to-row",
        lambda x: ops.broadcast_to(x, (3, 4)),
        lambda x: x + np.zeros((3, 4)),
        lambda r: [normal(r, 4)],
    ),
    case(
        "expand_dims-0", lambda x: ops.expand_dims(x, 0), lambda x: anp.expand_dims(x, 0), lambda r: [normal(r, 3, 4)]
    ),
    case(
        "expand_dims-last",
        lambda x: ops.expand_dims(x, -1),
        lambda x: anp.expand_dims(x, -1),
        lambda r: [normal(r, 3, 4)],
    ),
    case("getitem-int", lambda x: ops.getitem(x, 1), lambda x: x[1], lambda r: [normal(r, 3, 4)]),
    case("getitem-int-pair", lambda x: ops.getitem(x, (1, 2)), lambda x: x[1, 2], lambda r: [normal(r, 3, 4)]),
    case(
        "getitem-slices",
        lambda x: ops.getitem(x, (slice(1, None), slice(None, None, 2))),
        lambda x: x[1:, ::2],
        lambda r: [normal(r, 3, 4)],
    ),
    case(
        "getitem-reversed",
        lambda x: ops.getitem(x, (slice(None, None, -1), 1)),
        lambda x: x[::-1, 1],
        lambda r: [normal(r, 3, 4)],
    ),
    case(
        "getitem-newaxis",
        lambda x: ops.getitem(x, (Ellipsis, None, 0)),
        lambda x: x[..., None, 0],
        lambda r: [normal(r, 2, 3, 4)],
    ),
    case(
        "getitem-newaxis-middle",
        lambda x: ops.getitem(x, (0, None, slice(1, 3))),
        lambda x: x[0, None, 1:3],
        lambda r: [normal(r, 2, 3, 4)],
    ),
    case(
        "concat",
        lambda x, y, z: ops.concat([x, y, z], axis=0),
        lambda x, y, z: anp.concatenate([x, y, z], axis=0),
        lambda r: [normal(r, 1, 3), normal(r, 2, 3), normal(r, 3, 3)],
    ),
    case(
        "concat-last",
        lambda x, y: ops.concat([x, y], axis=-1),
        lambda x, y: anp.concatenate([x, y], axis=-1),
        lambda r: [normal(r, 2, 2, 3), normal(r, 2, 2, 1)],
    ),
    case(
        "stack",
        lambda x, y, z: ops.stack([x, y, z]),
        lambda x, y, z: anp.stack([x, y, z]),
        lambda r: [normal(r, 2, 3), normal(r, 2, 3), normal(r, 2, 3)],
    ),
    case(
        "stack-last",
        lambda x, y: ops.stack([x, y], axis=-1),
        lambda x, y: anp.stack([x, y], axis=-1),
        lambda r: [normal(r, 2, 3), normal(r, 2, 3)],
    ),
    case(
        "take_rows",
        ops.take_rows,
        lambda table, indices: table[indices],
        lambda r: [normal(r, 5, 3), np.array([[0, 4, 0], [2, 0, 4]])],
    ),
    case(
        "take_rows-3d-table",
        ops.take_rows,
        lambda table, indices: table[indices],
        lambda r: [normal(r, 4, 2, 3), np.array([3, 3, 1])],
    ),
]


@pytest.mark.parametrize("op, reference, make_args", SHAPE)
def test_shape_operations(backend, op, reference, make_args):
    check_op(op, reference, *make_args(np.random.default_rng(0)))


def test_same_array_used_twice_sums_gradients(backend):
    """x enters four times (two concats, a stack and a getitem): autograd must add every contribution."""
    host = normal(np.random.default_rng(2), 2, 3)
    check_op(
        lambda x: ops.multiply(ops.concat([x, x], axis=0), ops.concat([ops.getitem(ops.stack([x, x]), 1), x], axis=0)),
        lambda x: anp.concatenate([x, x], axis=0) * anp.concatenate([x, x], axis=0),
        host,
    )


def test_take_rows_gradient_is_one_hot_transpose_times_g(backend):
    """d table = one_hot(indices)^T @ g: picked rows sum their gradients, unpicked rows get 0."""
    table = stevq.asarray(normal(np.random.default_rng(3), 4, 2))
    indices = stevq.asarray(np.array([1, 1, 3]))
    g_host = np.array([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]])
    gradient = grad(lambda t: ops.sum(ops.multiply(ops.take_rows(t, indices), stevq.asarray(g_host))))(table)
    np.testing.assert_array_equal(stevq.to_numpy(gradient), [[0, 0], [11, 22], [0, 0], [100, 200]])


@pytest.mark.parametrize("dtype", [None, "float32", "float64"])
def test_one_hot_values(backend, dtype):
    indices = np.array([[2, 0], [1, 2]])
    encoded = ops.one_hot(stevq.asarray(indices), 3, None if dtype is None else stevq.backend.resolve_dtype(dtype))
    assert encoded.dtype == stevq.backend.resolve_dtype(dtype or "float64")
    np.testing.assert_array_equal(stevq.to_numpy(encoded), np.eye(3)[indices])


@pytest.mark.filterwarnings("ignore:Output seems independent of input")
def test_stop_gradient(backend):
    """d/dx sum(x * sg(x)) = sg(x) = x (only the first factor is differentiated); the value is x."""
    host = normal(np.random.default_rng(4), 3, 2)
    x = stevq.asarray(host)
    np.testing.assert_array_equal(stevq.to_numpy(ops.stop_gradient(x)), host)
    gradient = grad(lambda x: ops.sum(ops.multiply(x, ops.stop_gradient(x))))(x)
    np.testing.assert_array_equal(stevq.to_numpy(gradient), host)
    assert np.all(stevq.to_numpy(grad(lambda x: ops.sum(ops.stop_gradient(x)))(x)) == 0.0)
