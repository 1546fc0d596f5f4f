"""The expected coarse gradient of Yin et al.'s (2019) model for *any* surrogate mu', by quadrature.

With the rows z_i of Z i.i.d. N(0, I_n), the coarse gradient g_mu = sum_i z_i mu'(z_i.w) v_i r,
r = sum_j v_j sigma(z_j.w) - v*_j sigma(z_j.w*), has an expectation made of one-row expectations.
Terms with j != i factor into E[z mu'(z.w)] E[sigma(.)] with E[sigma(z.w)] = E[sigma(z.w*)] = 1/2;
terms with j = i are expectations over the plane of w and w*. Writing z.w^ = u, z.e_perp = t
(independent N(0, 1); e_perp the unit vector of w* orthogonal to w, theta the angle between w and
w*, s = ||w||, and integrating t out in closed form):

    A  = E[u mu'(s u)]                          E[z mu'(z.w)]            = A w^
    B  = E[u mu'(s u) 1{u > 0}]                 E[z mu'(z.w) sigma(z.w)]  = B w^
    C1 = E[u mu'(s u) Phi(u cot theta)]         E[z mu'(z.w) sigma(z.w*)] = C1 w^ + C2 e_perp
    C2 = E[mu'(s u) phi(u cot theta)]

    E g = [ A/2 ((1^T v)^2 - ||v||^2 - (1^T v)(1^T v*) + v^T v*) + B ||v||^2 - C1 v^T v* ] w^
          - C2 (v^T v*) e_perp

Each of A, B, C1, C2 is one integral over u ~ N(0, 1), computed here by adaptive Gauss-Legendre
quadrature (a 10-point rule checked against a 21-point one on every interval, bisecting where they
disagree) on [-12, 12], split at 0, at the surrogate's kinks divided by s, and near theta = 0 or pi
(where Phi(u cot theta) is nearly a step) at a geometric ladder of points around 0. With mu' = 1 this
gives the identity STE's closed form: A = 0, B = 1/sqrt(2 pi), C1 = cos(theta)/sqrt(2 pi),
C2 = sin(theta)/sqrt(2 pi) (tests/test_quadrature.py checks all three closed forms to 1e-10).
"""

import math

import numpy as np

from .. import backend

SQRT_2PI = math.sqrt(2.0 * math.pi)
LIMIT = 12.0  # phi(12) ~ 5e-32: beyond it nothing of these integrals is left
_LOW, _HIGH = (np.polynomial.legendre.leggauss(n) for n in (10, 21))


def _phi(x):
    return np.exp(-0.5 * x * x) / SQRT_2PI


def _cdf(x):
    return 0.5 * np.vectorize(math.erfc, otypes=[float])(-x / math.sqrt(2.0))


def _integrands(mu_prime, s, cot, u):
    """The four integrands (4, ...) at the points ``u`` (any shape), weight phi(u) included."""
    slope = np.asarray(mu_prime(s * u), dtype=float)
    weight = _phi(u)
    if np.isinf(cot):  # theta = 0 (Phi -> 1{u > 0}) or pi (Phi -> 1{u < 0}); phi(u cot) -> 0
        side = (u > 0) if cot > 0 else (u < 0)
        tilt, bell = side.astype(float), np.zeros_like(u)
    else:
        tilt, bell = _cdf(u * cot), _phi(u * cot)
    return np.stack(
        [u * slope * weight, u * slope * (u > 0) * weight, u * slope * tilt * weight, slope * bell * weight]
    )


def _rule(nodes_weights, a, b):
    nodes, weights = nodes_weights
    half, middle = (b - a) / 2.0, (b + a) / 2.0
    return middle[:, None] + half[:, None] * nodes[None, :], half[:, None] * weights[None, :]


def coefficients(mu_prime, w_norm, theta, kinks=(), tol=1e-13, max_rounds=60):
    """(A, B, C1, C2) for one point (||w|| = ``w_norm`` > 0, ``theta`` in [0, pi]); ``mu_prime`` a
    vectorised function of a host NumPy array."""
    with backend.use("numpy"):  # mu' (written with stevq.ops) runs on the host nodes, whatever the backend
        return _coefficients(mu_prime, float(w_norm), theta, kinks, tol, max_rounds)


def _coefficients(mu_prime, s, theta, kinks, tol, max_rounds):
    sin, cos = math.sin(theta), math.cos(theta)
    cot = cos / sin if sin > 1e-300 else (math.inf if cos > 0 else -math.inf)
    cuts = {-LIMIT, 0.0, LIMIT, *(k / s for k in kinks if -LIMIT < k / s < LIMIT)}
    width = 1.0 / abs(cot) if cot != 0 else math.inf  # Phi(u cot) and phi(u cot) change over |u| ~ width
    if width < 1.0:  # near theta = 0 or pi: a narrow feature at u = 0 that both rules could step over
        cuts |= {sign * width * 2.0**j for sign in (-1, 1) for j in range(0, 40) if width * 2.0**j < LIMIT}
    cuts = sorted(cuts)
    a, b = np.array(cuts[:-1]), np.array(cuts[1:])
    total = np.zeros(4)
    for _ in range(max_rounds):
        estimates = []
        for rule in (_LOW, _HIGH):
            points, weights = _rule(rule, a, b)
            estimates.append(np.sum(_integrands(mu_prime, s, cot, points) * weights[None], axis=-1))  # (4, k)
        coarse, fine = estimates
        error = np.max(np.abs(fine - coarse), axis=0)
        done = (error <= tol * np.maximum((b - a) / (2 * LIMIT), 1e-6)) | (b - a < 1e-12)
        total += fine[:, done].sum(axis=1)
        a, b = a[~done], b[~done]
        if a.size == 0:
            return tuple(total)
        middle = (a + b) / 2.0
        a, b = np.concatenate([a, middle]), np.concatenate([middle, b])
    raise ArithmeticError(f"quadrature did not converge in {max_rounds} bisections (||w|| = {s:g}, theta = {theta:g})")


def expected_coarse(mu_prime, v, v_star, w_hat, e_perp, w_norm, theta, kinks=()):
    """E_Z g_mu at one point (host NumPy arrays: v (m,), v_star (m,), the unit vectors w^ and e_perp
    (n,)), from ``coefficients``."""
    A, B, C1, C2 = coefficients(mu_prime, w_norm, theta, kinks)
    vv, v_vs = float(v @ v), float(v @ v_star)
    ones_v, ones_vs = float(v.sum()), float(v_star.sum())
    along = 0.5 * A * (ones_v**2 - vv - ones_v * ones_vs + v_vs) + B * vv - C1 * v_vs
    return along * w_hat - C2 * v_vs * e_perp


def expected_coarse_batch(mu_prime, kinks, v, v_star, w_hat, e_perp, w_norm, theta):
    """``expected_coarse`` at every point of broadcast leading axes (host NumPy arrays)."""
    lead = np.broadcast_shapes(v.shape[:-1], w_hat.shape[:-1])
    v = np.broadcast_to(v, lead + v.shape[-1:])
    w_hat, e_perp = (np.broadcast_to(x, lead + x.shape[-1:]) for x in (w_hat, e_perp))
    w_norm, theta = (np.broadcast_to(x, lead) for x in (w_norm, theta))
    out = np.empty(lead + w_hat.shape[-1:])
    for index in np.ndindex(*lead):
        out[index] = expected_coarse(
            mu_prime, v[index], v_star, w_hat[index], e_perp[index], float(w_norm[index]), float(theta[index]), kinks
        )
    return out
