"""Theory of the straight-through estimator on toy problems, in closed form and by simulation.

``yin2019``: the two-layer network with a binary activation of Yin et al. (ICLR 2019), its
population loss, the expected coarse gradients of three STEs, its landscape and coarse gradient
descent.
"""
from . import yin2019
