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

while dl/dv = sigma(Z w) r is exact. This package gives f, its gradient and E_Z g_mu in closed
form (``closed_forms``), the critical points of f (``landscape``), the sample loss and the coarse
gradient computed by stevq's engine (through ``stevq.ste``) and coarse gradient descent
(``descent``). Formulas: docs/reference/yin2019.md; each one is checked against Monte Carlo in
tests/test_yin2019.py.

Shapes: v is (..., m), w is (..., n), v_star (m,), w_star (n,); leading axes are independent
parameter points (e.g. many runs at once). Computations are in float64 in the namespace of the
inputs (any backend); the clipped-ReLU expectation evaluates the normal CDF on the host, because the
array API has no erf.
"""

from .closed_forms import angle, expected_coarse_grad, population_grad, population_loss
from .descent import F_INCREASE_RTOL, Trajectory, coarse_grad, coarse_gradient_descent, sample_loss
from .landscape import has_spurious_minima, saddle_point, spurious_minimum

__all__ = [
    "F_INCREASE_RTOL",
    "Trajectory",
    "angle",
    "coarse_grad",
    "coarse_gradient_descent",
    "expected_coarse_grad",
    "has_spurious_minima",
    "population_grad",
    "population_loss",
    "saddle_point",
    "sample_loss",
    "spurious_minimum",
]
