"""Yin et al.'s (2019) toy problem as ``yin2019-toy`` and ``ste-check`` set it up from their
Configs (fields ``seed``, ``m``, ``n``, ``teacher_shift``, ``runs``, ``init_w_scale``,
``start_gap``): the teacher (v*, w*) drawn from the seed, its spurious minimum, and the points the
runs of coarse gradient descent start from. Each draws from its own stream of the seed, so the
same seed gives both experiments the same teacher and starts."""

import math

import numpy as np

from stevq.theory import yin2019

# v* = N(0, I_m) + TEACHER_SHIFT by default: with m = 10 and seed 0, (1^T v*)^2 is 0.39 of
# (m+1)/2 ||v*||^2, below 1 so that spurious minima exist, far from 0 so that the identity STE's
# expected coarse gradient there matters (yin2019-toy's docstring)
TEACHER_SHIFT = 0.3


def teacher(config):
    """(v*, w*) from ``config.seed``; raises ValueError if the landscape has no spurious minima."""
    rng = np.random.default_rng([config.seed, 0])
    v_star = rng.standard_normal(config.m) + config.teacher_shift
    w_star = rng.standard_normal(config.n)
    w_star /= np.linalg.norm(w_star)
    if not yin2019.has_spurious_minima(v_star):
        raise ValueError(
            f"teacher_shift: with {config.teacher_shift} and seed {config.seed}, "
            "(1^T v*)^2 >= (m+1)/2 ||v*||^2 and there is no spurious minimum; lower it"
        )
    return v_star, w_star


def spurious_point(v_star, w_star):
    """(v, w, f) at the spurious minimiser of the teacher (v*, w*)."""
    v_sp, w_sp = yin2019.spurious_minimum(v_star, w_star)
    return v_sp, w_sp, float(yin2019.population_loss(v_sp, w_sp, v_star, w_star))


def random_start_points(config):
    """(v0, w0): ``config.runs`` initialisations v0 ~ N(0, I_m), w0 ~ N(0, init_w_scale^2 I_n)."""
    rng = np.random.default_rng([config.seed, 1])
    v0 = rng.standard_normal((config.runs, config.m))
    w0 = config.init_w_scale * rng.standard_normal((config.runs, config.n))
    return v0, w0


def away_direction(config, w_star):
    """The random direction of the runs next to the spurious minimum (from ``config.seed``),
    orthogonal to w* (not normalised)."""
    direction = np.random.default_rng([config.seed, 2]).standard_normal(config.n)
    return direction - (direction @ w_star) * w_star


def spurious_start_point(config):
    """(v0, w0): the spurious minimiser's v and the unit vector at angle pi - start_gap from w*."""
    v_star, w_star = teacher(config)
    v_sp, _, _ = spurious_point(v_star, w_star)
    direction = away_direction(config, w_star)
    theta0 = math.pi - config.start_gap
    return v_sp, math.cos(theta0) * w_star + math.sin(theta0) * direction / np.linalg.norm(direction)
