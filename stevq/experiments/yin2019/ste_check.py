"""A verdict for a straight-through surrogate on Yin et al.'s (2019) toy model, in one command:
does it behave like the identity STE (unstable near spurious minima) or like the clipped ReLU
(a descent direction that converges)?

    python -m stevq run ste-check --set ste=approx_sign

For the surrogate ``ste`` (a name of ``stevq.ste.REGISTRY``) on the toy teacher of ``yin2019-toy``
(same m, n, teacher and starts for a given seed), with its expected coarse gradient E g (the
closed form for Yin et al.'s three, quadrature for any other, ``stevq.theory.quadrature``):

1. ``map``: the cosine between E g and df/dw over the (theta, ||w||) plane (v at the spurious
   minimiser's v, w at angle theta from w*): positive is a descent direction;
2. ``spurious``: ||E g|| at the spurious minimiser (the paper: 0 for ReLU and clipped ReLU, not for
   the identity), and coarse gradient descent started next to it (theta0 = pi - start_gap): does it
   converge to it, how often does f rise;
3. ``random_starts``: coarse gradient descent from ``runs`` random starts: how many decrease f
   monotonically, how many end at a critical point (||df/dv|| + ||E g|| below 1e-3 of its start).

The verdict: **like clipped ReLU** when E g vanishes at the spurious minimiser (below 1e-6 of the
identity STE's norm there), the run next to it converges, and at least 90% of the random starts
end at a critical point; **like the identity STE** when E g does not vanish there and the run next
to it does not converge; **mixed** otherwise, with the numbers.
"""

import dataclasses
import math

import numpy as np

from stevq import ste, validate
from stevq.experiments import settings
from stevq.experiments.figures import subplots
from stevq.experiments.protocol import Experiment, config_part
from stevq.experiments.settings import BaseConfig, setting
from stevq.experiments.yin2019 import checks, descent, problem, toy
from stevq.theory import yin2019

NAME = "ste-check"
CRITICAL = 1e-3
TOY_FIELDS = ("seed", "m", "n", "lr", "steps", "runs", "teacher_shift", "start_gap")  # those yin2019-toy has too


@dataclasses.dataclass(frozen=True)
class Config(BaseConfig):
    """Settings; ``None`` fields take the quick/full default; the toy problem's are yin2019-toy's."""

    ste: str = setting("clipped_relu", "the surrogate: a name of stevq.ste.REGISTRY")
    m: int = setting(toy.Config.m, "filters (teacher and student), as yin2019-toy")
    n: int = toy.Config.n
    lr: float = setting(toy.Config.lr, "step of coarse gradient descent")
    steps: int | None = None
    runs: int | None = setting(None, "random starts")
    teacher_shift: float = setting(toy.Config.teacher_shift, "v* = N(0, I_m) + teacher_shift")
    start_gap: float = setting(
        toy.Config.start_gap, "the run next to the spurious minimum starts at theta0 = pi - start_gap"
    )
    angles: int | None = setting(None, "map: points in theta (0, pi)")
    norms: int | None = setting(None, "map: points in ||w||, log-spaced over norm_range")
    norm_range: tuple = setting((0.03, 10.0), "map: the smallest and largest ||w||")

    def __post_init__(self):
        settings.fill_mode_defaults(
            self,
            {"steps": 1000, "runs": 8, "angles": 12, "norms": 8},
            {"steps": 4000, "runs": 20, "angles": 36, "norms": 24},
            ("norm_range",),
        )
        if len(self.norm_range) != 2 or not 0 < self.norm_range[0] < self.norm_range[1]:
            raise ValueError(f"norm_range: expected two numbers 0 < low < high, got {self.norm_range}")
        validate.choice(self.ste, "ste", tuple(ste.REGISTRY))
        for field in ("m", "n", "steps", "runs", "angles", "norms"):
            validate.number(
                getattr(self, field), field, low=2 if field in ("m", "n", "angles", "norms") else 1, integer=True
            )
        for field in ("lr", "start_gap"):
            validate.number(getattr(self, field), field, low=0.0, low_inclusive=False)
        problem.teacher(self._toy())  # a teacher without spurious minima is refused here

    def _toy(self):
        """The yin2019-toy Config of the same problem and starts: its fields of the same names."""
        return toy.Config(**{name: getattr(self, name) for name in TOY_FIELDS})


def _surrogate(config):
    """The closed form's name for Yin et al.'s three, else the registered Surrogate (quadrature)."""
    return config.ste if config.ste in ste.SURROGATES else ste.REGISTRY[config.ste]


def cosine_map(config):
    v_star, w_star = problem.teacher(config._toy())
    v_sp, _, _ = problem.spurious_point(v_star, w_star)
    direction = problem.away_direction(config._toy(), w_star)
    direction /= np.linalg.norm(direction)
    thetas = np.linspace(0.0, math.pi, config.angles + 2)[1:-1]
    norms = np.logspace(math.log10(config.norm_range[0]), math.log10(config.norm_range[1]), config.norms)
    w = (np.cos(thetas)[:, None, None] * w_star + np.sin(thetas)[:, None, None] * direction) * norms[None, :, None]
    w = w.reshape(-1, config.n)
    v = np.broadcast_to(v_sp, (w.shape[0], config.m))
    _, dw = yin2019.population_grad(v, w, v_star, w_star)
    coarse = yin2019.expected_coarse_grad(v, w, v_star, w_star, _surrogate(config))
    cosine = (coarse * dw).sum(-1) / (np.linalg.norm(coarse, axis=-1) * np.linalg.norm(dw, axis=-1))
    return {
        "theta": thetas.tolist(),
        "w_norm": norms.tolist(),
        "cosine": cosine.reshape(config.angles, config.norms).tolist(),
    }


def spurious(config):
    v_star, w_star = problem.teacher(config._toy())
    v_sp, w_sp, f_spurious = problem.spurious_point(v_star, w_star)
    norm = float(np.linalg.norm(yin2019.expected_coarse_grad(v_sp, w_sp, v_star, w_star, _surrogate(config))))
    identity = float(np.linalg.norm(yin2019.expected_coarse_grad(v_sp, w_sp, v_star, w_star, "identity")))
    _, w0 = problem.spurious_start_point(config._toy())
    with np.errstate(over="ignore", invalid="ignore"):
        trajectory = yin2019.coarse_gradient_descent(
            v_sp, w0, v_star, w_star, _surrogate(config), config.lr, config.steps
        )
    summary = descent.spurious_start_summary(trajectory, config._toy())
    return {"grad_norm_at_spurious": norm, "identity_grad_norm_at_spurious": identity, **summary}


def random_starts(config):
    v_star, w_star = problem.teacher(config._toy())
    v0, w0 = problem.random_start_points(config._toy())  # the starts of yin2019-toy
    name = _surrogate(config)
    with np.errstate(over="ignore", invalid="ignore"):
        trajectory = yin2019.coarse_gradient_descent(v0, w0, v_star, w_star, name, config.lr, config.steps)
    start = checks.coarse_norm(v0, w0, v_star, w_star, name)
    final = checks.coarse_norm(trajectory.v, trajectory.w, v_star, w_star, name) / start
    return {
        "runs": config.runs,
        "monotone": int((~trajectory.f_increased.any(axis=0)).sum()),
        "critical": int((final < CRITICAL).sum()),
        "median_final_over_start": float(np.median(final)),
        "final_f": trajectory.f[-1].tolist(),
    }


PARTS = {"map": cosine_map, "spurious": spurious, "random_starts": random_starts}


def plan(config):
    return [config_part(name, function) for name, function in PARTS.items()]


def verdict(near, starts):
    """(word, reasons) from the spurious-start and random-start results."""
    vanishes = near["grad_norm_at_spurious"] <= 1e-6 * near["identity_grad_norm_at_spurious"]
    critical = starts["critical"] / starts["runs"]
    if vanishes and near["converged"] and critical >= 0.9:
        return (
            "like clipped ReLU",
            "E g vanishes at the spurious minimum, the run next to it converges, "
            f"{100 * critical:.0f}% of the random starts reach a critical point",
        )
    if not vanishes and not near["converged"]:
        return "like the identity STE", (
            f"E g does not vanish at the spurious minimum (norm {near['grad_norm_at_spurious']:.3g}, "
            f"the identity STE's {near['identity_grad_norm_at_spurious']:.3g}) and the run "
            f"next to it does not converge (f rises {near['increases']} times)"
        )
    return "mixed", (
        f"E g at the spurious minimum {near['grad_norm_at_spurious']:.3g}; the run next to it "
        f"{'converges' if near['converged'] else 'does not converge'}; {100 * critical:.0f}% of the "
        "random starts reach a critical point"
    )


def summarize(config, results):
    word, reasons = verdict(results["spurious"], results["random_starts"])
    metrics = {
        "ste": config.ste,
        "spurious": results["spurious"],
        "random_starts": {k: v for k, v in results["random_starts"].items() if k != "final_f"},
        "verdict": {
            "like_clipped_relu": word == "like clipped ReLU",
            "like_identity": word == "like the identity STE",
            "word": word,
        },
        "map": results["map"],
    }
    surrogate = ste.REGISTRY[config.ste]
    cos = np.asarray(results["map"]["cosine"])
    text = "\n".join(
        [
            f"# ste-check: {config.ste}{' - quick' if config.quick else ''}",
            "",
            f"Surrogate: {surrogate.formula} ({surrogate.source}). Toy model of Yin et al. 2019: m = {config.m}, n = "
            f"{config.n}, teacher of seed {config.seed}, step {config.lr:g}, {config.steps} steps, expected gradients "
            f"({'closed form' if config.ste in ste.SURROGATES else 'quadrature'}).",
            "",
            f"**Verdict: {word}.** {reasons}.",
            "",
            f"- ||E g|| at the spurious minimum: {results['spurious']['grad_norm_at_spurious']:.4g} (identity STE: "
            f"{results['spurious']['identity_grad_norm_at_spurious']:.4g}).",
            f"- Started at pi - {config.start_gap:g} from it: {'converges' if results['spurious']['converged'] else 'does not converge'}, "
            f"f rises {results['spurious']['increases']} times.",
            f"- {results['random_starts']['runs']} random starts: {results['random_starts']['monotone']} decrease f "
            f"monotonically, {results['random_starts']['critical']} end at a critical point.",
            f"- cos(E g, df/dw) over the (theta, ||w||) plane: positive at {100 * np.mean(cos > 0):.1f}% of "
            f"{cos.size} points, smallest {cos.min():.3g} (map.png).",
            "",
        ]
    )
    return metrics, text, {"map": _figure(config, results["map"])}


def _figure(config, cmap_data):
    cos = np.asarray(cmap_data["cosine"])
    fig, ax = subplots(figsize=(6.4, 4.2), layout="constrained")
    mesh = ax.pcolormesh(cmap_data["w_norm"], cmap_data["theta"], cos, cmap="RdBu", vmin=-1, vmax=1, shading="nearest")
    ax.set(
        xscale="log",
        xlabel="||w||",
        ylabel="angle theta between w and w*",
        title=f"{config.ste}: cos(E g, df/dw), v at the spurious minimiser's v",
    )
    fig.colorbar(mesh, ax=ax, label="cosine (> 0: a descent direction)")
    return fig


EXPERIMENT = Experiment(
    NAME, Config, plan, summarize, {"spurious": (), "random_starts": ("runs",), "verdict": ()}, doc=__doc__
)
