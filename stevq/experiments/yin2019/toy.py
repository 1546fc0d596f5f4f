"""Yin et al. (ICLR 2019) on their toy problem: coarse gradient descent with three STEs.

The two-layer network y = v^T sigma(Z w) with a binary activation learns a teacher (v*, w*) from
Gaussian inputs (``stevq.theory.yin2019``). With expected gradients, the experiment shows

1. loss curves of the identity, ReLU and clipped-ReLU STEs from the same random initialisations,
   and counts: runs in which f decreased monotonically, runs that approach a spurious minimum, and
   among those the ones that never settle;
2. runs started next to a spurious minimiser (theta0 = pi - start_gap, v0 its v): the ReLU and
   clipped-ReLU STEs converge to it monotonically, the identity STE does not;
3. the ratio ||E g||^2 / (||df/dv||^2 + <E g, df/dw>) on a path into the spurious minimum: it
   grows without bound for the identity STE, whose expected coarse gradient does not vanish there;
4. the paper's Figure 1: the empirical loss on N samples after one coarse-gradient step, against the
   step size, for several N (the step is a descent direction of the population loss, and of the
   empirical loss only once N is large).

Definitions used in the counts (all on the population loss f): f "increased" at a step when it rose
by more than ``yin2019.F_INCREASE_RTOL`` times f(v, 0) (rounding noise is ~1e-16); a run
"approaches the spurious minimum" when it spends at least ``dwell`` steps with pi - theta < ``near``
(runs that only pass through that region do so in a few steps); it "never settles" when f still
increases at least ``unsettled_rises`` times in the last ``tail`` steps; it "converged" to the
spurious minimum when pi - theta < 1e-6 and |f - f_spurious| < 1e-9 f(v, 0) at the end.

Teacher: v* = a standard normal vector + ``teacher_shift`` * 1, w* a random unit vector (from
``seed``). The shift puts (1^T v*)^2 at a sizeable fraction of (m+1)/2 ||v*||^2 (0.39 for seed 0),
below 1 so that spurious minima exist, and far from 0 so that the identity STE's expected coarse
gradient at them, 2 (m-1)(1^T v*)^2 / (sqrt(2 pi)(m+1)^2), is large enough to matter within the run.

Initialisation matters for "monotone": with w0 ~ N(0, I_n), ||w0|| is about sqrt(n). Early on the
ReLU and clipped-ReLU coarse gradients shrink ||w||; when w0 is small (e.g. init_w_scale = 1/sqrt(n),
unit-norm starts) ||w|| collapses to 1e-3..1e-5 within ~100 steps, the angle then moves by about
lr ||g|| / ||w|| per step, and f rises a few times (seed 0: 7 of 20 clipped-ReLU runs monotone, at
lr 0.05 and at lr 0.01 alike). The descent theorem's small step has to be small relative to ||w||.
"""

import dataclasses
import math

import numpy as np

from stevq import runio, ste, validate
from stevq.backend import asarray, to_numpy
from stevq.experiments import settings
from stevq.experiments.protocol import Experiment, config_part
from stevq.experiments.settings import BaseConfig, setting
from stevq.experiments.yin2019 import checks
from stevq.experiments.yin2019.descent import (
    random_start_counts,
    random_starts,
    spurious_start,
    spurious_start_summary,
    stop_if_diverged,
)
from stevq.experiments.yin2019.plots import figures
from stevq.experiments.yin2019.problem import (
    TEACHER_SHIFT,
    random_start_points,
    spurious_point,
    teacher,
)
from stevq.theory import yin2019

NAME = "yin2019-toy"


@dataclasses.dataclass(frozen=True)
class Config(BaseConfig):
    """Settings; ``None`` fields take the quick/full default (quick: fewer, shorter runs, smaller samples)."""

    m: int = setting(10, "number of filters (teacher and student), m >= 2")
    n: int = 20
    lr: float = setting(0.05, "step size of coarse gradient descent")
    steps: int | None = None
    runs: int | None = setting(None, "random initialisations")
    teacher_shift: float = setting(TEACHER_SHIFT, "v* = N(0, I_m) + teacher_shift (must leave spurious minima)")
    init_w_scale: float = setting(1.0, "w0 ~ N(0, init_w_scale^2 I_n), v0 ~ N(0, I_m)")
    start_gap: float = setting(0.05, "runs next to a spurious minimum start at theta0 = pi - start_gap")
    near: float = setting(0.05, 'a run "approaches" the spurious minimum: pi - theta < near for dwell steps')
    dwell: int | None = setting(None, "steps with pi - theta < near that make an approach")
    tail: int | None = setting(None, 'a run "never settles": f rises unsettled_rises times in the last tail steps')
    unsettled_rises: int = setting(10, "rises of f in the last tail steps that mean a run never settles")
    sample_sizes: tuple | None = setting(None, "Figure 1: sample sizes N")
    step_sizes: int | None = setting(None, "points in the Figure-1 step-size grid")
    plot_every: int = setting(10, "stored curves keep every plot_every-th step")
    mc_samples: int | None = setting(
        None, "Monte Carlo inputs for the engine's coarse gradient at the spurious minimum"
    )
    correlation_points: int = setting(2000, "random (v, w) at which <E g, df/dw> is measured")

    def __post_init__(self):
        quick = {
            "steps": 1000,
            "runs": 8,
            "dwell": 25,
            "tail": 250,
            "sample_sizes": (10, 100, 1000),
            "step_sizes": 41,
            "mc_samples": 20000,
        }
        full = {
            "steps": 4000,
            "runs": 20,
            "dwell": 100,
            "tail": 1000,
            "sample_sizes": (10, 100, 1000, 100000),
            "step_sizes": 81,
            "mc_samples": 200000,
        }
        settings.fill_mode_defaults(self, quick, full, ("sample_sizes",))
        for field, low in (
            ("m", 2),
            ("n", 2),
            ("steps", 1),
            ("runs", 1),
            ("dwell", 1),
            ("tail", 1),
            ("unsettled_rises", 1),
            ("step_sizes", 2),
            ("plot_every", 1),
            ("mc_samples", 100),
            ("correlation_points", 1),
        ):
            validate.number(getattr(self, field), field, low=low, integer=True)
        for field in ("lr", "start_gap", "near", "init_w_scale"):
            validate.number(getattr(self, field), field, low=0.0, low_inclusive=False)
        validate.number(self.teacher_shift, "teacher_shift")
        if not self.sample_sizes:
            raise ValueError("sample_sizes: expected at least one sample size, got none")
        for size in self.sample_sizes:
            validate.number(size, "sample_sizes", low=1, integer=True)
        validate.distinct(self.sample_sizes, "sample_sizes")
        teacher(self)  # raises when this teacher has no spurious minimum


def descent_ratio(v, w, v_star, w_star, name):
    """||E g||^2 / (||df/dv||^2 + <E g, df/dw>): the step that coarse gradient descent takes,
    squared, over the decrease of f it buys to first order (Yin et al. 2019, Section 4)."""
    dv, dw = yin2019.population_grad(v, w, v_star, w_star)
    coarse = yin2019.expected_coarse_grad(v, w, v_star, w_star, name)
    return (coarse * coarse).sum(-1) / ((dv * dv).sum(-1) + (coarse * dw).sum(-1))


def ratio_path(config, points=40):
    """The ratio on the path theta = pi - t, v = v_spurious + t u (||u|| = 1), ||w|| = 1, t -> 0."""
    v_star, w_star = teacher(config)
    v_sp, _, _ = spurious_point(v_star, w_star)
    rng = np.random.default_rng([config.seed, 3])
    u = rng.standard_normal(config.m)
    u /= np.linalg.norm(u)
    direction = rng.standard_normal(config.n)
    direction -= (direction @ w_star) * w_star
    direction /= np.linalg.norm(direction)
    t = np.logspace(-6, -0.5, points)
    v = v_sp + t[:, None] * u
    w = np.cos(math.pi - t)[:, None] * w_star + np.sin(math.pi - t)[:, None] * direction
    return {"t": t.tolist(), **{name: descent_ratio(v, w, v_star, w_star, name).tolist() for name in ste.SURROGATES}}


def one_step_losses(config, name):
    """Figure 1: from a random (v, w), the mean sample loss on N fixed samples at (v, w - eta g),
    with g the coarse gradient averaged over the same samples, for a grid of eta in
    [0, 2 ||w|| / ||E g||]; and the population loss along the expected step. Only w moves: the
    empirical loss is piecewise constant in w (it changes only when a sign of Z w flips), which is
    what the sample size smooths out."""
    v_star, w_star = teacher(config)
    rng = np.random.default_rng([config.seed, 4])
    v, w = rng.standard_normal(config.m), rng.standard_normal(config.n)
    expected = yin2019.expected_coarse_grad(v, w, v_star, w_star, name)
    etas = np.linspace(0.0, 2.0 * np.linalg.norm(w) / np.linalg.norm(expected), config.step_sizes)
    teacher_b, v_b = (asarray(v_star), asarray(w_star)), asarray(v)
    curves = {}
    for size in config.sample_sizes:
        Z = asarray(rng.standard_normal((size, config.m, config.n)))
        coarse = to_numpy(yin2019.coarse_grad(v_b, asarray(w), Z, *teacher_b, name)[1])
        curves[str(size)] = [
            float(np.mean(to_numpy(yin2019.sample_loss(v_b, asarray(w - eta * coarse), Z, *teacher_b)))) for eta in etas
        ]
    population = yin2019.population_loss(
        np.broadcast_to(v, (etas.size, config.m)), w - etas[:, None] * expected, v_star, w_star
    )
    return {"eta": etas.tolist(), "empirical": curves, "population": population.tolist()}


def _curves(trajectory, config):
    keep = slice(None, None, config.plot_every)
    return {
        "step": np.arange(config.steps + 1)[keep].tolist(),
        "f": trajectory.f[keep].tolist(),
        "theta": trajectory.theta[keep].tolist(),
        "w_norm": trajectory.w_norm[keep].tolist(),
    }


MC_BATCHES = 50  # batch means of the Monte Carlo part (its standard errors come from their spread)


def random_starts_part(config):
    with np.errstate(over="ignore", invalid="ignore"):  # a divergence is reported by stop_if_diverged
        trajectories = stop_if_diverged(random_starts(config), "random starts")
    return {
        name: {"counts": random_start_counts(t, config), "curves": _curves(t, config)}
        for name, t in trajectories.items()
    }


def spurious_start_part(config):
    with np.errstate(over="ignore", invalid="ignore"):
        trajectories = stop_if_diverged(spurious_start(config), "spurious start")
    return {
        name: {"summary": spurious_start_summary(t, config), "curves": _curves(t, config)}
        for name, t in trajectories.items()
    }


def figure1_part(config):
    return {name: one_step_losses(config, name) for name in ste.SURROGATES}


def monte_carlo_part(config):
    v_star, w_star = teacher(config)
    return checks.monte_carlo(
        v_star, w_star, config.mc_samples, config.mc_samples // MC_BATCHES, np.random.default_rng([config.seed, 5])
    )


def correlation_part(config):
    v_star, w_star = teacher(config)
    return checks.correlation(v_star, w_star, config.correlation_points, np.random.default_rng([config.seed, 6]))


def step_sizes_part(config):
    v_star, w_star = teacher(config)
    v0, w0 = random_start_points(config)  # the initialisations of random_starts
    return checks.step_sizes(v0, w0, v_star, w_star, config.lr, config.steps)


PARTS = {
    "random_starts": random_starts_part,
    "spurious_start": spurious_start_part,
    "ratio": ratio_path,
    "figure1": figure1_part,
    "monte_carlo": monte_carlo_part,
    "correlation": correlation_part,
    "step_sizes": step_sizes_part,
}


def plan(config):
    """The parts, each from the teacher and initialisations drawn from ``config.seed``. A step size
    so large that the descent diverges stops the run with ``runio.NonFiniteError``."""
    return [config_part(name, function) for name, function in PARTS.items()]


def summarize(config, results):
    """(metrics, summary, figures) from the parts' results."""
    v_star, w_star = teacher(config)
    v_sp, w_sp, f_spurious = spurious_point(v_star, w_star)
    m = config.m
    identity_norm = float(np.linalg.norm(yin2019.expected_coarse_grad(v_sp, w_sp, v_star, w_star, "identity")))
    metrics = {
        "teacher": {
            "v_star": v_star.tolist(),
            "ones_v_star": float(v_star.sum()),
            "spurious_condition_ratio": float(v_star.sum() ** 2 / ((m + 1) / 2 * v_star @ v_star)),
            "f_spurious": f_spurious,
        },
        "identity_grad_norm_at_spurious": identity_norm,
        "identity_grad_norm_formula": 2 * (m - 1) * v_star.sum() ** 2 / (math.sqrt(2 * math.pi) * (m + 1) ** 2),
        "random_starts": {name: r["counts"] for name, r in results["random_starts"].items()},
        "spurious_start": {name: r["summary"] for name, r in results["spurious_start"].items()},
        "ratio_at_smallest_t": {name: results["ratio"][name][0] for name in ste.SURROGATES},
        "monte_carlo": {
            name: {key: r[key] for key in ("samples", "max_abs_z", "closed_norm", "mc_norm", "se_norm")}
            for name, r in results["monte_carlo"].items()
        },
        "correlation": results["correlation"],
        "step_sizes": {name: results["step_sizes"][name] for name in ste.SURROGATES},
    }
    return metrics, _summary(config, metrics), figures(config, results, f_spurious)


def _summary(config, metrics):
    counts = [{"STE": name, **c} for name, c in metrics["random_starts"].items()]
    starts = [{"STE": name, **s} for name, s in metrics["spurious_start"].items()]
    teacher_info = metrics["teacher"]
    return (
        f"# Yin et al. 2019 toy problem: m = {config.m}, n = {config.n}, lr = {config.lr}, "
        f"{config.steps} steps, expected gradients\n\n"
        f"Teacher: 1^T v* = {teacher_info['ones_v_star']:.4g}, (1^T v*)^2 / ((m+1)/2 ||v*||^2) = "
        f"{teacher_info['spurious_condition_ratio']:.3g} (< 1: spurious minima exist), "
        f"f at the spurious minimum = {teacher_info['f_spurious']:.4g}.\n"
        f"||E g_identity|| at the spurious minimum: {metrics['identity_grad_norm_at_spurious']:.6g} "
        f"(paper's formula {metrics['identity_grad_norm_formula']:.6g}).\n\n"
        f"## {config.runs} random initialisations (same for every STE)\n\n"
        f"approach = at least {config.dwell} steps with pi - theta < {config.near}; never settle = "
        f"f rises >= {config.unsettled_rises} times in the last {config.tail} steps.\n\n"
        + runio.markdown_table(counts)
        + f"\n## Started next to the spurious minimum (theta0 = pi - {config.start_gap})\n\n"
        + runio.markdown_table(starts)
        + "\n## Ratio ||E g||^2 / (||df/dv||^2 + <E g, df/dw>) at distance 1e-6 from it\n\n"
        + runio.markdown_table([{"STE": k, "ratio": v} for k, v in metrics["ratio_at_smallest_t"].items()])
        + "\n## The engine's Monte Carlo coarse gradient at the spurious minimum against the closed form\n\n"
        + "max_abs_z: the largest difference of a coordinate, in standard errors.\n\n"
        + runio.markdown_table([{"STE": k, **v} for k, v in metrics["monte_carlo"].items()])
        + f"\n## <E g, df/dw> at {config.correlation_points} random (v, w)\n\n"
        + runio.markdown_table([{"STE": k, **v} for k, v in metrics["correlation"].items()])
        + "\n## Smaller steps, the same number of steps, the same starts\n\n"
        + "critical_share: runs ending with ||df/dv|| + ||E g|| below 1e-3 of its start.\n\n"
        + runio.markdown_table([{"STE": k, **row} for k, rows in metrics["step_sizes"].items() for row in rows])
    )


EXPERIMENT = Experiment(
    NAME,
    Config,
    plan,
    summarize,
    {
        "random_starts": ("runs",),
        "spurious_start": (),
        "ratio_at_smallest_t": (),
        "identity_grad_norm_at_spurious": (),
        "monte_carlo": ("samples",),
        "correlation": ("points",),
        "step_sizes": ("lr",),
    },
    doc=__doc__,
)
