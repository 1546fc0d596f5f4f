"""Timing and memory measurement shared by the benchmark scripts.

Wall time (``time.perf_counter``) and CPU time of the process (``time.process_time``, all threads
together) are taken for every call. Contenders take turns (round robin), so a slow spell of a shared
machine hits them all alike, and the median over repeats is reported.

Peak memory is measured per contender in a fresh subprocess (see ``run.py --memory-of``): after
set-up and one warm-up step, the kernel's resident-set high-water mark is reset (``/proc/self/clear_refs``),
two more steps run, and the peak resident set size (VmHWM) minus the resident size before those steps
is the extra memory a step needs. The same measure for every library (NumPy, autograd, PyTorch
allocations alike), at page granularity. Where clear_refs cannot be written, the whole-process peak
``resource.getrusage(...).ru_maxrss`` is reported instead and marked so.
"""
import os
import resource
import statistics
import time


def set_threads(threads):
    """Pin the BLAS / OpenMP libraries to ``threads`` threads. Must run before NumPy is imported."""
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)


def race(contenders, repeats, warmup=2):
    """Median wall and CPU seconds per call of each contender (a dict name -> callable), called in turns.

    Returns {name: {"wall": seconds, "cpu": seconds}}.
    """
    for call in contenders.values():
        for _ in range(warmup):
            call()
    wall = {name: [] for name in contenders}
    cpu = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, call in contenders.items():
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            call()
            cpu[name].append(time.process_time() - cpu_start)
            wall[name].append(time.perf_counter() - wall_start)
    return {name: {"wall": statistics.median(wall[name]), "cpu": statistics.median(cpu[name])} for name in contenders}


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


def stevq_adam_step(loss, params, lr):
    """A training step of ``loss(params)`` in stevq: value and gradients, one Adam update.
    Returns ``step() -> loss value`` (float); the optimizer state lives in the closure."""
    from stevq import autodiff, optim
    loss_and_grads = autodiff.value_and_grad(loss)
    opt_init, opt_update, get_params = optim.adam(lr)
    state = {"opt": opt_init(params), "step": 0}

    def step():
        value, grads = loss_and_grads(get_params(state["opt"]))
        state["opt"] = opt_update(state["step"], grads, state["opt"])
        state["step"] += 1
        return float(value)
    return step
