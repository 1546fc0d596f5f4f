"""Coarse gradient descent on Yin et al.'s (2019) toy problem with expected gradients, every STE of
``ste.SURROGATES`` from the same starting points (``problem``): the random starts and the start next
to the spurious minimum, and what each run did by the definitions of ``toy``'s docstring
(monotone, approaches the spurious minimum, never settles, converged)."""

import math

import numpy as np

from stevq import runio, ste
from stevq.experiments.yin2019.problem import random_start_points, spurious_point, spurious_start_point, teacher
from stevq.theory import yin2019


def random_starts(config):
    """{ste: Trajectory} of coarse gradient descent with expected gradients, all STEs from the same
    ``config.runs`` initialisations v0 ~ N(0, I_m), w0 ~ N(0, init_w_scale^2 I_n)."""
    v_star, w_star = teacher(config)
    v0, w0 = random_start_points(config)
    return {
        name: yin2019.coarse_gradient_descent(v0, w0, v_star, w_star, name, config.lr, config.steps)
        for name in ste.SURROGATES
    }


def _converged_to_spurious(trajectory, f_spurious, f_zero):
    return (math.pi - trajectory.theta[-1] < 1e-6) & (np.abs(trajectory.f[-1] - f_spurious) < 1e-9 * f_zero)


def random_start_counts(trajectory, config):
    """The counts of the acceptance criteria for one STE's runs (see ``toy``'s docstring)."""
    v_star, w_star = teacher(config)
    _, _, f_spurious = spurious_point(v_star, w_star)
    f_zero = (v_star @ v_star + v_star.sum() ** 2) / 8.0
    increases = trajectory.f_increased.sum(axis=0)
    approach = (math.pi - trajectory.theta < config.near).sum(axis=0) >= config.dwell
    unsettled = trajectory.f_increased[-config.tail :].sum(axis=0) >= config.unsettled_rises
    return {
        "runs": int(increases.size),
        "monotone": int((increases == 0).sum()),
        "approach_spurious": int(approach.sum()),
        "approach_and_never_settle": int((approach & unsettled).sum()),
        "converged_spurious": int(_converged_to_spurious(trajectory, f_spurious, f_zero).sum()),
        "converged_global": int((trajectory.f[-1] < 1e-9 * f_zero).sum()),
    }


def stop_if_diverged(trajectories, part):
    """Raise ``runio.NonFiniteError`` naming the first step (and run) at which f, theta or ||w||
    stopped being finite, with the last good values, e.g. after a step size far too large."""
    for name, trajectory in trajectories.items():
        values = {"f": trajectory.f, "theta": trajectory.theta, "w_norm": trajectory.w_norm}
        rows = {key: np.reshape(value, (len(value), -1)) for key, value in values.items()}
        bad = np.any([~np.isfinite(value) for value in rows.values()], axis=0)
        if bad.any():
            step = int(np.argmax(bad.any(axis=1)))
            run = int(np.argmax(bad[step]))
            runio.check_finite(
                step,
                {key: float(value[step, run]) for key, value in rows.items()},
                {key: float(value[step - 1, run]) for key, value in rows.items()} if step else None,
                where=f"{part}, {name} STE, run {run}: coarse gradient descent",
            )
    return trajectories


def spurious_start(config):
    """{ste: Trajectory} from v0 = the spurious minimiser's v and w0 the unit vector at angle
    pi - start_gap from w* (towards a random direction), with expected gradients."""
    v_star, w_star = teacher(config)
    v_sp, w0 = spurious_start_point(config)
    return {
        name: yin2019.coarse_gradient_descent(v_sp, w0, v_star, w_star, name, config.lr, config.steps)
        for name in ste.SURROGATES
    }


def spurious_start_summary(trajectory, config):
    """Did the run from next to the spurious minimum converge to it, and monotonically?"""
    v_star, w_star = teacher(config)
    v_sp, _, f_spurious = spurious_point(v_star, w_star)
    f_zero = (v_star @ v_star + v_star.sum() ** 2) / 8.0
    return {
        "increases": int(trajectory.f_increased.sum()),
        "monotone": bool(not trajectory.f_increased.any()),
        "final_pi_minus_theta": float(math.pi - trajectory.theta[-1]),
        "final_f_minus_f_spurious": float(trajectory.f[-1] - f_spurious),
        "final_v_distance_to_spurious": float(np.linalg.norm(trajectory.v - v_sp)),
        "converged": bool(_converged_to_spurious(trajectory, f_spurious, f_zero)),
    }
