"""The rotation trick (Fifty et al. 2024, "Restructuring Vector Quantization with the Rotation
Trick", arXiv 2410.06424): an alternative to the straight-through estimator.

The STE copies the gradient at z_q to z_e unchanged. The rotation trick instead writes z_q as a
rotation and rescaling of z_e, treats the rotation and the scale as constants, and lets the gradient
flow back through them. With e = z_e, q = z_q, and (all under stop-gradient)

    e^ = e / ||e||,   q^ = q / ||q||,   r = (e^ + q^) / ||e^ + q^||,
    R  = I - 2 r r^T + 2 q^ e^^T          (R e^ = q^: a rotation in the plane of e and q)

    forward:  out = sg(||q|| / ||e||) R e = q
    backward: dL/de = (||q|| / ||e||) R^T dL/dout
                    = (||q|| / ||e||) (g - 2 r (r . g) + 2 e^ (q^ . g)),    dL/dq = 0

so the gradient keeps its angle to e the way q keeps its angle to e. R is never formed as a D x D
matrix; R^T g costs two dot products per vector.
"""

from autograd.extend import defvjp, primitive

from .. import validate
from ..backend import namespace_of
from .core import _unit_rows


@primitive
def _rotate_onto_code(z_e, z_q):
    """Forward value z_q exactly (the rotated, rescaled z_e equals z_q up to rounding only)."""
    return z_q


def _rotation_vjp(ans, z_e, z_q):
    xp = namespace_of(z_e)
    e_hat, q_hat = _unit_rows(z_e), _unit_rows(z_q)
    r = _unit_rows(e_hat + q_hat)  # zero when q = -e: then R = I + 2 q^ e^^T, still maps e^ to q^
    norm_e = xp.sqrt(xp.sum(z_e * z_e, axis=-1, keepdims=True))
    norm_q = xp.sqrt(xp.sum(z_q * z_q, axis=-1, keepdims=True))
    scale = norm_q / xp.where(norm_e > 0, norm_e, xp.ones_like(norm_e))

    def vjp(g):
        along_r = xp.sum(r * g, axis=-1, keepdims=True)
        along_q = xp.sum(q_hat * g, axis=-1, keepdims=True)
        rotated = scale * (g - 2.0 * r * along_r + 2.0 * e_hat * along_q)
        return xp.where(norm_e > 0, rotated, g)

    return vjp


defvjp(_rotate_onto_code, _rotation_vjp, None)


def rotation_trick(z_e, z_q):
    """Quantizer output with the rotation-trick gradient: forward z_q exactly, backward
    dL/dz_e = (||z_q|| / ||z_e||) R^T dL/dout for each vector (last axis), nothing to the codebook.

    ``z_e`` and ``z_q`` have the same shape (..., D). A vector z_e = 0 has no direction to rotate
    (and ||q|| / ||e|| is infinite): its gradient falls back to the STE's, dL/dz_e = dL/dout.
    """
    validate.embedding_pair(z_e, z_q)
    validate.array(z_e, "z_e")
    return _rotate_onto_code(z_e, z_q)
