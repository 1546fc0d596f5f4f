"""Case (e): case (a)'s MLP VQ-VAE step at batch 4096 with K = 16,384 codes, and its codebook gradient alone.

At this size a codebook gradient through a one-hot matrix, one_hot(q)^T @ g, costs O(N K D) time
and an N x K array (256 MB in float32); ``ops.take_rows``'s VJP accumulates the same sums directly
(O(N D + K D)). The step is raced against PyTorch as in case (a); two more rows time the codebook
gradient alone, d L_cb / d C for N = 4096 encoder outputs and their nearest codes: stevq's
(autograd through ``vq.codebook_loss(z_e, ops.take_rows(C, q))``) and the explicit one-hot formula
``vq.codebook_grad`` (the teaching version); their "step MB" is the extra peak memory of the
gradient. Their ratio and check columns compare them with each other.
"""

import numpy as np
import vqvae_mlp

SIZES = {"full": (784, 512, 64, 16384, 4096), "small": (12, 8, 4, 40, 16)}  # input, hidden, D, K, batch
FAST, ONE_HOT = "codebook gradient, stevq", "codebook gradient, one-hot formula"


def _codebook_problem(small):
    _, _, dim, codes, batch = SIZES["small" if small else "full"]
    rng = np.random.default_rng(2)
    z_e = rng.standard_normal((batch, dim)).astype(np.float32)
    codebook = (0.5 * rng.standard_normal((codes, dim))).astype(np.float32)
    return z_e, codebook


def codebook_gradient(small=False):
    import stevq
    from stevq import autodiff, ops, vq

    z_e, codebook = (stevq.asarray(a) for a in _codebook_problem(small))
    indices = vq.nearest_code(z_e, codebook)
    gradient = autodiff.grad(lambda c: vq.codebook_loss(z_e, ops.take_rows(c, indices)))
    return lambda: gradient(codebook)


def one_hot_codebook_gradient(small=False):
    import stevq
    from stevq import vq

    z_e, codebook = (stevq.asarray(a) for a in _codebook_problem(small))
    indices = vq.nearest_code(z_e, codebook)
    return lambda: vq.codebook_grad(z_e, indices, codebook.shape[0], codebook)


def contenders(torch_available):
    size = lambda small: SIZES["small" if small else "full"]
    found = {"stevq": lambda small, sizes=None: vqvae_mlp.stevq_step(small, sizes or size(small))}
    if torch_available:
        found["PyTorch"] = lambda small, sizes=None: vqvae_mlp.torch_step(small, sizes or size(small))
    found[FAST] = codebook_gradient
    found[ONE_HOT] = one_hot_codebook_gradient
    return found


REFERENCES = {FAST: ONE_HOT, ONE_HOT: FAST}  # rows compared with each other, not with the step
REPEATS = {"stevq": 5, "PyTorch": 5, ONE_HOT: 3}  # the steps take 0.3-1 s, the one-hot gradient 0.5 s
TITLE = "(e) MLP VQ-VAE 784-512-64, K = 16,384 x 64, batch 4096: training step; codebook gradient alone"
TARGETS = (("PyTorch", 1.0),)
MEMORY_TARGETS = ((FAST, 64),)
TRACED = (FAST, ONE_HOT)  # their memory also as the peak of NumPy's allocations (timing.traced_peak)
