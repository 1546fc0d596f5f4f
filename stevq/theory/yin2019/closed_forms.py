"""Closed forms of Yin et al.'s model: the angle, the population loss f and its gradient, and the
expected coarse gradients E_Z g_mu (three closed forms, quadrature for any other surrogate), with
the shared helpers (validation, geometry) of the modules beside it. Formulas:
docs/reference/yin2019.md; the model: ``stevq.theory.yin2019``.
"""

import collections
import math

import numpy as np

from ... import ste as surrogates
from ... import validate
from ...backend import asarray, namespace_of, to_numpy
from ...ste import SURROGATES
from .. import quadrature

SQRT_2PI = math.sqrt(2.0 * math.pi)


# ----------------------------------------------------------------------------------------- helpers


def _float64(x, name, ndim=None):
    """Validated ``x`` as float64 in its own namespace (host NumPy arrays welcome on any backend)."""
    validate.array(x, name, ndim=ndim, host=True)
    xp = namespace_of(x)
    return xp.astype(x, xp.float64)


def _params(v, w, v_star, w_star):
    """Validate the four parameter arrays, check their shapes agree, return them as float64."""
    v, w = _float64(v, "v"), _float64(w, "w")
    v_star, w_star = _float64(v_star, "v_star", ndim=1), _float64(w_star, "w_star", ndim=1)
    validate.same_last_dim(v_star, "v_star", v, "v")
    validate.same_last_dim(w_star, "w_star", w, "w")
    if tuple(v.shape[:-1]) != tuple(w.shape[:-1]):
        raise ValueError(f"w: leading axes {tuple(w.shape[:-1])} do not match v's {tuple(v.shape[:-1])}")
    if not bool(namespace_of(w_star).linalg.vector_norm(w_star) > 0):
        raise ValueError("w_star: must be nonzero (the teacher's filter defines the angle theta)")
    return v, w, v_star, w_star


def _dot(a, b):
    return namespace_of(a, b).sum(a * b, axis=-1)


def _unit(x):
    """(x / ||x||, ||x||) along the last axis; the zero vector stays zero."""
    xp = namespace_of(x)
    norm = xp.linalg.vector_norm(x, axis=-1, keepdims=True)
    return x / xp.where(norm > 0, norm, xp.ones_like(norm)), norm[..., 0]


_Geometry = collections.namedtuple("_Geometry", "theta w_norm w_hat w_star_hat e_perp")


def _geometry(w, w_star):
    """theta, ||w||, w^, w*^ and e_perp = unit((I - w^ w^^T) w*): the unit vector in the plane of
    w and w* that is orthogonal to w and points towards w*.

    theta = 2 atan2(||w^ - w*^||, ||w^ + w*^||) (Kahan's formula) is accurate to rounding error at
    every angle, including near 0 and pi where arccos(<w^, w*^>) loses half the digits. At theta = 0
    or pi the direction e_perp is undefined and is set to 0 (then df/dw = 0, the element of least
    norm of the Clarke generalized gradient of f there).
    """
    xp = namespace_of(w)
    w_hat, w_norm = _unit(w)
    w_star_hat, _ = _unit(w_star)
    theta = 2.0 * xp.atan2(
        xp.linalg.vector_norm(w_hat - w_star_hat, axis=-1), xp.linalg.vector_norm(w_hat + w_star_hat, axis=-1)
    )
    e_perp, _ = _unit(w_star_hat - xp.cos(theta)[..., None] * w_hat)
    return _Geometry(theta, w_norm, w_hat, w_star_hat, e_perp)


def _require_nonzero(w_norm):
    if not bool(namespace_of(w_norm).all(w_norm > 0)):
        raise ValueError("w: the angle to w_star and the gradients are undefined at w = 0")


def _normal_cdf(x):
    """Phi(x) for a NumPy array (host; +-inf allowed), via erfc so that the lower tail keeps digits."""
    return np.vectorize(lambda t: 0.5 * math.erfc(-t / math.sqrt(2.0)), otypes=[np.float64])(x)


# The closed forms proper, on validated float64 arrays and a precomputed geometry (coarse gradient
# descent calls these directly, once per step).


def _loss(v, v_star, geo):
    xp = namespace_of(v)
    d = v - v_star
    f = (_dot(d, d) + xp.sum(d, axis=-1) ** 2 + (4.0 / math.pi) * geo.theta * _dot(v, v_star)) / 8.0
    at_zero = _zero_network_loss(v_star)
    return xp.where(geo.w_norm > 0, f, at_zero * xp.ones_like(f))


def _zero_network_loss(v_star):
    """f(v, 0) = 1/8 v*^T (I + 11^T) v*: the loss of predicting 0, the scale of the problem."""
    return (_dot(v_star, v_star) + namespace_of(v_star).sum(v_star) ** 2) / 8.0


def _grad_v(v, v_star, geo):
    d = v - v_star
    return (d + namespace_of(v).sum(d, axis=-1, keepdims=True) + (2.0 / math.pi) * geo.theta[..., None] * v_star) / 4.0


def _grad_w(v, v_star, geo):
    return -(_dot(v, v_star) / (2.0 * math.pi * geo.w_norm))[..., None] * geo.e_perp


def _clipped_relu_coefficients(theta, w_norm):
    """p0, p, q of the clipped-ReLU expectation (host NumPy; see ``expected_coarse_grad``)."""
    theta, c = to_numpy(theta), 1.0 / to_numpy(w_norm)
    sin, cos = np.sin(theta), np.cos(theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        wide = 2.0 * _normal_cdf(np.where(sin > 0, c / sin, np.inf)) - 1.0  # 2 Phi(c / sin) - 1
        c_cot = np.where(sin > 0, c * cos / sin, np.where(cos > 0, np.inf, -np.inf))
    phi_c = np.exp(-0.5 * c * c) / SQRT_2PI
    p0 = -np.expm1(-0.5 * c * c) / SQRT_2PI
    p = (1.0 + cos * wide) / (2.0 * SQRT_2PI) - phi_c * _normal_cdf(c_cot)
    q = sin * wide / (2.0 * SQRT_2PI)
    return p0, p, q


def _surrogate_of(ste):
    """One of the three closed forms (its name), or a ``stevq.ste.Surrogate`` for quadrature: any
    registered name beyond the three, or a Surrogate of one's own (the registered Surrogate objects of
    the three force quadrature too, which is how the tests compare the two)."""
    if isinstance(ste, str) and ste in SURROGATES:
        return ste
    return surrogates.surrogate(ste, "ste")


def _expected_coarse(v, v_star, geo, ste):
    xp = namespace_of(v)
    if not isinstance(ste, str):  # any other surrogate: quadrature (stevq.theory.quadrature), on the host
        host = quadrature.expected_coarse_batch(
            ste.mu_prime, ste.kinks, *(to_numpy(a) for a in (v, v_star, geo.w_hat, geo.e_perp, geo.w_norm, geo.theta))
        )
        return host if isinstance(v, np.ndarray) else asarray(host, "float64")
    vv, v_vs = _dot(v, v), _dot(v, v_star)
    ones_v, ones_vs = xp.sum(v, axis=-1), xp.sum(v_star)
    if ste == "identity":
        return (vv[..., None] * geo.w_hat - v_vs[..., None] * geo.w_star_hat) / SQRT_2PI
    if ste == "relu":
        along_w = vv + ones_v**2 - ones_v * ones_vs
        return (along_w[..., None] * geo.w_hat - v_vs[..., None] * geo.w_star_hat) / (2.0 * SQRT_2PI)
    h = vv + ones_v**2 - ones_v * ones_vs + v_vs
    p0, p, q = (xp.asarray(c, dtype=xp.float64) for c in _clipped_relu_coefficients(geo.theta, geo.w_norm))
    return (0.5 * p0 * h - v_vs * p)[..., None] * geo.w_hat - (v_vs * q)[..., None] * geo.e_perp


# ------------------------------------------------------------------------------------ closed forms


def angle(w, w_star):
    """The angle theta in [0, pi] between w (..., n) and w_star (n,), accurate near 0 and pi."""
    w, w_star = _float64(w, "w"), _float64(w_star, "w_star", ndim=1)
    validate.same_last_dim(w_star, "w_star", w, "w")
    if not bool(namespace_of(w_star).linalg.vector_norm(w_star) > 0):
        raise ValueError("w_star: the angle is undefined for the zero vector")
    geo = _geometry(w, w_star)
    _require_nonzero(geo.w_norm)
    return geo.theta


def population_loss(v, w, v_star, w_star):
    """f(v, w) = E_Z 1/2 (v^T sigma(Z w) - v*^T sigma(Z w*))^2 in closed form (Yin et al. 2019):

        f = 1/8 [ v^T (I + 11^T) v - 2 v^T ((1 - 2 theta/pi) I + 11^T) v* + v*^T (I + 11^T) v* ]
          = 1/8 [ ||v - v*||^2 + (1^T (v - v*))^2 + (4 theta / pi) v^T v* ]

    The second (equal) form is the one computed: it has no cancellation near the global minimum
    f = 0. At w = 0, sigma(Z w) = 0 and f = 1/8 (||v*||^2 + (1^T v*)^2).
    """
    v, w, v_star, w_star = _params(v, w, v_star, w_star)
    return _loss(v, v_star, _geometry(w, w_star))


def population_grad(v, w, v_star, w_star):
    """(df/dv, df/dw) of the population loss (Yin et al. 2019, Lemma 2):

        df/dv = 1/4 (I + 11^T) v - 1/4 ((1 - 2 theta/pi) I + 11^T) v*
              = 1/4 [ (v - v*) + 1 1^T (v - v*) + (2 theta / pi) v* ]
        df/dw = -(v^T v*) / (2 pi ||w||) e_perp,   e_perp = unit((I - w^ w^^T) w*)

    f is not differentiable at theta = 0 or pi; there df/dw is returned as 0 (see ``_geometry``).
    """
    v, w, v_star, w_star = _params(v, w, v_star, w_star)
    geo = _geometry(w, w_star)
    _require_nonzero(geo.w_norm)
    return _grad_v(v, v_star, geo), _grad_w(v, v_star, geo)


def expected_coarse_grad(v, w, v_star, w_star, ste):
    """E_Z g_mu(v, w; Z), the expected coarse gradient in w of the STE ``ste``, in closed form.

    With w^ = w/||w||, w*^ = w*/||w*||, 1 the all-ones vector in R^m:
      identity (Yin et al. 2019):  1/sqrt(2 pi) ( ||v||^2 w^ - (v^T v*) w*^ )
      relu (Yin et al. 2019):      1/(2 sqrt(2 pi)) [ (||v||^2 + (1^T v)^2 - (1^T v)(1^T v*)) w^
                                                      - (v^T v*) w*^ ]
      clipped_relu (derived for this project, mu' = 1{0 < x < 1}), with c = 1/||w||:
          h  = ||v||^2 + (1^T v)^2 - (1^T v)(1^T v*) + v^T v*
          p0 = (1 - exp(-c^2/2)) / sqrt(2 pi)
          q  = sin(theta) (2 Phi(c / sin theta) - 1) / (2 sqrt(2 pi))
          p  = (1 + cos(theta) (2 Phi(c / sin theta) - 1)) / (2 sqrt(2 pi)) - phi(c) Phi(c cot theta)
          E g = (p0 / 2) h w^ - (v^T v*) (p w^ + q e_perp)
    (the clipped-ReLU form tends to the ReLU one as ||w|| -> 0, since then c -> infinity).
    Any other surrogate (a name of ``stevq.ste.REGISTRY`` or a ``stevq.ste.Surrogate``) is integrated
    numerically (``stevq.theory.quadrature``); passing ``stevq.ste.REGISTRY[name]`` for one of the three
    forces the quadrature too.
    """
    ste = _surrogate_of(ste)
    v, w, v_star, w_star = _params(v, w, v_star, w_star)
    geo = _geometry(w, w_star)
    _require_nonzero(geo.w_norm)
    return _expected_coarse(v, v_star, geo, ste)
