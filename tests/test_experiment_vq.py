"""The VQ experiments: quick modes run and write their files, their numbers agree with independent
recomputations (nearest codes by brute force, utilisation and perplexity from the saved indices),
the quantizer variants train identically on both CPU backends, and NaN stops training with a
message naming the step."""

import json

import numpy as np
import pytest
from support.quick_runs import assert_written, quick_run_fixture

import stevq
from stevq import runio, vq
from stevq.experiments import runner, training
from stevq.experiments.huh2023 import vq_bottleneck, vq_models, vq_quantizers, vq_toy, vq_training


def _usage_from_indices(indices, num_codes):
    """Utilisation, dead codes and perplexity computed from scratch with NumPy."""
    counts = np.bincount(np.asarray(indices, dtype=np.int64), minlength=num_codes)
    p = counts[counts > 0] / counts.sum()
    return counts, float(np.mean(counts > 0)), int(np.sum(counts == 0)), float(np.exp(-np.sum(p * np.log(p))))


# ---------------------------------------------------------------------------------------------
# The toy experiment


toy_run = quick_run_fixture(vq_toy)


def test_toy_quick_writes_its_files(toy_run):
    config, out, metrics = toy_run
    assert_written(out, ("config.json", "metrics.json", "summary.md", "divergence.png", "toy_curves.png"))
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["config"]["quick"] is True and len(stored["metrics"]["autoencoder"]) == 6
    assert "| std | standard | 4 |" in (out / "summary.md").read_text()
    # covariate shift: with standard codes many are never updated, affine ones all move
    rows = {(r["reading"], r["parameterization"], r["affine_lr"]): r for r in metrics["covariate_shift"]}
    assert len(rows) == 2 * 3 * len(config.shift_affine_lrs)
    for reading in ("variance", "std"):
        for affine_lr in config.shift_affine_lrs:
            assert rows[reading, "standard", affine_lr]["never_updated"] > 0.3
            assert rows[reading, "affine", affine_lr]["never_updated"] == 0.0
            running = rows[reading, "running", affine_lr]
            assert running["gap_after"] < 0.5 * running["gap_before"]


def test_toy_snapshots_hold_the_nearest_codes(toy_run):
    """Indices saved in the pictures' snapshots are the brute-force nearest codes of the saved
    embeddings, and the recorded utilisation never exceeds what the codebook allows."""
    config, out, _ = toy_run
    part = json.loads((out / "parts" / "ae-ste-codes1.json").read_text())
    assert [s["step"] for s in part["snapshots"]] == list(vq_toy.snapshot_steps(config))
    for snapshot in part["snapshots"]:
        z_e, codebook = np.asarray(snapshot["z_e"]), np.asarray(snapshot["codebook"])
        assert z_e.shape == (config.eval_size, 2) and codebook.shape == (config.num_codes, 2)
        nearest = np.argmin(((z_e[:, None, :] - codebook[None, :, :]) ** 2).sum(-1), axis=1)
        np.testing.assert_array_equal(snapshot["indices"], nearest)
    history = part["history"]
    assert history["step"][0] == 0 and history["step"][-1] == config.steps
    for snapshot in part["snapshots"]:  # the pictures count the codes on the points the summary counts
        recorded = history["utilisation"][history["step"].index(snapshot["step"])]
        assert len(np.unique(snapshot["indices"])) == round(recorded * config.num_codes)
    for utilisation, dead in zip(history["utilisation"], history["dead_codes"]):
        assert 0 < utilisation <= 1 and dead == round((1 - utilisation) * config.num_codes)


def test_toy_commitment_error_is_the_snapshots_distance_to_their_codes(toy_run):
    """The recorded commitment error, recomputed from the saved embeddings and their nearest codes
    (the "ste" variant: the effective codebook is the raw one); the STE error is a finite ratio."""
    config, out, _ = toy_run
    part = json.loads((out / "parts" / "ae-ste-codes1.json").read_text())
    history = part["history"]
    for snapshot in part["snapshots"]:
        z_e, codebook = np.asarray(snapshot["z_e"]), np.asarray(snapshot["codebook"])
        by_hand = np.mean(np.sum((z_e - codebook[np.asarray(snapshot["indices"])]) ** 2, axis=1))
        recorded = history["commitment_error"][history["step"].index(snapshot["step"])]
        assert recorded == pytest.approx(by_hand, rel=1e-10)
    assert all(0 < e < 10 for e in history["ste_relative_error"]) and all(-1 <= c <= 1 for c in history["ste_cosine"])


# ---------------------------------------------------------------------------------------------
# The bottleneck experiment on real Fashion-MNIST


bottleneck_run = quick_run_fixture(vq_bottleneck)  # the Fashion-MNIST files if present, else the package's sample


def test_bottleneck_quick_on_fashion_mnist_writes_its_files(bottleneck_run):
    config, out, metrics = bottleneck_run
    assert_written(out, ("config.json", "metrics.json", "summary.md", "curves_vqvae.png", "final_vqvae.png"))
    rows = json.loads((out / "metrics.json").read_text())["metrics"]["rows"]
    assert [(r["K"], r["variant"]) for r in rows] == [(64, v) for v in config.variants]
    for row in rows:
        assert 0.0 < row["score"] < 0.2  # MSE of images in [0, 1] after training
        assert row["sliced_wasserstein"] >= 0 and row["mean_gap"] >= 0
    assert "plain STE uses" in (out / "summary.md").read_text()


def test_bottleneck_metrics_agree_with_the_saved_indices(bottleneck_run):
    config, out, metrics = bottleneck_run
    for row in metrics["rows"]:
        name = vq_bottleneck.part_name("vqvae", row["K"], row["variant"])
        with np.load(out / "parts" / f"{name}.indices.npz") as stored:
            indices = stored["indices"]
        assert indices.shape == (config.test_size * 49,)  # one code per 4 x 4 patch
        counts, utilisation, dead, perplexity = _usage_from_indices(indices, row["codes"])
        np.testing.assert_array_equal(metrics["code_histograms"][name], counts)
        assert row["utilisation"] == utilisation and row["dead_codes"] == dead
        assert row["perplexity"] == pytest.approx(perplexity, rel=1e-9)
        assert 1.0 <= row["perplexity"] <= row["codes"] - row["dead_codes"]
        curve = metrics["curves"][name]
        assert curve["step"] == list(range(0, config.steps + 1, config.record_every))
    assert {r["variant"]: r["codes"] for r in metrics["rows"]}["fsq"] == 64  # levels (4, 4, 4)


def test_bottleneck_resumes_from_finished_parts(bottleneck_run, monkeypatch):
    config, out, metrics = bottleneck_run

    def no_training(*args, **kwargs):
        raise AssertionError("a finished part was trained again")

    monkeypatch.setattr(vq_bottleneck, "train_part", no_training)
    assert runner.run(vq_bottleneck.EXPERIMENT, config, out, progress=False)["rows"] == metrics["rows"]


def test_bottleneck_config_names_bad_fields():
    with pytest.raises(ValueError, match="variants"):
        vq_bottleneck.Config(quick=True, variants=("ste", "magic"))
    with pytest.raises(ValueError, match="sizes"):
        vq_bottleneck.Config(quick=True, sizes=(100,))  # FSQ has no level set for 100 codes
    with pytest.raises(ValueError, match="curve_size"):
        vq_bottleneck.Config(quick=True, curve_size=1000)


# ---------------------------------------------------------------------------------------------
# The training loop: every variant on both CPU backends, the alternating step, the NaN guard


def _toy_network(variant, num_codes=16, dtype="float64", dim=6):
    settings = vq_quantizers.Settings(num_codes=num_codes, dead_threshold=2, dtype=dtype)
    quantizer = vq_quantizers.make_quantizer(variant, settings, 2)
    return vq_training.Network(
        vq_models.mlp_encoder(quantizer.latent_dim, 16, dtype),
        quantizer,
        vq_models.mlp_decoder(dim, 16, dtype),
        "reconstruction",
        (dim,),
    )


def _train_toy(variant, steps=4, lr=1e-2, x=None, dtype="float64"):
    network = _toy_network(variant, 64 if variant == "fsq" else 16, dtype)
    x = np.random.default_rng(7).standard_normal((96, 6)) if x is None else x
    params, state = vq_training.init_network(network, np.random.default_rng(0))
    schedule = vq_training.Schedule(steps, batch_size=32, lr=lr, record_every=2, seed=1)
    clean = training.Data(np.random.default_rng(8).standard_normal((40, 6)), dtype=dtype)
    return vq_training.train(
        network, params, state, training.Data(x, dtype=dtype), clean, schedule, variant, show_progress=False
    )


@pytest.mark.parametrize("variant", sorted(vq_quantizers.VARIANTS))
def test_every_variant_trains_the_same_on_both_backends(backend, variant):
    got = _train_toy(variant)
    with stevq.use("numpy"):
        expected = _train_toy(variant)
    for key in ("utilisation", "dead_codes", "perplexity"):
        np.testing.assert_allclose(got["history"][key], expected["history"][key], rtol=1e-9)
    np.testing.assert_allclose(got["history"]["train_loss"][1:], expected["history"]["train_loss"][1:], rtol=1e-9)
    for leaf_got, leaf_expected in zip(
        stevq.optim.tree_leaves(got["params"]), stevq.optim.tree_leaves(expected["params"])
    ):
        np.testing.assert_allclose(stevq.to_numpy(leaf_got), stevq.to_numpy(leaf_expected), rtol=1e-8, atol=1e-12)
    assert got["history"]["train_loss"][-1] < got["history"]["score"][0]  # it learns something


def test_alternating_step_moves_the_busiest_code_the_stated_fraction(backend):
    rng = np.random.default_rng(3)
    rows, codebook = rng.standard_normal((30, 3)), rng.standard_normal((5, 3))
    indices = np.argmin(((rows[:, None] - codebook[None]) ** 2).sum(-1), axis=1)
    busiest = np.bincount(indices, minlength=5).argmax()
    lr = vq_quantizers.alternating_lr(stevq.asarray(rows), stevq.asarray(indices), 5, rate=0.5)
    assert float(lr) == pytest.approx(0.5 * 30 * 3 / (2 * np.bincount(indices).max()))
    refined = vq.refine_codebook(stevq.asarray(codebook), stevq.asarray(rows), stevq.asarray(indices), lr)
    mean = rows[indices == busiest].mean(axis=0)
    expected = codebook[busiest] + 0.5 * (mean - codebook[busiest])
    np.testing.assert_allclose(stevq.to_numpy(refined.params)[busiest], expected, rtol=1e-12)


def test_nan_in_the_data_stops_training_naming_the_step():
    x = np.random.default_rng(7).standard_normal((96, 6))
    x[:, 0] = np.nan  # every training batch holds NaN; the evaluation data is clean
    with pytest.raises(runio.NonFiniteError, match=r"at step 1\b.*last good metrics: \{'step': 0"):
        _train_toy("ste", x=x)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_absurd_learning_rate_stops_training_naming_the_step():
    with pytest.raises(runio.NonFiniteError, match=r"sync produced non-finite values at step \d+.*last good"):
        _train_toy("sync", steps=30, lr=1e30, dtype="float32")
