"""The two-layer binarized network of Yin et al. (ICLR 2019), "Understanding Straight-Through
Estimator in Training Activation Quantized Neural Nets": closed forms and simulation.

Model. An input Z in R^{m x n} has i.i.d. N(0, 1) entries (m patches of dimension n). The first
layer is a filter w in R^n shared by the patches, followed by the binary activation
sigma(x) = 1{x > 0}; the second layer is v in R^m. A teacher (v*, w*) labels the data:

    y(Z) = v^T sigma(Z w),   y*(Z) = v*^T sigma(Z w*),   l(v, w; Z) = 1/2 (y(Z) - y*(Z))^2,
    f(v, w) = E_Z l(v, w; Z)                                         (the population loss)

dl/dw = 0 almost everywhere, so a straight-through estimator replaces sigma' by the derivative mu'
of a surrogate mu (identity, ReLU or clipped ReLU) and gives the *coarse gradient*

    g_mu(v, w; Z) = Z^T (mu'(Z w) * v) r,    r = y(Z) - y*(Z),

while dl/dv = sigma(Z w) r is exact. This module gives f, its gradient and E_Z g_mu in closed form,
the sample loss and the coarse gradient computed by stevq's engine (through ``stevq.ste``), the
critical points of f, and coarse gradient descent. Formulas: docs/reference/yin2019.md;
each one is checked against Monte Carlo in tests/test_yin2019.py.

Shapes: v is (..., m), w is (..., n), v_star (m,), w_star (n,); leading axes are independent
parameter points (e.g. many runs at once). Computations are in float64 in the namespace of the
inputs (any backend); the clipped-ReLU expectation evaluates the normal CDF on the host, because the
array API has no erf.
"""
import collections
import dataclasses
import math

import numpy as np
from autograd import grad

from .. import ops, ste as surrogates, validate
from ..backend import asarray, namespace_of, to_numpy
from ..ste import SURROGATES, binary_step
from . import quadrature

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
    theta = 2.0 * xp.atan2(xp.linalg.vector_norm(w_hat - w_star_hat, axis=-1),
                           xp.linalg.vector_norm(w_hat + w_star_hat, axis=-1))
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
    return (d + namespace_of(v).sum(d, axis=-1, keepdims=True)
            + (2.0 / math.pi) * geo.theta[..., None] * v_star) / 4.0


def _grad_w(v, v_star, geo):
    return -(_dot(v, v_star) / (2.0 * math.pi * geo.w_norm))[..., None] * geo.e_perp


def _clipped_relu_coefficients(theta, w_norm):
    """p0, p, q of the clipped-ReLU expectation (host NumPy; see ``expected_coarse_grad``)."""
    theta, c = to_numpy(theta), 1.0 / to_numpy(w_norm)
    sin, cos = np.sin(theta), np.cos(theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        wide = 2.0 * _normal_cdf(np.where(sin > 0, c / sin, np.inf)) - 1.0    # 2 Phi(c / sin) - 1
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
        host = quadrature.expected_coarse_batch(ste.mu_prime, ste.kinks, *(to_numpy(a) for a in (
            v, v_star, geo.w_hat, geo.e_perp, geo.w_norm, geo.theta)))
        return host if isinstance(v, np.ndarray) else asarray(host, "float64")
    vv, v_vs = _dot(v, v), _dot(v, v_star)
    ones_v, ones_vs = xp.sum(v, axis=-1), xp.sum(v_star)
    if ste == "identity":
        return (vv[..., None] * geo.w_hat - v_vs[..., None] * geo.w_star_hat) / SQRT_2PI
    if ste == "relu":
        along_w = vv + ones_v ** 2 - ones_v * ones_vs
        return (along_w[..., None] * geo.w_hat - v_vs[..., None] * geo.w_star_hat) / (2.0 * SQRT_2PI)
    h = vv + ones_v ** 2 - ones_v * ones_vs + v_vs
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


# ----------------------------------------------------------------------------------- simulation

def _check_batch(v, w, Z, v_star, w_star):
    v, w, v_star, w_star = (_float64(x, name, ndim=1) for x, name in
                            ((v, "v"), (w, "w"), (v_star, "v_star"), (w_star, "w_star")))
    Z = _float64(Z, "Z", ndim=3)
    if tuple(Z.shape[1:]) != (v_star.shape[0], w_star.shape[0]):
        raise ValueError(f"Z: expected shape (B, m, n) = (any, {v_star.shape[0]}, {w_star.shape[0]}), "
                         f"got {tuple(Z.shape)}")
    validate.same_last_dim(v_star, "v_star", v, "v")
    validate.same_last_dim(w_star, "w_star", w, "w")
    return v, w, Z, v_star, w_star


def _per_sample_loss(v, w, Z, v_star, w_star, activation):
    """l(v, w; Z_b) = 1/2 (v^T act(Z_b w) - v*^T sigma(Z_b w*))^2 for each b, through stevq.ops."""
    y = ops.sum(ops.multiply(activation(ops.matmul(Z, w)), v), axis=-1)
    y_star = ops.sum(ops.multiply(ops.heaviside(ops.matmul(Z, w_star)), v_star), axis=-1)
    return ops.multiply(0.5, ops.square(ops.subtract(y, y_star)))


def sample_loss(v, w, Z, v_star, w_star):
    """The sample losses l(v, w; Z_b) = 1/2 (v^T sigma(Z_b w) - v*^T sigma(Z_b w*))^2, shape (B,),
    for a batch Z of shape (B, m, n) and single v (m,), w (n,). Their mean estimates f(v, w)."""
    return _per_sample_loss(*_check_batch(v, w, Z, v_star, w_star), ops.heaviside)


def coarse_grad(v, w, Z, v_star, w_star, ste):
    """(dl/dv, g_mu) averaged over the batch Z (B, m, n), computed by the engine: autograd's
    gradient of the mean sample loss with sigma = ``stevq.ste.binary_step(., backward=ste)``, whose
    backward rule replaces sigma' by mu'. Equal to the formulas

        dl/dv = sigma(Z w) r,   g_mu = Z^T (mu'(Z w) * v) r,   r = v^T sigma(Z w) - v*^T sigma(Z w*).
    """
    ste = _surrogate_of(ste)
    v, w, Z, v_star, w_star = _check_batch(v, w, Z, v_star, w_star)

    def mean_loss(v, w):
        return ops.mean(_per_sample_loss(v, w, Z, v_star, w_star, lambda x: binary_step(x, ste)))
    return grad(mean_loss, argnum=(0, 1))(v, w)


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
        raise ValueError("v_star: f has no spurious minima or saddles, because "
                         "(1^T v*)^2 >= (m+1)/2 ||v*||^2 (see has_spurious_minima)")
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
    d = (m + 1) * vs_sq - ones_vs ** 2
    rhs = -(ones_vs ** 2 / d) * v_star + ones_vs * xp.ones_like(v_star)
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


# --------------------------------------------------------------------- coarse gradient descent

# f[t+1] counts as an increase over f[t] when it exceeds it by more than this fraction of the loss of
# the zero network, f(v, 0) = 1/8 v*^T (I + 11^T) v*. Near a minimum f is evaluated with an absolute
# rounding error of order eps |v^T v*| (theta itself is only known to a few ulps), so a strict
# f[t+1] > f[t] would count rounding noise of 1e-16 as increases.
F_INCREASE_RTOL = 1e-12


@dataclasses.dataclass
class Trajectory:
    """Coarse gradient descent, step by step (NumPy arrays; a trailing run axis if several runs):
    f, theta, w_norm, v_distance = ||v - v*|| at steps 0..steps (steps + 1 rows);
    f_increased[t]: f[t+1] > f[t] + F_INCREASE_RTOL f(v, 0) (steps rows); v, w the final iterate."""
    f: np.ndarray
    theta: np.ndarray
    w_norm: np.ndarray
    v_distance: np.ndarray
    f_increased: np.ndarray
    v: np.ndarray
    w: np.ndarray


def coarse_gradient_descent(v0, w0, v_star, w_star, ste, lr, steps, batch=None, seed=0):
    """Coarse gradient descent (Yin et al. 2019, Algorithm 1) from (v0, w0):

        v <- v - lr * df/dv,     w <- w - lr * g_mu(v, w)

    With ``batch=None`` both gradients are the expectations over Z in closed form (df/dv and
    ``expected_coarse_grad``), computed in NumPy; with ``batch=B`` they are the engine's
    ``coarse_grad`` on a fresh batch of B Gaussian inputs per step (on the active backend), drawn
    from ``numpy.random.default_rng(seed)``. v0 (m,) and w0 (n,), or (R, m) and (R, n) for R runs
    at once. Returns a ``Trajectory``; its f is always the population loss.
    """
    ste = _surrogate_of(ste)
    validate.number(lr, "lr", low=0.0, low_inclusive=False)
    validate.number(steps, "steps", low=0, integer=True)
    if batch is not None:
        validate.number(batch, "batch", low=1, integer=True)
    v, w, v_star, w_star = (to_numpy(x) for x in _params(v0, w0, v_star, w_star))
    if v.ndim > 2:
        raise ValueError(f"v0: expected shape (m,) or (runs, m), got {v.shape}")
    if not np.all(np.linalg.vector_norm(w, axis=-1) > 0):
        raise ValueError("w0: must be nonzero")
    rng = np.random.default_rng(seed)
    f, theta, w_norm, v_distance = [], [], [], []
    for step in range(steps + 1):
        geo = _geometry(w, w_star)
        f.append(_loss(v, v_star, geo))
        theta.append(geo.theta)
        w_norm.append(geo.w_norm)
        v_distance.append(np.linalg.vector_norm(v - v_star, axis=-1))
        if step == steps:
            break
        if batch is None:
            dv, dw = _grad_v(v, v_star, geo), _expected_coarse(v, v_star, geo, ste)
        else:
            dv, dw = _sampled_step(v, w, v_star, w_star, ste, batch, rng)
        v, w = v - lr * dv, w - lr * dw
    f = np.asarray(f)
    return Trajectory(f=f, theta=np.asarray(theta), w_norm=np.asarray(w_norm),
                      v_distance=np.asarray(v_distance),
                      f_increased=f[1:] - f[:-1] > F_INCREASE_RTOL * _zero_network_loss(v_star),
                      v=v, w=w)


def _sampled_step(v, w, v_star, w_star, ste, batch, rng):
    """The engine's coarse gradient of each run on its own fresh batch, on the active backend."""
    m, n = v_star.shape[0], w_star.shape[0]
    teacher = (asarray(v_star), asarray(w_star))
    dv, dw = [], []
    for v_run, w_run in zip(v.reshape(-1, m), w.reshape(-1, n)):
        Z = asarray(rng.standard_normal((batch, m, n)))
        grads = coarse_grad(asarray(v_run), asarray(w_run), Z, *teacher, ste)
        dv.append(to_numpy(grads[0]))
        dw.append(to_numpy(grads[1]))
    return np.reshape(dv, v.shape), np.reshape(dw, w.shape)
