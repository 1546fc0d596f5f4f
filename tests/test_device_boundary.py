"""The device boundary, swept: under the CuPy test double, a host (NumPy) array swapped into any array
argument of a public function of ``ops``, ``ste``, ``vq``, ``fsq`` and ``metrics`` is a TypeError that
names the argument; none is computed on the host behind the caller's back (issue 22). Layers and
optimizers: tests/test_cupy_double.py."""

import re

import numpy as np
import pytest
from conftest import CUPY_IS_DOUBLE

import stevq
from stevq import fsq, metrics, ops, ste, vq

pytestmark = pytest.mark.skipif(not CUPY_IS_DOUBLE, reason="host/device rules of the CuPy test double")
MODULES = {"vq": vq, "fsq": fsq, "metrics": metrics, "ste": ste, "ops": ops}


def dev(a):
    return stevq.asarray(a)


rng = np.random.default_rng(0)
Z = lambda: dev(rng.uniform(0.5, 2.0, (6, 3)).astype(np.float32))  # positive: log and sqrt stay finite
CB = lambda: dev(rng.standard_normal((4, 3)).astype(np.float32))
IDX = lambda: dev(np.array([0, 1, 2, 3, 0, 1]))
ARGS = {
    "vq.nearest_code": lambda: dict(z=Z(), codebook=CB()),
    "vq.squared_distances": lambda: dict(z=Z(), codebook=CB()),
    "vq.quantize": lambda: dict(z_e=Z(), codebook=CB()),
    "vq.lookup": lambda: dict(codebook=CB(), indices=IDX()),
    "vq.straight_through": lambda: dict(z_e=Z(), z_q=Z()),
    "vq.codebook_loss": lambda: dict(z_e=Z(), z_q=Z()),
    "vq.commitment_loss": lambda: dict(z_e=Z(), z_q=Z()),
    "vq.vq_loss": lambda: dict(z_e=Z(), z_q=Z()),
    "vq.codebook_grad": lambda: dict(z_e=Z(), indices=IDX(), num_codes=4, codebook=CB()),
    "vq.sync_straight_through": lambda: dict(z_e=Z(), z_q=Z(), nu=1.0),
    "vq.rotation_trick": lambda: dict(z_e=Z(), z_q=Z()),
    "vq.affine_codebook": lambda: dict(
        codebook=CB(), scale=dev(np.zeros(3, np.float32)), shift=dev(np.zeros(3, np.float32))
    ),
    "vq.ema_init": lambda: dict(codebook=CB()),
    "vq.track_usage": lambda: dict(steps_unused=dev(np.zeros(4, np.int64)), indices=IDX()),
    "vq.kmeans_plus_plus": lambda: dict(z=Z(), num_codes=3, rng=np.random.default_rng(0)),
    "vq.kmeans_farthest": lambda: dict(z=Z(), num_codes=3, rng=np.random.default_rng(0)),
    "fsq.quantize": lambda: dict(z=Z(), levels=(3, 3, 3)),
    "fsq.bound": lambda: dict(z=Z(), levels=(3, 3, 3)),
    "fsq.codes_to_indices": lambda: dict(codes=dev(np.zeros((6, 3), np.float32)), levels=(3, 3, 3)),
    "fsq.indices_to_codes": lambda: dict(indices=IDX(), levels=(3, 3, 3)),
    "metrics.utilisation": lambda: dict(index_batches=[IDX()], num_codes=4),
    "metrics.perplexity": lambda: dict(index_batches=[IDX()], num_codes=4),
    "metrics.dead_codes": lambda: dict(index_batches=[IDX()], num_codes=4),
    "metrics.code_counts": lambda: dict(index_batches=[IDX()], num_codes=4),
    "metrics.quantization_error": lambda: dict(z_e=Z(), z_q=Z()),
    "metrics.distribution_gap": lambda: dict(z=Z(), codebook=CB()),
    "metrics.sliced_wasserstein": lambda: dict(a=Z(), b=CB()),
    "metrics.gradient_coverage": lambda: dict(codebook_gradient=CB()),
    "ste.binary_step": lambda: dict(x=Z()),
    "ste.quantized_relu": lambda: dict(x=Z()),
    "ste.round_ste": lambda: dict(x=Z()),
    "ste.surrogate_derivative": lambda: dict(x=Z(), backward="relu"),
    "ops.exp": lambda: dict(x=Z()),
    "ops.log": lambda: dict(x=Z()),
    "ops.relu": lambda: dict(x=Z()),
    "ops.sum": lambda: dict(x=Z()),
    "ops.mean": lambda: dict(x=Z()),
    "ops.reshape": lambda: dict(x=Z(), shape=(18,)),
    "ops.tanh": lambda: dict(x=Z()),
    "ops.gelu": lambda: dict(x=Z()),
    "ops.square": lambda: dict(x=Z()),
    "ops.cross_entropy": lambda: dict(logits=Z(), labels=dev(np.array([0, 1, 2, 0, 1, 2]))),
    "ops.log_softmax": lambda: dict(x=Z()),
    "ops.where": lambda: dict(condition=dev(np.ones((6, 3), bool)), x=Z(), y=Z()),
    "ops.clip": lambda: dict(x=Z(), low=0.0, high=1.0),
    "ops.concat": lambda: dict(arrays=[Z(), Z()]),
    "ops.stack": lambda: dict(arrays=[Z(), Z()]),
    "ops.mean_absolute_error": lambda: dict(prediction=Z(), target=Z()),
}


def _swaps():
    """(function, argument) for every array argument of every catalogued function."""
    with stevq.use("cupy"):
        return [
            (name, argument)
            for name, make in ARGS.items()
            for argument, value in make().items()
            if isinstance(value, list) or type(value).__module__.startswith("cupy")
        ]


@pytest.mark.parametrize("name, argument", _swaps(), ids=[f"{n}:{a}" for n, a in _swaps()])
def test_a_host_array_in_any_argument_is_named(name, argument):
    module, function = name.split(".")
    function = getattr(MODULES[module], function)
    with stevq.use("cupy"):
        arguments = ARGS[name]()
        function(**arguments)  # the catalogued call works with device arrays
        value = arguments[argument]
        arguments[argument] = [stevq.to_numpy(v) for v in value] if isinstance(value, list) else stevq.to_numpy(value)
        with pytest.raises(
            TypeError,
            match=rf"^{re.escape(argument)}(\[\d+\])?: got a NumPy \(host\) array while the "
            rf"active backend is 'cupy'",
        ):
            function(**arguments)
