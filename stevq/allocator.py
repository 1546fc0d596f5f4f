"""Keeping freed memory for the next training step (glibc's malloc; elsewhere nothing changes).

A training step allocates and frees the same large arrays every time: activations, patch matrices,
gradients. glibc's malloc serves a block above its mmap threshold (128 KiB at start, raised
automatically up to 32 MiB) with fresh pages from the kernel, and gives freed memory at the top of
its heap back to the kernel once more than the trim threshold is free. Either way the next step's
arrays land on new pages, and the kernel zero-fills each 4 KiB page when it is first touched (a
minor page fault). On stevq's conv VQ-VAE step these faults were a quarter to a third of the time
(``benchmarks/README.md``, "Page faults").

``keep_freed_memory()`` fixes both thresholds (``mallopt``): blocks up to 32 MiB (the largest mmap
threshold glibc accepts) come from the heap, and the heap is not trimmed until more than ``keep``
bytes are free. After the first step the arrays of every later step reuse the same memory, and the
page faults go away. The price: the process keeps its peak heap (up to ``keep`` bytes) after the
arrays are freed, as PyTorch's and JAX's caching allocators do on GPUs.

It changes the whole process, so the library never calls it on import: ``python -m stevq run``
calls it (and its worker processes), and programs may. PyTorch's CPU steps gain from it too; the
benchmarks give every contender the same setting and say so.
"""

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems
DEFAULT_KEEP = 1 << 30

_state = {"kept": None}


def _mallopt():
    """glibc's ``mallopt``, or None where the C library is not glibc (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  only glibc has it; musl's mallopt does nothing
        return libc.mallopt
    except (OSError, AttributeError):
        return None


def keep_freed_memory(keep=DEFAULT_KEEP):
    """Let malloc keep up to ``keep`` bytes of freed memory for reuse; True where applied.

    ``keep`` is an int number of bytes, at least 32 MiB. Returns False (and changes nothing) where
    the C library is not glibc. Calling it again with another ``keep`` sets the new limit."""
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < MMAP_THRESHOLD_MAX:
        raise ValueError(f"keep: expected an int number of bytes >= {MMAP_THRESHOLD_MAX} (32 MiB), got {keep!r}")
    mallopt = _mallopt()
    if mallopt is None:
        return False
    keep = min(keep, 2**31 - 1)  # mallopt takes a C int
    applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, keep))
    _state["kept"] = keep if applied else None
    return applied


def kept():
    """The ``keep`` of the last successful ``keep_freed_memory`` call in this process, or None."""
    return _state["kept"]
