"""The yin2019-toy experiment in quick mode: files, metrics that agree with the library, resuming."""

import json
import math

import numpy as np
import pytest

from stevq.experiments import runner
from stevq.experiments.yin2019 import problem, toy
from stevq.theory import yin2019


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("yin2019_toy")
    return out_dir, runner.run(toy.EXPERIMENT, toy.Config(quick=True), out_dir, progress=False)


def test_quick_run_writes_figures_metrics_and_summary(quick_run):
    out_dir, metrics = quick_run
    for name in ("loss_curves", "spurious_start", "ratio", "figure1"):
        assert (out_dir / f"{name}.png").stat().st_size > 10_000
    stored = json.loads((out_dir / "metrics.json").read_text())
    assert stored["config"]["quick"] is True and stored["config"]["steps"] == 1000
    assert stored["metrics"]["random_starts"] == metrics["random_starts"]
    summary = (out_dir / "summary.md").read_text()
    assert "| clipped_relu |" in summary and "spurious minimum" in summary


def test_quick_run_metrics_agree_with_the_library(quick_run):
    _, metrics = quick_run
    config = toy.Config(quick=True)
    v_star, w_star = toy.teacher(config)
    m = config.m
    paper = 2 * (m - 1) * v_star.sum() ** 2 / (math.sqrt(2 * math.pi) * (m + 1) ** 2)
    assert metrics["identity_grad_norm_at_spurious"] == pytest.approx(paper, rel=1e-12)
    assert metrics["teacher"]["spurious_condition_ratio"] < 1
    for counts in metrics["random_starts"].values():
        assert counts["runs"] == config.runs
        assert counts["converged_spurious"] + counts["converged_global"] <= counts["runs"]
    assert metrics["spurious_start"]["relu"]["converged"] and metrics["spurious_start"]["relu"]["monotone"]
    assert not metrics["spurious_start"]["identity"]["converged"]
    assert metrics["ratio_at_smallest_t"]["identity"] > 1e5 > 1e-5 > metrics["ratio_at_smallest_t"]["clipped_relu"]


def test_figure1_curves_approach_the_population_loss_as_n_grows():
    """At eta = 0 the empirical loss on N samples estimates f; its error shrinks with N."""
    config = toy.Config(sample_sizes=(100, 20000), step_sizes=11)
    data = toy.one_step_losses(config, "relu")
    population = np.asarray(data["population"])
    errors = {size: np.abs(np.asarray(losses) - population).max() for size, losses in data["empirical"].items()}
    assert errors["20000"] < 0.05 * population.max()
    assert errors["20000"] < errors["100"]
    v_star, w_star = toy.teacher(config)
    rng = np.random.default_rng([config.seed, 4])  # the start point the experiment draws
    v, w = rng.standard_normal(config.m), rng.standard_normal(config.n)
    assert population[0] == pytest.approx(float(yin2019.population_loss(v, w, v_star, w_star)), rel=1e-12)


def test_rerun_resumes_from_the_stored_parts(quick_run, monkeypatch):
    out_dir, metrics = quick_run

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished part was computed again")

    for name in ("random_starts", "spurious_start", "ratio_path", "one_step_losses"):
        monkeypatch.setattr(toy, name, must_not_run)
    again = runner.run(toy.EXPERIMENT, toy.Config(quick=True), out_dir, progress=False)
    assert again["random_starts"] == metrics["random_starts"]
    assert again["spurious_start"] == metrics["spurious_start"]


def test_every_figure_has_titles_labelled_axes_and_visible_coinciding_curves(quick_run):
    from stevq.experiments.yin2019 import plots

    out, _ = quick_run
    config = toy.Config(quick=True)
    results = {
        name: json.loads((out / "parts" / f"{name}.json").read_text())
        for name in ("random_starts", "spurious_start", "ratio", "figure1")
    }
    _, _, f_spurious = problem.spurious_point(*problem.teacher(config))
    for name, figure in plots.figures(config, results, f_spurious).items():
        axes = figure.get_axes()
        assert figure._suptitle is not None or all(axis.get_title() for axis in axes), name
        assert all(axis.get_xlabel() for axis in axes) and axes[0].get_ylabel(), name
        if name in ("ratio", "spurious_start"):  # one style per STE: no two lines drawn alike
            styles = [(line.get_linestyle(), line.get_marker()) for line in axes[-1].get_lines()]
            assert len(set(styles)) == len(styles) == 3, (name, styles)


def test_coinciding_curves_are_named_in_the_legend():
    from stevq.experiments.yin2019.plots import coincidence_notes

    base = np.array([1.0, 2.0, 4.0])
    notes = coincidence_notes({"identity": -base, "relu": base, "clipped_relu": base.copy()})
    assert notes == {"clipped_relu": " (identical to relu)"}
    notes = coincidence_notes({"relu": base, "clipped_relu": base * 1.01, "identity": base * 3})
    assert notes == {"clipped_relu": " (within 1% of relu)"}


def test_the_engines_monte_carlo_coarse_gradient_matches_the_closed_forms(quick_run):
    """At the spurious minimum: every coordinate of the engine's Monte Carlo mean within 5 standard
    errors of the closed form; the identity STE's far from 0, the others' within noise of 0."""
    _, metrics = quick_run
    mc = metrics["monte_carlo"]
    assert all(mc[name]["max_abs_z"] < 5 for name in mc)
    assert mc["identity"]["mc_norm"] > 5 * mc["identity"]["se_norm"]
    assert mc["relu"]["closed_norm"] < 1e-12 and mc["relu"]["mc_norm"] < 3 * mc["relu"]["se_norm"]


def test_correlation_and_step_sizes_count_what_they_say():
    config = toy.Config(quick=True, runs=3, steps=200)
    v_star, w_star = toy.teacher(config)
    rng = np.random.default_rng(0)
    v, w = rng.standard_normal((5, config.m)), rng.standard_normal((5, config.n))
    got = toy.checks.correlation(v_star, w_star, 5, np.random.default_rng(0))
    _, dw = yin2019.population_grad(v, w, v_star, w_star)
    for name in ("identity", "relu", "clipped_relu"):
        inner = [float(yin2019.expected_coarse_grad(v[i], w[i], v_star, w_star, name) @ dw[i]) for i in range(5)]
        assert got[name]["share_positive"] == np.mean(np.asarray(inner) >= 0)
    v0, w0 = rng.standard_normal((3, config.m)), rng.standard_normal((3, config.n))
    sweep = toy.checks.step_sizes(v0, w0, v_star, w_star, 0.05, 200)
    assert sweep["lr"] == [0.05, 0.01, 0.002]
    for row in sweep["relu"]:
        t = yin2019.coarse_gradient_descent(v0, w0, v_star, w_star, "relu", row["lr"], 200)
        assert row["monotone_share"] == np.mean(~t.f_increased.any(axis=0))
