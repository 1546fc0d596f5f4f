"""Validation once, at the public boundary: a VectorQuantizer forward reads each input's values once
(none when traced), stevq.vq's unchecked kernels give the public functions' results bit for bit, and
bad values still get a clear error where they come in."""

import numpy as np
import pytest

import stevq
from stevq import ops, validate, vq


def _layer(affine=None):
    init, apply = vq.VectorQuantizer(6, affine=affine)
    _, params = init(np.random.default_rng(0), (3,))
    if affine == "learned":
        params = dict(params, scale=stevq.asarray(np.full((1, 3), 0.1)), shift=stevq.asarray(np.full((1, 3), -0.2)))
    return apply, params


@pytest.mark.parametrize("affine, inputs", [(None, 2), ("learned", 4)])
def test_a_forward_reads_each_input_once_and_nothing_when_traced(affine, inputs, monkeypatch):
    """Counted at NumPy's isfinite, which every finiteness check calls: x and the codebook (and
    the affine scale and shift) once each; inside stevq.grad, not at all."""
    apply, params = _layer(affine)
    x = stevq.asarray(np.random.default_rng(1).standard_normal((10, 3)))
    calls = []
    isfinite = np.isfinite
    monkeypatch.setattr(np, "isfinite", lambda a, *args, **kw: calls.append(np.shape(a)) or isfinite(a, *args, **kw))
    apply(params, x)
    assert len(calls) == inputs, calls
    calls.clear()
    stevq.grad(lambda p, x: ops.sum(apply(p, x)[0]), argnum=1)(params, x)
    assert calls == []


@pytest.mark.parametrize("bad, message", [("x", r"^x: contains NaN or inf"), ("codebook", r"^codebook: contains NaN")])
def test_non_finite_input_is_named_at_the_layer(backend, bad, message):
    apply, params = _layer()
    x = np.random.default_rng(1).standard_normal((10, 3))
    codebook = stevq.to_numpy(params["codebook"]).copy()
    (x if bad == "x" else codebook)[2, 1] = np.nan
    with pytest.raises(validate.NonFiniteInputError, match=message):
        apply(dict(params, codebook=stevq.asarray(codebook)), stevq.asarray(x))


def test_the_unchecked_kernels_give_the_public_results(backend):
    rng = np.random.default_rng(5)
    z = stevq.asarray(rng.standard_normal((40, 3)))
    codebook = stevq.asarray(rng.standard_normal((6, 3)))
    indices = vq.nearest_code(z, codebook)
    same = lambda a, b: np.testing.assert_array_equal(stevq.to_numpy(a), stevq.to_numpy(b))
    same(vq.unchecked.nearest_code(z, codebook), indices)
    same(
        vq.unchecked.codebook_loss(z, ops.take_rows(codebook, indices)),
        vq.codebook_loss(z, ops.take_rows(codebook, indices)),
    )
    state = vq.ema_init(codebook)
    for got, expected in zip(
        vq.unchecked.ema_update(state, z, indices, 0.9)[0].values(), vq.ema_update(state, z, indices, 0.9)[0].values()
    ):
        same(got, expected)
    unused = stevq.asarray(np.array([0, 3, 9, 1, 12, 0]))
    same(vq.unchecked.track_usage(unused, indices), vq.track_usage(unused, indices))
    for got, expected in zip(
        vq.unchecked.replace_dead_codes(codebook, unused, z, np.random.default_rng(2), 5),
        vq.replace_dead_codes(codebook, unused, z, np.random.default_rng(2), 5),
    ):
        same(got, expected)
    params = {
        "codebook": codebook,
        "scale": stevq.asarray(np.full((1, 3), 0.3)),
        "shift": stevq.asarray(np.ones((1, 3))),
    }
    same(vq.unchecked.layer_codebook(params, None, 2.0), vq.layer_codebook(params, None, 2.0))
    stats = vq.update_running_affine(vq.init_running_affine(3), z, codebook)
    same(vq.unchecked.running_affine_codebook(codebook, stats), vq.running_affine_codebook(codebook, stats))
    got = vq.unchecked.refine_codebook(codebook, z, indices, 0.5, 2)
    expected = vq.refine_codebook(codebook, z, indices, 0.5, 2)
    same(got.params, expected.params)


def test_traced_steps_read_no_label_range_but_direct_calls_do(backend):
    """cross_entropy reads its labels' range on a direct call; in a traced step it is the loop's."""
    logits = stevq.asarray(np.zeros((2, 3)))
    labels = stevq.asarray(np.array([0, 3]))
    with pytest.raises(ValueError, match=r"^labels: expected class indices in \[0, 3\)"):
        ops.cross_entropy(logits, labels)
    stevq.grad(lambda z: ops.cross_entropy(z, labels))(logits)  # no read, no error
