"""Timing, memory and machine reports shared by the benchmark scripts.

Every contender runs in a fresh process of its own (``run.py --child``), so that no contender's
allocations, caches or thread pools change another's times; the parent starts the processes in a
fixed order (stevq first, as each case lists them), ``--rounds`` times over, and pools the repeats.
Each process builds its step, runs it once (the first result is kept to compare the contenders),
warms up, then times ``repeats`` calls: wall time (``time.perf_counter``) and CPU time of the
process (``time.process_time``, all threads together). Reported: the median and the spread
(25th-75th percentile) of the pooled calls.

Peak memory, in the same process after the timed calls: the kernel's resident-set high-water mark
is reset (``/proc/self/clear_refs``), two more steps run, and the peak resident set size (VmHWM)
minus the resident size before those steps is the extra memory a step needs. The same measure for
every library (NumPy, autograd, PyTorch allocations alike), at page granularity. Where clear_refs
cannot be written, the whole-process peak ``ru_maxrss`` is reported instead and marked so.
"""

import os
import resource
import statistics
import time

# the variables that choose OpenBLAS's kernels and threads; printed with every table
OPENBLAS_KERNEL_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def set_threads(threads):
    """Pin the BLAS / OpenMP libraries to ``threads`` threads. Must run before NumPy is imported."""
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)


def time_calls(call, repeats, warmup=2):
    """(wall seconds, CPU seconds): two lists of ``repeats`` timed calls, after ``warmup`` calls."""
    for _ in range(warmup):
        call()
    wall, cpu = [], []
    for _ in range(repeats):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        call()
        cpu.append(time.process_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    return wall, cpu


def spread(values):
    """(median, 25th percentile, 75th percentile) of a list of numbers."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    quartiles = statistics.quantiles(values, n=4, method="inclusive")
    return statistics.median(values), quartiles[0], quartiles[2]


def _status_kilobytes(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def step_memory(step, steps=2):
    """(megabytes, method): extra resident memory while ``step`` runs ``steps`` times (after one warm-up)."""
    step()
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # "5" resets the peak resident set size to the current one
        before = _status_kilobytes("VmRSS")
        for _ in range(steps):
            step()
        return (_status_kilobytes("VmHWM") - before) / 1024.0, "peak RSS - RSS before the step"
    except OSError:
        for _ in range(steps):
            step()
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "whole-process peak RSS (ru_maxrss)"


def traced_peak(step):
    """Megabytes: the peak of NumPy's allocations during one call of ``step`` above those alive before
    it (tracemalloc, which NumPy reports its array buffers to). Unlike the resident set, this does not
    depend on what the allocator kept from earlier calls; it sees NumPy's allocations only."""
    import tracemalloc

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        step()
        return (tracemalloc.get_traced_memory()[1] - before) / 2**20
    finally:
        tracemalloc.stop()


def blas_report(torch=None):
    """One line per numerical library: NumPy's BLAS, its version and kernel (threadpoolctl), PyTorch's
    BLAS and CPU capability, and the OPENBLAS_* variables of this process."""
    lines = []
    try:
        import threadpoolctl

        for pool in threadpoolctl.threadpool_info():
            if pool.get("user_api") == "blas":
                lines.append(
                    f"BLAS {pool.get('internal_api')} {pool.get('version')}, kernel "
                    f"{pool.get('architecture', '?')}, {pool.get('num_threads')} thread(s), "
                    f"{os.path.basename(pool.get('filepath', ''))}"
                )
    except ImportError:
        lines.append("BLAS: threadpoolctl not installed (pip install -e .[bench]); kernel not reported")
    if torch is not None:
        config = torch.__config__.show()
        blas = next(
            (part.split("=")[1] for part in config.replace(",", " ").split() if part.startswith("BLAS_INFO=")), "?"
        )
        lines.append(
            f"PyTorch {torch.__version__}: BLAS {blas}, CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} thread(s)"
        )
    variables = {name: value for name, value in sorted(os.environ.items()) if name.startswith("OPENBLAS_")}
    lines.append("OPENBLAS_* variables: " + (", ".join(f"{k}={v}" for k, v in variables.items()) or "none set"))
    return lines


def stevq_adam_step(loss, params, lr):
    """A training step of ``loss(params)`` in stevq: value and gradients, one Adam update that
    writes into the previous state's arrays (``donate=True``: the old state is never used again).
    Returns ``step() -> loss value`` (float); the optimizer state lives in the closure."""
    from stevq import optim

    return stevq_training_step(loss, params, optim.adam(lr, donate=True))


def stevq_training_step(loss, params, optimizer):
    """A training step of ``loss(params)`` in stevq: value and gradients, one update of ``optimizer``
    (an ``(init, update, get_params)`` triple of ``stevq.optim``). Returns ``step() -> loss value``
    (float); the optimizer state lives in the closure."""
    from stevq import autodiff

    loss_and_grads = autodiff.value_and_grad(loss)
    opt_init, opt_update, get_params = optimizer
    state = {"opt": opt_init(params), "step": 0}

    def step():
        value, grads = loss_and_grads(get_params(state["opt"]))
        state["opt"] = opt_update(state["step"], grads, state["opt"])
        state["step"] += 1
        return float(value)

    return step
