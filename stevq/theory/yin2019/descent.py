"""Yin et al.'s model simulated: the sample loss and the coarse gradient computed by stevq's engine
(through ``stevq.ste.binary_step``), and coarse gradient descent (Algorithm 1) on the closed forms or
on sampled batches. The model: ``stevq.theory.yin2019``.
"""

import dataclasses

import numpy as np
from autograd import grad

from ... import ops, validate
from ...backend import asarray, to_numpy
from ...ste import binary_step
from .closed_forms import (
    _expected_coarse,
    _float64,
    _geometry,
    _grad_v,
    _loss,
    _params,
    _surrogate_of,
    _zero_network_loss,
)

# ----------------------------------------------------------------------------------- simulation


def _check_batch(v, w, Z, v_star, w_star):
    v, w, v_star, w_star = (
        _float64(x, name, ndim=1) for x, name in ((v, "v"), (w, "w"), (v_star, "v_star"), (w_star, "w_star"))
    )
    Z = _float64(Z, "Z", ndim=3)
    if tuple(Z.shape[1:]) != (v_star.shape[0], w_star.shape[0]):
        raise ValueError(
            f"Z: expected shape (B, m, n) = (any, {v_star.shape[0]}, {w_star.shape[0]}), got {tuple(Z.shape)}"
        )
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
    return Trajectory(
        f=f,
        theta=np.asarray(theta),
        w_norm=np.asarray(w_norm),
        v_distance=np.asarray(v_distance),
        f_increased=f[1:] - f[:-1] > F_INCREASE_RTOL * _zero_network_loss(v_star),
        v=v,
        w=w,
    )


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
