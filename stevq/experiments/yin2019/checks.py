"""Yin et al.'s (2019) statements about the expected coarse gradient, each measured so that it could
fail: the parts ``monte_carlo``, ``correlation`` and ``step_sizes`` of the yin2019-toy experiment.

- ``monte_carlo``: at the spurious minimiser (v_s, w_s), the engine's coarse gradient (autograd
  through ``ste.binary_step``, ``theory.yin2019.coarse_grad``) averaged over ``mc_samples`` Gaussian
  inputs, against the closed form of E_Z g_mu: per coordinate, the difference in standard errors
  (batch means). The paper: the identity STE's expectation there is not 0 (its norm is
  2 (m-1)(1^T v*)^2 / (sqrt(2 pi)(m+1)^2)), the ReLU and clipped-ReLU STEs' is 0.
- ``correlation``: at ``points`` random (v, w), the inner product <E_Z g_mu, df/dw> and the
  first-order decrease ||df/dv||^2 + <E_Z g_mu, df/dw> of a coarse-gradient step (Lemma: both are
  >= 0 for ReLU and clipped ReLU; the identity STE is positively correlated as well, so correlation
  alone does not separate the three).
- ``step_sizes``: coarse gradient descent (expected gradients) from the random starts of
  ``random_starts`` at lr, lr / 5 and lr / 25 for the same number of steps: the share of runs in
  which f decreases monotonically (the descent theorem needs a small enough step), and how close
  each run ends to a critical point of the coarse dynamics: (||df/dv|| + ||E g||) at the end over
  its value at the start.
"""

import math

import numpy as np

from stevq import ste
from stevq.backend import asarray, to_numpy
from stevq.theory import yin2019

STEP_DIVISORS = (1, 5, 25)
CRITICAL = 1e-3  # a run "reaches a critical point" when (||df/dv|| + ||E g||) falls below this share of its start


def monte_carlo(v_star, w_star, samples, batch, rng):
    """{ste: {"closed_form", "mc_mean", "mc_se", "max_abs_z", "closed_norm", "mc_norm", "se_norm"}}
    at the spurious minimiser; standard errors from the spread of batch means."""
    v_sp, w_sp = yin2019.spurious_minimum(v_star, w_star)
    m, n = v_star.shape[0], w_star.shape[0]
    batches = samples // batch
    means = {name: [] for name in ste.SURROGATES}
    teacher = (asarray(v_star), asarray(w_star))
    for _ in range(batches):
        Z = asarray(rng.standard_normal((batch, m, n)))
        for name in ste.SURROGATES:  # the same inputs for every STE
            means[name].append(to_numpy(yin2019.coarse_grad(asarray(v_sp), asarray(w_sp), Z, *teacher, name)[1]))
    out = {}
    for name, rows in means.items():
        rows = np.asarray(rows)
        mean, se = rows.mean(axis=0), rows.std(axis=0, ddof=1) / math.sqrt(rows.shape[0])
        closed = yin2019.expected_coarse_grad(v_sp, w_sp, v_star, w_star, name)
        out[name] = {
            "closed_form": closed.tolist(),
            "mc_mean": mean.tolist(),
            "mc_se": se.tolist(),
            "max_abs_z": float(np.max(np.abs(mean - closed) / se)),
            "closed_norm": float(np.linalg.norm(closed)),
            "mc_norm": float(np.linalg.norm(mean)),
            "se_norm": float(np.linalg.norm(se)),
            "samples": int(batches * batch),
        }
    return out


def correlation(v_star, w_star, points, rng):
    """{ste: {"share_positive", "min_cosine", "share_decrease"}} at ``points`` random (v, w)."""
    m, n = v_star.shape[0], w_star.shape[0]
    v, w = rng.standard_normal((points, m)), rng.standard_normal((points, n))
    dv, dw = yin2019.population_grad(v, w, v_star, w_star)
    out = {}
    for name in ste.SURROGATES:
        coarse = yin2019.expected_coarse_grad(v, w, v_star, w_star, name)
        inner = (coarse * dw).sum(-1)
        cosine = inner / (np.linalg.norm(coarse, axis=-1) * np.linalg.norm(dw, axis=-1))
        decrease = (dv * dv).sum(-1) + inner
        out[name] = {
            "points": points,
            "share_positive": float(np.mean(inner >= 0)),
            "min_cosine": float(np.min(cosine)),
            "median_cosine": float(np.median(cosine)),
            "share_decrease": float(np.mean(decrease > 0)),
        }
    return out


def coarse_norm(v, w, v_star, w_star, name):
    """||df/dv|| + ||E g||: zero at a critical point of coarse gradient descent."""
    dv, _ = yin2019.population_grad(v, w, v_star, w_star)
    coarse = yin2019.expected_coarse_grad(v, w, v_star, w_star, name)
    return np.linalg.norm(dv, axis=-1) + np.linalg.norm(coarse, axis=-1)


def step_sizes(v0, w0, v_star, w_star, lr, steps):
    """{"lr": [...], ste: [{"lr", "monotone_share", "critical_share", "median_final_over_start"}]}."""
    out = {"lr": [lr / d for d in STEP_DIVISORS]}
    for name in ste.SURROGATES:
        rows = []
        start = coarse_norm(v0, w0, v_star, w_star, name)
        for step in out["lr"]:
            with np.errstate(over="ignore", invalid="ignore"):
                trajectory = yin2019.coarse_gradient_descent(v0, w0, v_star, w_star, name, step, steps)
            final = coarse_norm(trajectory.v, trajectory.w, v_star, w_star, name) / start
            rows.append(
                {
                    "lr": step,
                    "monotone_share": float(np.mean(~trajectory.f_increased.any(axis=0))),
                    "critical_share": float(np.mean(final < CRITICAL)),
                    "median_final_over_start": float(np.median(final)),
                }
            )
        out[name] = rows
    return out
