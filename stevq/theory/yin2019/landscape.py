"""The critical points of Yin et al.'s population loss f (Proposition 1): when spurious minima and
saddles exist, and where they are. The model: ``stevq.theory.yin2019``.
"""

import math

from ... import validate
from ...backend import namespace_of
from .closed_forms import _dot, _float64, _unit

# ------------------------------------------------------------------------------------ landscape


def _spurious_condition(v_star):
    xp = namespace_of(v_star)
    m = v_star.shape[0]
    return xp.sum(v_star) ** 2 < 0.5 * (m + 1) * _dot(v_star, v_star)


def has_spurious_minima(v_star):
    """True when f has spurious local minima (and saddles): (1^T v*)^2 < (m+1)/2 ||v*||^2
    (Yin et al. 2019, Proposition 1)."""
    return bool(_spurious_condition(_float64(v_star, "v_star", ndim=1)))


def _check_teacher(v_star, w_star):
    v_star, w_star = _float64(v_star, "v_star", ndim=1), _float64(w_star, "w_star", ndim=1)
    if not bool(namespace_of(w_star).linalg.vector_norm(w_star) > 0):
        raise ValueError("w_star: must be nonzero")
    if not bool(_spurious_condition(v_star)):
        raise ValueError(
            "v_star: f has no spurious minima or saddles, because "
            "(1^T v*)^2 >= (m+1)/2 ||v*||^2 (see has_spurious_minima)"
        )
    return v_star, w_star


def spurious_minimum(v_star, w_star):
    """A spurious local minimiser (v, w) of f (Yin et al. 2019, Proposition 1):

        theta = pi (w = -w*/||w*||, any positive multiple works),
        v = (I + 11^T)^{-1} (11^T - I) v* = (2 (1^T v*) / (m + 1)) 1 - v*.
    Raises ValueError if ``has_spurious_minima(v_star)`` is False.
    """
    v_star, w_star = _check_teacher(v_star, w_star)
    xp = namespace_of(v_star)
    m = v_star.shape[0]
    v = (2.0 * xp.sum(v_star) / (m + 1)) * xp.ones_like(v_star) - v_star
    return v, -_unit(w_star)[0]


def saddle_point(v_star, w_star, direction=None):
    """A saddle point (v, w) of f (Yin et al. 2019, Proposition 1), with D = (m+1)||v*||^2 - (1^T v*)^2:

        v = (I + 11^T)^{-1} (-(1^T v*)^2 / D I + 11^T) v*,   theta = (pi/2) (m+1) ||v*||^2 / D.
    w is the unit vector at angle theta from w* in the plane of w* and ``direction`` (default: the
    coordinate axis least aligned with w*). The inverse is explicit:
    (I + 11^T)^{-1} = I - 11^T / (m + 1). Raises ValueError if there are no saddles.
    """
    v_star, w_star = _check_teacher(v_star, w_star)
    xp = namespace_of(v_star)
    m, n = v_star.shape[0], w_star.shape[0]
    ones_vs, vs_sq = xp.sum(v_star), _dot(v_star, v_star)
    d = (m + 1) * vs_sq - ones_vs**2
    rhs = -(ones_vs**2 / d) * v_star + ones_vs * xp.ones_like(v_star)
    v = rhs - xp.sum(rhs) / (m + 1)
    theta = 0.5 * math.pi * (m + 1) * vs_sq / d
    w_star_hat, _ = _unit(w_star)
    if direction is None:
        direction = xp.astype(xp.arange(n) == xp.argmin(xp.abs(w_star_hat)), xp.float64)
    direction = _float64(direction, "direction", ndim=1)
    validate.same_last_dim(w_star, "w_star", direction, "direction")
    u, u_norm = _unit(direction - _dot(direction, w_star_hat) * w_star_hat)
    if not bool(u_norm > 1e-12 * xp.linalg.vector_norm(direction)):
        raise ValueError("direction: must not be parallel to w_star")
    return v, xp.cos(theta) * w_star_hat + xp.sin(theta) * u
