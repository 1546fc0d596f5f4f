"""Case (c): nearest-code lookup, 65,536 vectors of dimension 64 against 1,024 codes, float32.

The floor is the matmul Z @ C^T of the same size (65,536 x 64 times 64 x 1,024), which any exact
nearest-code search must do, written into a preallocated (N, K) buffer (``out=``), warm from the
calls before: it measures the arithmetic, not the page faults of a fresh 256 MB array.
``stevq.vq.nearest_code`` should cost little more. PyTorch's nearest code as a PyTorch user
writes it (``torch.addmm(||c||^2, Z, C^T, alpha=-2).argmin(1)``, the scores in a preallocated
buffer) and its matmul floor are shown for reference when torch is installed. Every contender's
indices are compared with stevq's.
"""

import numpy as np

SIZES = {"full": (65536, 64, 1024), "small": (64, 4, 16)}  # vectors, dimension, codes


def problem(small=False, seed=0):
    n, dim, codes = SIZES["small" if small else "full"]
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, dim)).astype(np.float32), rng.standard_normal((codes, dim)).astype(np.float32)


def stevq_lookup(small=False):
    import stevq
    from stevq import vq

    z_host, codebook_host = problem(small)
    z, codebook = stevq.asarray(z_host), stevq.asarray(codebook_host)
    return lambda: vq.nearest_code(z, codebook)


def numpy_matmul(small=False):
    z, codebook = problem(small)
    codebook_t = np.ascontiguousarray(codebook.T)
    scores = np.empty((z.shape[0], codebook.shape[0]), np.float32)

    def matmul():
        np.matmul(z, codebook_t, out=scores)

    return matmul


def torch_lookup(small=False):
    import torch

    z_host, codebook_host = problem(small)
    z, codebook = torch.from_numpy(z_host), torch.from_numpy(codebook_host)
    scores = torch.empty((z.shape[0], codebook.shape[0]))

    def lookup():
        with torch.no_grad():
            norms = (codebook * codebook).sum(1)
            return torch.addmm(norms, z, codebook.T, alpha=-2, out=scores).argmin(1).numpy()

    return lookup


def torch_matmul(small=False):
    import torch

    z_host, codebook_host = problem(small)
    z, codebook_t = torch.from_numpy(z_host), torch.from_numpy(codebook_host).T.contiguous()
    scores = torch.empty((z.shape[0], codebook_t.shape[1]))

    def matmul():
        with torch.no_grad():
            torch.mm(z, codebook_t, out=scores)

    return matmul


def contenders(torch_available):
    found = {"stevq": stevq_lookup, "NumPy matmul, preallocated": numpy_matmul}
    if torch_available:
        found["PyTorch addmm + argmin"] = torch_lookup
        found["PyTorch matmul, preallocated"] = torch_matmul
    return found


AGREEMENT = "same index"


def agree(name, result, reference):
    """Fraction of positions where ``result`` (indices; the floors return none) equals stevq's indices."""
    if result is None:
        return None
    return float(np.mean(np.asarray(result) == np.asarray(reference)))


TITLE = "(c) nearest code, 65,536 x 64 vs 1,024 codes (float32)"
TARGETS = (("NumPy matmul, preallocated", 1.05),)
