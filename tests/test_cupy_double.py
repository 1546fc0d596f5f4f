"""The CuPy rules stevq relies on, and stevq keeping them.

The first tests are a contract: they describe how ``cupy`` behaves and run against whichever CuPy
the session imports (the double in tests/fake_cupy here, the real one on a GPU machine through
benchmarks/gpu_check.sh), so the double cannot drift from CuPy unnoticed. The counting tests are
about the double alone. The last tests hold stevq to those rules.
"""

import cupy
import numpy as np
import pytest
from conftest import CUPY_IS_DOUBLE

import stevq
from stevq import fsq, metrics, ops, ste, vq

double_only = pytest.mark.skipif(not CUPY_IS_DOUBLE, reason="counts transfers: the CuPy test double only")


def _device(values):
    return cupy.asarray(np.asarray(values, dtype=np.float64))


# ------------------------------------------------------------------------------ the contract


def test_a_gpu_is_visible():
    assert cupy.cuda.runtime.getDeviceCount() >= 1


def test_no_implicit_conversion_to_numpy():
    x = _device([1.0, 2.0])
    with pytest.raises(TypeError):
        np.asarray(x)
    with pytest.raises(TypeError):
        np.array(x)


def test_mixing_with_a_numpy_array_is_a_type_error():
    x, host = _device([1.0, 2.0]), np.array([3.0, 4.0])
    for operation in (lambda: x + host, lambda: host + x, lambda: x * host, lambda: x @ host):
        with pytest.raises(TypeError):
            operation()
    with pytest.raises(TypeError):
        cupy.concatenate([x, host])


def test_numpy_functions_run_on_the_device():
    """NumPy functions dispatch to CuPy's of the same name (__array_function__): the answer stays
    on the device."""
    x = _device([[1.0, 2.0], [3.0, 5.0]])
    assert isinstance(np.mean(x), cupy.ndarray)
    assert isinstance(np.exp(x), cupy.ndarray)


def test_reductions_and_scalar_indexing_give_0d_arrays():
    x = _device([[1.0, 2.0], [3.0, 5.0]])
    for value in (x.sum(), cupy.max(x), x[1, 1], cupy.argmax(x)):
        assert isinstance(value, cupy.ndarray) and value.ndim == 0


def test_explicit_copies_to_the_host():
    x = _device([[1.0, 2.0], [3.0, 5.0]])
    for host in (cupy.asnumpy(x), x.get()):
        assert type(host) is np.ndarray
        np.testing.assert_array_equal(host, [[1.0, 2.0], [3.0, 5.0]])
    assert float(x[1, 1]) == 5.0 and int(x[0, 1]) == 2 and bool(x[0, 0]) and x[1, 0].item() == 3.0


def test_an_operand_with_array_ufunc_none_gets_its_reflected_operator():
    class Other:
        __array_ufunc__ = None

        def __rmul__(self, left):
            return "reflected mul"

        def __rmatmul__(self, left):
            return "reflected matmul"

    x = _device([[1.0]])
    assert x * Other() == "reflected mul"
    assert x @ Other() == "reflected matmul"


def test_array_api_compat_runs_on_it():
    import array_api_compat.cupy as xp

    x = xp.asarray(_device([[1.0, -2.0], [3.0, 5.0]]), dtype=xp.float32)
    assert x.dtype == xp.float32
    np.testing.assert_allclose(cupy.asnumpy(xp.clip(x, -1.0, 4.0)), [[1.0, -1.0], [3.0, 4.0]])
    np.testing.assert_allclose(cupy.asnumpy(xp.linalg.vector_norm(x, axis=1)), [5.0**0.5, 34.0**0.5], rtol=1e-6)


# ------------------------------------------------------------------------------ the double's counting


@double_only
def test_every_device_to_host_read_is_counted():
    x = _device([[1.0, 2.0], [3.0, 5.0]])
    cupy.reset_transfers()
    y = cupy.exp(x) * 2.0 + x @ x - x.sum(axis=0)  # device work only
    assert sum(cupy.transfers.values()) == 0
    float(y[0, 0]), int(x[0, 1]), bool(x[0, 0]), x.item(0), x.get(), cupy.asnumpy(x), x[x > 2.0]
    assert cupy.transfers == {"float": 1, "int": 1, "bool": 1, "item": 1, "get": 2, "boolean_index": 1}


@double_only
def test_refused_implicit_conversions_are_counted():
    cupy.reset_transfers()
    with pytest.raises(TypeError):
        np.asarray(_device([1.0]))
    assert cupy.transfers["implicit"] == 1


# ------------------------------------------------------------------------------ stevq under these rules


@pytest.fixture
def on_cupy():
    with stevq.use("cupy"):
        yield


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda h, d: ste.binary_step(h), "x"),
        (lambda h, d: vq.nearest_code(h, d), "z"),
        (lambda h, d: vq.nearest_code(d, h), "codebook"),
        (lambda h, d: fsq.quantize(h, (3, 3)), "z"),
        (lambda h, d: metrics.distribution_gap(h, d), "z"),
        (lambda h, d: ops.cross_entropy(h, stevq.asarray(np.array([0, 1, 0, 1]))), "logits"),
    ],
    ids=[
        "ste.binary_step",
        "vq.nearest_code z",
        "vq.nearest_code codebook",
        "fsq.quantize",
        "metrics.distribution_gap",
        "ops.cross_entropy",
    ],
)
def test_a_host_array_under_cupy_is_a_clear_error(on_cupy, call, argument):
    host = np.random.default_rng(0).standard_normal((4, 2))
    device = stevq.asarray(host)
    with pytest.raises(
        TypeError,
        match=rf"^{argument}: got a NumPy \(host\) array while the active backend "
        rf"is 'cupy'.*stevq\.asarray\({argument}\)",
    ):
        call(host, device)


def test_raw_device_array_times_a_traced_array(on_cupy):
    """``raw @ box`` and ``raw * box`` reach the box's reflected operator under grad."""
    a = stevq.asarray(np.array([[1.0, 2.0], [3.0, 4.0]]))
    x0 = np.array([[0.5], [-1.0]])
    gradient = stevq.grad(lambda x: ops.sum(a @ (a * x)))(stevq.asarray(x0))
    # d/dx sum(A (A*x)) = sum_i A_ik A_kj -> column sums of A, times A (elementwise, x broadcast)
    expected = (np.ones(2) @ a.get())[:, None] * a.get()
    np.testing.assert_allclose(cupy.asnumpy(gradient), expected.sum(axis=1, keepdims=True))


def test_float32_is_the_default_on_cupy(on_cupy):
    from stevq import nn
    from stevq.vq import VectorQuantizer

    rng = np.random.default_rng(0)
    _, dense = nn.Dense(3)[0](rng, (5, 4))
    _, layer = VectorQuantizer(8)[0](rng, (5, 4))
    counts = metrics.code_counts([stevq.asarray(np.array([0, 1, 1]))], 4)
    made = (dense["W"], layer["codebook"], counts, ops.one_hot(stevq.asarray(np.array([1])), 3))
    assert [m.dtype for m in made] == [cupy.dtype("float32")] * 4
    with stevq.use("cupy", dtype="float64"):
        assert nn.Dense(3)[0](rng, (5, 4))[1]["W"].dtype == cupy.float64
    with stevq.use("numpy"):
        assert nn.Dense(3)[0](rng, (5, 4))[1]["W"].dtype == np.float64


@double_only
def test_lecture_8_runs_on_the_cupy_double(tmp_path, monkeypatch):
    """Lecture 8 in quick mode with the double importable as cupy: its CuPy run takes place, and
    the kernel's double counts no refused implicit conversion."""
    import importlib.util
    import json
    from pathlib import Path

    import nbformat
    from conftest import cupy_env

    lectures = Path(__file__).resolve().parent.parent / "lectures"
    spec = importlib.util.spec_from_file_location("lectures_build", lectures / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    notebook = nbformat.read(lectures / "08_backends_and_gpu.ipynb", as_version=4)
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            "import cupy, json\nprint('CUPY-DOUBLE', json.dumps({'available': available, **cupy.transfers}))"
        )
    )
    copy = tmp_path / "08_backends_and_gpu.ipynb"
    nbformat.write(notebook, copy)
    monkeypatch.setenv("PYTHONPATH", cupy_env()["PYTHONPATH"])
    executed = build.execute(copy, quick=True, timeout=300)
    text = "".join(out.get("text", "") for out in executed.cells[-1].outputs)
    report = json.loads(text.split("CUPY-DOUBLE", 1)[1])
    assert "cupy" in report["available"]
    assert report.get("implicit", 0) == 0, report


def test_raw_device_array_to_the_power_of_a_traced_array(on_cupy):
    """``raw ** box`` and ``raw % box`` reach the box's reflected operator under grad (NumPy's
    convention, which CuPy follows); the gradient is autograd.numpy's."""
    import autograd.numpy as anp
    from autograd import grad

    raw0, x0 = np.array([1.3, 2.0, 0.7]), np.array([0.5, 1.5, 2.0])
    raw = stevq.asarray(raw0)
    got = stevq.grad(lambda x: ops.sum(raw**x) + ops.sum(raw % x) + ops.sum(+x))(stevq.asarray(x0))
    want = grad(lambda x: anp.sum(raw0**x) + anp.sum(raw0 % x) + anp.sum(x))(x0)
    np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=1e-12)


def _swaps():
    from stevq import nn, optim

    h2 = np.ones((4, 3))
    stats = lambda: vq.init_running_affine(3)
    host_stats = lambda: {k: (stevq.to_numpy(v) if k != "updates" else v) for k, v in vq.init_running_affine(3).items()}
    layers = nn.serial(nn.Dense(2))

    def params():
        return layers[0](np.random.default_rng(0), (3,))[1]

    adam, sgd = optim.adam(1e-3), optim.sgd(1e-3, momentum=0.9)
    device = lambda: stevq.asarray(h2)
    return [
        ("ste.straight_through forward_value", lambda: ste.straight_through(h2, device()), "forward_value"),
        ("ste.straight_through surrogate", lambda: ste.straight_through(device(), h2), "surrogate"),
        ("ops.one_hot", lambda: ops.one_hot(np.array([0, 1]), 3), "indices"),
        ("ops.add", lambda: ops.add(device(), h2), "y"),
        ("ops.matmul", lambda: ops.matmul(h2, stevq.asarray(np.ones((3, 2)))), "x"),
        ("ops.take_rows", lambda: ops.take_rows(h2, stevq.asarray(np.array([0]))), "table"),
        ("vq.update_running_affine z_e", lambda: vq.update_running_affine(stats(), h2, device()), "z_e"),
        (
            "vq.update_running_affine stats",
            lambda: vq.update_running_affine(host_stats(), device(), device()),
            "stats['z_mean']",
        ),
        (
            "nn.serial params",
            lambda: layers[1]([{k: stevq.to_numpy(v) for k, v in params()[0].items()}], device()),
            "params[0]['W']",
        ),
        ("optim.adam grads", lambda: adam[1](0, {"W": h2}, adam[0]({"W": device()})), "grads['W']"),
        ("optim.sgd grads", lambda: sgd[1](0, {"W": h2}, sgd[0]({"W": device()})), "grads['W']"),
        ("optim.sgd params", lambda: sgd[1](0, {"W": device()}, (({"W": h2}), {"W": device()})), "params['W']"),
    ]


@pytest.mark.parametrize("index", range(12), ids=[name for name, _, _ in _swaps()])
def test_a_host_array_swapped_into_an_argument_is_named(on_cupy, index):
    """Issue 22's holes: each was silent (a host result) or CuPy's generic "Unsupported type"."""
    import re

    name, call, argument = _swaps()[index]
    with pytest.raises(
        TypeError,
        match=rf"^{re.escape(argument)}: got a NumPy \(host\) array while the active "
        rf"backend is 'cupy'",
    ):
        call()


def test_training_data_already_on_the_device_stays_there(on_cupy):
    from stevq.experiments import training

    x = stevq.asarray(np.ones((8, 3)), "float32")
    data = training.Data(x, stevq.asarray(np.arange(8)))
    assert isinstance(data.x, cupy.ndarray) and data.x.dtype == cupy.float32 and data.y.dtype == cupy.int64
