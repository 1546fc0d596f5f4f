"""Case (c): nearest-code lookup, 65,536 vectors of dimension 64 against 1,024 codes, float32.

The floor is the bare matmul Z @ C^T of the same size (65,536 x 64 times 64 x 1,024), which any
exact nearest-code search must do; ``stevq.vq.nearest_code`` should cost little more. PyTorch's
argmin(||c||^2 - 2 Z C^T) and its bare matmul are shown for reference when torch is installed.
Every contender's indices are compared with stevq's.
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
    return lambda: z @ codebook_t


def torch_lookup(small=False):
    import torch
    z_host, codebook_host = problem(small)
    z, codebook = torch.from_numpy(z_host), torch.from_numpy(codebook_host)

    def lookup():
        with torch.no_grad():
            return torch.argmin((codebook * codebook).sum(1) - 2.0 * (z @ codebook.T), dim=1).numpy()
    return lookup


def torch_matmul(small=False):
    import torch
    z_host, codebook_host = problem(small)
    z, codebook_t = torch.from_numpy(z_host), torch.from_numpy(codebook_host).T.contiguous()

    def matmul():
        with torch.no_grad():
            return z @ codebook_t
    return matmul


def contenders(torch_available):
    found = {"stevq": stevq_lookup, "NumPy matmul (floor)": numpy_matmul}
    if torch_available:
        found["PyTorch argmin"] = torch_lookup
        found["PyTorch matmul"] = torch_matmul
    return found


def agree(name, result, reference):
    """Fraction of positions where ``result`` (indices; matmuls are skipped) equals stevq's indices."""
    if "matmul" in name:
        return None
    return float(np.mean(np.asarray(result) == np.asarray(reference)))


TITLE = "(c) nearest code, 65,536 x 64 vs 1,024 codes (float32)"
TARGETS = (("NumPy matmul (floor)", 1.2),)
