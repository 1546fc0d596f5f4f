"""The backend switch: use() as a call and as a context manager, STEVQ_BACKEND, clear errors, host
round trips, and autograd on a non-NumPy array type (the DeviceBox and DeviceVSpace)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from autograd import grad, value_and_grad

import stevq
from stevq import backend as backend_module
from stevq import ops

STRICT = "array_api_strict"


def strict_array_type():
    import array_api_strict

    return type(array_api_strict.asarray(0.0))


def test_use_as_a_call_persists_until_the_next_call():
    before = backend_module.name()
    try:
        stevq.use(STRICT)
        assert backend_module.name() == STRICT
        assert isinstance(stevq.asarray([1.0]), strict_array_type())
    finally:
        stevq.use(before)
    assert backend_module.name() == before


def test_use_as_a_context_manager_restores_the_previous_backend():
    before = backend_module.name()
    with stevq.use(STRICT):
        assert backend_module.name() == STRICT
        with stevq.use("numpy"):
            assert backend_module.name() == "numpy"
            assert isinstance(stevq.asarray([1.0]), np.ndarray)
        assert backend_module.name() == STRICT
    assert backend_module.name() == before


def test_context_manager_restores_after_an_exception():
    before = backend_module.name()
    with pytest.raises(KeyError):
        with stevq.use(STRICT):
            raise KeyError("inside")
    assert backend_module.name() == before


def test_unknown_backend_name_is_a_value_error_naming_it():
    before = backend_module.name()
    with pytest.raises(ValueError, match="'tensorflow'.*numpy"):
        stevq.use("tensorflow")
    assert backend_module.name() == before  # a failed switch changes nothing


def test_backend_name_must_be_a_string():
    with pytest.raises(TypeError, match="backend"):
        stevq.use(None)


def test_cupy_without_cupy_says_what_to_install(monkeypatch):
    """On a machine without CuPy the error names the package to install, and there is no
    fallback to NumPy (the active backend is unchanged)."""
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now fails as if not installed
    before = backend_module.name()
    with pytest.raises((ImportError, RuntimeError), match=r"(?i)pip install.*gpu|cupy"):
        stevq.use("cupy")
    with pytest.raises((ImportError, RuntimeError)) as raised:
        with stevq.use("cupy"):
            pass
    assert "pip install" in str(raised.value)
    assert backend_module.name() == before


def _run(code, **env):
    environment = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120)


def test_environment_variable_chooses_the_backend():
    code = (
        "import stevq, numpy as np; x = stevq.asarray(np.ones(2)); "
        "print(stevq.backend.name(), type(x).__module__.split('.')[0])"
    )
    result = _run(code, STEVQ_BACKEND=STRICT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [STRICT, "array_api_strict"]
    bad = _run(code, STEVQ_BACKEND="no-such-backend")
    assert bad.returncode != 0 and "ValueError" in bad.stderr and "'no-such-backend'" in bad.stderr


@pytest.mark.parametrize(
    "host",
    [np.arange(6.0).reshape(2, 3), np.arange(4, dtype=np.int64), np.float32([1.5, -2.25]), np.array(3.5)],
    ids=["float64", "int64", "float32", "0-d"],
)
def test_asarray_to_numpy_round_trip(backend, host):
    x = stevq.asarray(host)
    assert backend_module.is_array(x)
    assert backend_module.namespace_of(x) is backend_module.xp()
    back = stevq.to_numpy(x)
    assert isinstance(back, np.ndarray) and back.dtype == host.dtype and back.shape == host.shape
    np.testing.assert_array_equal(back, host)


def test_asarray_casts_and_accepts_lists_and_other_backends(backend):
    x = stevq.asarray([[1, 2], [3, 4]], "float32")
    assert x.dtype == backend_module.resolve_dtype("float32")
    np.testing.assert_array_equal(stevq.to_numpy(x), [[1, 2], [3, 4]])
    with stevq.use("numpy" if backend == STRICT else STRICT):
        elsewhere = stevq.asarray(np.array([1.0, 2.0]))
    moved = stevq.asarray(elsewhere)
    assert backend_module.namespace_of(moved) is backend_module.xp()
    np.testing.assert_array_equal(stevq.to_numpy(moved), [1.0, 2.0])


def test_resolve_dtype_rejects_unknown_names():
    with pytest.raises(ValueError, match="dtype"):
        backend_module.resolve_dtype("float16")


def test_grad_of_a_0d_strict_result_returns_strict_arrays():
    with stevq.use(STRICT):
        host = np.array([[0.5, -1.0], [2.0, 0.25]])
        x = stevq.asarray(host)
        loss = lambda x: ops.sum(ops.multiply(ops.tanh(x), x))
        value, gradient = value_and_grad(loss)(x)
        assert isinstance(value, strict_array_type()) and value.ndim == 0
        assert isinstance(gradient, strict_array_type()) and gradient.shape == x.shape
        expected = np.tanh(host) + host * (1 - np.tanh(host) ** 2)  # d/dx x tanh x
        np.testing.assert_allclose(stevq.to_numpy(gradient), expected, rtol=1e-14)
        assert abs(float(stevq.to_numpy(value)) - np.sum(host * np.tanh(host))) < 1e-14


def test_device_box_operators_match_numpy():
    """Python operators on traced strict arrays go through stevq.ops and give NumPy's gradients.
    (A raw strict array on the left of a box is refused by array_api_strict itself, see
    autograd-engine-notes.md, so ``y @ w`` is only written where y is the traced value.)"""
    r = np.random.default_rng(0)
    x_host, w_host = r.uniform(0.5, 1.5, (3, 4)), r.standard_normal((4, 2))

    def loss(x, w):
        y = (2.0 * x - 1.0) / (x + 3.0) ** 2 - (-x) * abs(x - 1.0)
        z = y @ w
        return ops.sum((1.0 - z) * z.T.T / 2.0 + 1.0 / (z * z + 1.0)) + ops.sum(y[1:, ...][0, 1:3])

    gradients = {}
    for name in ("numpy", STRICT):
        with stevq.use(name):
            x, w = stevq.asarray(x_host), stevq.asarray(w_host)
            gradients[name] = stevq.to_numpy(grad(loss)(x, w))
    np.testing.assert_allclose(gradients[STRICT], gradients["numpy"], rtol=0, atol=1e-10)
    assert np.all(gradients["numpy"] != 0.0)


def test_device_box_comparisons_and_conversions():
    with stevq.use(STRICT):
        seen = {}

        def loss(x):
            seen["mask"], seen["len"], seen["shape"] = x > 0.0, len(x), x.shape
            seen["float"] = float(ops.sum(x))
            return ops.sum(ops.where(x > 0.0, x, 0.0))

        x = stevq.asarray(np.array([-1.0, 2.0, 3.0]))
        gradient = grad(loss)(x)
        assert isinstance(seen["mask"], strict_array_type())  # a plain boolean array, not a box
        assert seen["len"] == 3 and tuple(seen["shape"]) == (3,) and seen["float"] == 4.0
        np.testing.assert_array_equal(stevq.to_numpy(gradient), [0.0, 1.0, 1.0])


def test_device_vspace():
    from autograd.extend import vspace

    with stevq.use(STRICT):
        x = stevq.asarray(np.arange(6.0).reshape(2, 3), "float32")
        space = vspace(x)
        assert space.size == 6 and space.shape == (2, 3) and space.dtype == x.dtype
        assert isinstance(space.zeros(), strict_array_type())
        np.testing.assert_array_equal(stevq.to_numpy(space.zeros()), np.zeros((2, 3), np.float32))
        np.testing.assert_array_equal(stevq.to_numpy(space.ones()), np.ones((2, 3), np.float32))
        assert float(space.inner_prod(x, x)) == float(np.sum(np.arange(6.0) ** 2))
        basis = [stevq.to_numpy(b) for b in space.standard_basis()]
        np.testing.assert_array_equal(np.stack(basis).reshape(6, 6), np.eye(6))


def test_namespace_of_skips_python_scalars(backend):
    x = stevq.asarray(np.ones(2))
    assert backend_module.namespace_of(2.0, x) is backend_module.xp()
    assert backend_module.namespace_of(2.0) is backend_module.xp()
    assert not backend_module.is_array(2.0) and not backend_module.is_array([1.0])
