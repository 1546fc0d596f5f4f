"""The vq-ablation experiment (Huh et al.'s MNIST protocol): the quick mode runs end to end and
writes finite numbers, and every row is what its name claims (k-means codes taken from the data,
sync sending nu x the gradient to the chosen codes, affine parameters trained, alternating steps,
dead-code counters, FSQ's grid), with the published settings as defaults."""

import json
import math
import warnings

import numpy as np
import pytest
from autograd import grad
from support.quick_runs import assert_written, quick_run_fixture

import stevq
from stevq import ops, vq
from stevq.experiments.huh2023 import vq_ablation as ablation
from stevq.experiments.huh2023 import vq_training

quick_run = quick_run_fixture(ablation)  # reads the Fashion-MNIST sample shipped in the package: no skip


def _finite_numbers(tree):
    if isinstance(tree, dict):
        return all(_finite_numbers(v) for v in tree.values())
    if isinstance(tree, list):
        return all(_finite_numbers(v) for v in tree)
    return tree is None or isinstance(tree, str) or math.isfinite(tree)


def test_quick_mode_writes_finite_results(quick_run):
    config, out, metrics = quick_run
    figures = ("curves_autoencoder.png", "final_autoencoder.png", "curves_classifier.png", "final_classifier.png")
    assert_written(out, ("config.json", "metrics.json", "summary.md", "active.png", *figures))
    assert [(r["model"], r["row"]) for r in metrics["rows"]] == [(m, r) for m in config.models for r in config.rows]
    assert _finite_numbers(json.loads((out / "metrics.json").read_text())["metrics"])
    for row in metrics["rows"]:
        name = ablation.part_name(row["model"], row["row"])
        assert metrics["curves"][name]["step"] == list(range(0, config.steps + 1, config.record_every))
        active = metrics["active"][name]
        assert len(active) == config.steps and all(0 < a <= 1 for a in active)
        assert 0 < row["utilisation"] <= 1 and 1 <= row["perplexity"] <= row["codes"] - row["dead_codes"]
        if row["model"] == "autoencoder":
            assert 0 < row["score"] < 4 and 0 < row["mae"] < 2  # images and outputs in [-1, 1]
        else:
            assert 0 <= row["score"] <= 1 and row["mae"] is None
    summary = (out / "summary.md").read_text()
    assert "## autoencoder" in summary and "## classifier" in summary and "kmeans+sync+affine+alt" in summary


def test_each_part_records_its_own_settings(quick_run):
    """nu and affine_lr follow the model (their two scripts), the rest is shared."""
    config, out, metrics = quick_run
    for model, nu, affine_lr in (("autoencoder", 2.0, 2.0), ("classifier", 1.0, 10.0)):
        for row in config.rows:
            part = json.loads((out / "parts" / f"{ablation.part_name(model, row)}.json").read_text())
            settings = part["settings"]
            assert (settings["nu"], settings["affine_lr"]) == (nu, affine_lr)
            assert (settings["beta"], settings["convention"], settings["num_codes"]) == (0.95, "vqtorch", 256)
            assert part["quantizer"] == ablation.dataclasses.asdict(ablation.ROWS[row])


def test_affine_rows_train_their_scale_and_shift(quick_run):
    """The affine parameters start at zero; after training they are not, and only the affine rows have them."""
    config, out, metrics = quick_run
    for name, norms in metrics["affine_norms"].items():
        if name.endswith("affine") or name.endswith("affine+alt"):
            assert norms["scale"] > 0 and norms["shift"] > 0, name
        else:
            assert norms == {}, name


def test_a_part_alone_equals_the_same_part_in_the_grid(quick_run):
    """Parts depend only on the config and their name: no state leaks between them."""
    config, out, metrics = quick_run
    alone = ablation.Config(quick=True, models=("classifier",), rows=("kmeans+sync",))
    result = ablation.EXPERIMENT.compute_part(alone, ablation.plan(alone)[0], out, progress=False)
    name = ablation.part_name("classifier", "kmeans+sync")
    assert result["history"] == metrics["curves"][name]
    assert result["active"] == metrics["active"][name]


def test_published_settings_are_the_defaults():
    config = ablation.Config()
    assert (config.lr, config.weight_decay, config.batch_size, config.steps) == (3e-4, 0.01, 256, 1000)
    assert (config.num_codes, config.latent_dim, config.beta, config.vq_weight) == (256, 32, 0.95, 10.0)
    assert (config.test_size, config.record_every, config.train_size) == (5000, 250, 60000)
    assert config.rows[:4] == ("baseline", "kmeans", "kmeans+sync", "kmeans+sync+affine")
    assert vq_training.Schedule(1, optimizer="adamw").make_optimizer()[0] is not None
    with pytest.raises(ValueError, match="rows"):
        ablation.Config(rows=("baseline", "nope"))
    with pytest.raises(ValueError, match="batch_size"):
        ablation.Config(quick=True, batch_size=2)  # k-means needs 256 embeddings in the first batch


# --- the rows, built as the experiment builds them ---------------------------------------------------


def _network(model, row, **changes):
    config = ablation.Config(quick=True, **changes)
    network = ablation.build(config, model, row)
    params, state = vq_training.init_network(network, np.random.default_rng(0))
    x = stevq.asarray(np.random.default_rng(1).uniform(-1, 1, (8, 1, 28, 28)).astype(np.float32))
    return network, params, state, x


@pytest.mark.parametrize("model, nu", [("autoencoder", 2.0), ("classifier", 1.0)])
def test_sync_rows_send_nu_times_the_gradient_to_the_chosen_codes(model, nu):
    """d <out, G> / d codebook = nu * one_hot(indices)^T G for the sync rows, zero for plain STE."""
    for row, expected_nu in (("kmeans+sync", nu), ("baseline", 0.0)):
        network, params, state, x = _network(model, row)
        z_e = network.encoder[1](params["encoder"], x)
        rows_g = np.random.default_rng(2).standard_normal((z_e.shape[0] * 49, 32)).astype(np.float32)

        def through_output(codebook):
            out, aux = network.quantizer.apply(dict(params["quantizer"], codebook=codebook), state, z_e)
            return ops.sum(ops.multiply(vq.layer.to_rows(out, 1)[0], stevq.asarray(rows_g)))

        with warnings.catch_warnings():  # plain STE: the output does not depend on the codebook
            warnings.simplefilter("ignore", UserWarning)
            got = stevq.to_numpy(grad(through_output)(params["quantizer"]["codebook"]))
        _, aux = network.quantizer.apply(params["quantizer"], state, z_e)
        one_hot = np.eye(256, dtype=np.float32)[stevq.to_numpy(aux["indices"])]
        np.testing.assert_allclose(got, expected_nu * one_hot.T @ rows_g, rtol=1e-4, atol=1e-4)


def test_kmeans_rows_take_their_codes_from_the_first_batch():
    """With no Lloyd steps, k-means++ picks every code among the batch's embeddings; the baseline
    keeps its N(0, 1) draws."""
    network, params, state, x = _network("classifier", "kmeans", kmeans_steps=0)
    embed = lambda: network.encoder[1](params["encoder"], x)
    codebook = stevq.to_numpy(
        network.quantizer.data_init(params["quantizer"], state, embed, np.random.default_rng(3))[0]["codebook"]
    )
    rows = stevq.to_numpy(vq.layer.to_rows(embed(), 1)[0])
    distances = ((codebook[:, None, :] - rows[None, :, :]) ** 2).sum(-1).min(axis=1)
    assert codebook.shape == (256, 32) and np.all(distances == 0)
    baseline, params, state, x = _network("classifier", "baseline")
    assert (
        baseline.quantizer.data_init(params["quantizer"], state, embed, np.random.default_rng(3))[0]
        is params["quantizer"]
    )


def test_alternating_dead_code_and_fsq_rows_are_what_they_say():
    for row in ("alt", "kmeans+sync+affine+alt", "baseline"):
        network, params, state, x = _network("autoencoder", row)
        embed = lambda: network.encoder[1](params["encoder"], x)
        new_params, _, indices = network.quantizer.before_step(params["quantizer"], state, embed)
        if row == "baseline":
            assert indices is None and new_params is params["quantizer"]
        else:  # the codebook is refined for the current assignments before the step
            assert indices is not None
            assert np.any(stevq.to_numpy(new_params["codebook"]) != stevq.to_numpy(params["quantizer"]["codebook"]))
    _, _, state, _ = _network("autoencoder", "dead-code")
    assert state["steps_unused"].shape == (256,)
    network, params, state, x = _network("autoencoder", "fsq")
    assert (network.quantizer.num_codes, network.quantizer.latent_dim) == (240, 3)  # levels (8, 6, 5)
    assert tuple(network.encoder[1](params["encoder"], x).shape) == (8, 3, 7, 7)


def test_the_quick_summary_says_what_it_cannot_show(quick_run):
    """16 quick steps never reach the dead-code threshold, and the classifier stays near chance: the
    summary says so where its numbers are read; accuracy is a percentage there as in the figures."""
    config, out, _ = quick_run
    summary = (out / "summary.md").read_text()
    assert "## Caveats of the quick mode" in summary
    assert f"{config.steps} steps never reach the dead-code threshold of {config.dead_threshold}" in summary
    assert (
        "| row | codes | active | utilisation | perplexity | dead_codes | mean_gap | sliced_wasserstein | accuracy_percent |"
        in summary
    )
