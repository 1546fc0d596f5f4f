"""Theory of the straight-through estimator on toy problems, in closed form and by simulation.

``yin2019``: the two-layer network with a binary activation of Yin et al. (ICLR 2019), its
population loss, the expected coarse gradients of three STEs, its landscape and coarse gradient
descent.

``covariate_shift``: the toy covariate shift of Huh et al. (ICML 2023): fixed embeddings, codes
that start elsewhere, the codebook loss alone, under three parameterisations of the codebook.
"""

from . import yin2019
from .covariate_shift import covariate_shift
