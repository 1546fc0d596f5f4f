"""stevq.allocator: glibc's malloc keeps freed memory, so a repeated step stops taking page faults."""

import subprocess
import sys
import textwrap

import pytest

from stevq import allocator

# A "step" that allocates, touches and frees 8 MiB arrays: above glibc's first mmap threshold, so
# by default each one is fresh pages from the kernel (or heap memory trimmed and refaulted).
STEP_FAULTS = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from stevq import allocator
    if sys.argv[1] == "keep":
        assert allocator.keep_freed_memory() is True
    def step():
        a = np.ones(2 << 20, dtype=np.float32)
        b = a * 2.0
        c = np.ones(3 << 20, dtype=np.float32)
        return float(b[-1] + c[-1])
    step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode):
    done = subprocess.run([sys.executable, "-c", STEP_FAULTS, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


@pytest.mark.skipif(
    allocator._mallopt() is None, reason="the C library is not glibc: keep_freed_memory changes nothing"
)
def test_kept_memory_removes_the_page_faults_of_a_repeated_step():
    default, kept = _faults("default"), _faults("keep")
    # 20 steps x 3 arrays of 8-12 MiB: thousands of 4 KiB pages each time by default
    assert default > 2000, default
    assert kept < 100, kept


def test_keep_freed_memory_checks_its_argument():
    for bad in (-1, 1 << 20, 1.5e9, "1G", True, None):
        with pytest.raises(ValueError, match="keep: expected an int number of bytes >= "):
            allocator.keep_freed_memory(bad)


def test_worker_processes_keep_freed_memory():
    """A worker process of ``--jobs`` sets it when it starts (as ``python -m stevq run`` does)."""
    code = textwrap.dedent("""
        import sys
        from stevq import allocator
        from stevq.experiments import workers
        workers._worker_start("numpy")
        print(allocator.kept())
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    expected = str(allocator.DEFAULT_KEEP) if allocator._mallopt() is not None else "None"
    assert done.stdout.strip() == expected
