"""The kernels of stevq.vq's public functions, without their input checks.

Every public function of stevq.vq checks its inputs (shapes, dtypes, backends and, on arrays that
are not traced, their values: NaN, inf, index ranges) and then calls its kernel. A training loop
checks its data once where it enters and reads one loss per step; the maintenance it runs between
steps (EMA, dead codes, alternating refinement, running statistics) calls the kernels below, with
the same arguments and the same results, and no value is read back from the device.

    from stevq.vq import unchecked
    state, codebook = unchecked.ema_update(state, z_e, indices, decay)
"""

from .codebook import _ema_init as ema_init
from .codebook import _ema_reset_codes as ema_reset_codes
from .codebook import _ema_update as ema_update
from .codebook import _replace_dead_codes as replace_dead_codes
from .codebook import _track_usage as track_usage
from .core import _codebook_loss as codebook_loss
from .core import _nearest_code as nearest_code
from .fixes import _affine_codebook as affine_codebook
from .fixes import _refine_codebook as refine_codebook
from .fixes import _running_affine_codebook as running_affine_codebook
from .fixes import _update_running_affine as update_running_affine
from .layer import _layer_codebook as layer_codebook

__all__ = [
    "affine_codebook",
    "codebook_loss",
    "ema_init",
    "ema_reset_codes",
    "ema_update",
    "layer_codebook",
    "nearest_code",
    "refine_codebook",
    "replace_dead_codes",
    "running_affine_codebook",
    "track_usage",
    "update_running_affine",
]
