"""Vector quantization made explicit: nearest codes, straight-through outputs, the VQ-VAE losses
and the codebook gradient written out; EMA, dead-code replacement and k-means++; the three fixes
of Huh et al. 2023; the rotation trick; a small VQ layer. (The toy covariate shift, which measures
with ``stevq.metrics``, is ``stevq.theory.covariate_shift``.) Formulas: docs/reference/vq.md.
``vq.unchecked``: the kernels of these functions without their input checks, for training loops.
"""

from . import unchecked  # noqa: E402  (the kernels, for training loops)
from .codebook import (
    ema_init,
    ema_reset_codes,
    ema_update,
    kmeans_farthest,
    kmeans_plus_plus,
    replace_dead_codes,
    track_usage,
)
from .core import (
    VQ_LOSS_CONVENTIONS,
    as_rows,
    codebook_grad,
    codebook_loss,
    commitment_loss,
    lookup,
    nearest_code,
    quantize,
    squared_distances,
    straight_through,
    vq_loss,
)
from .fixes import (
    Refinement,
    affine_codebook,
    init_affine,
    init_running_affine,
    refine_codebook,
    running_affine_codebook,
    sync_straight_through,
    update_running_affine,
)
from .layer import VectorQuantizer, layer_codebook
from .rotation import rotation_trick
