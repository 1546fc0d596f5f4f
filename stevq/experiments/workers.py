"""Where the command line computes a run's parts: executors for ``runner.run(..., executor=...)``.

``processes(jobs)``: ``jobs`` local worker processes started with the 'spawn' method, one BLAS
thread each (set in their environment before NumPy loads), ``jobs = 1`` included: OpenBLAS's
thread count changes the last bits of a float32 product, so only the same thread count everywhere
gives the same numbers. A script that uses it needs the usual ``if __name__ == "__main__":``
guard (the command line has it). Ctrl-C or SIGTERM (``kill``, a batch system's time limit) stops
the workers.

``dask(address)``: the workers of the Dask scheduler at ``address`` (``tcp://HOST:PORT``), with the
optional ``[cluster]`` dependencies (``pip install "dask[distributed]"``). Dask's nannies start
their workers with one BLAS thread (its ``distributed.nanny.pre-spawn-environ``), the workers
must import the same stevq, and the run directory must be on a file system they all see: each
part is written where it runs, and a part that continues another reads that one's files.
"""

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import threading

from stevq import allocator, backend, validate
from stevq.experiments import provenance

ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def default_jobs():
    """The number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def processes(jobs):
    """A pool of ``jobs`` spawned worker processes on the active backend, shut down at the end of
    the block: the parts still running finish (and are kept), or on Ctrl-C are stopped."""
    context = multiprocessing.get_context("spawn")
    with _environment(ONE_THREAD), _sigterm_as_interrupt():
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=context, initializer=_worker_start, initargs=(backend.name(),)
        )
        try:
            yield pool
        except KeyboardInterrupt:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def dask(address, timeout=30):
    """The executor of a ``distributed.Client`` connected to the scheduler at ``address``; a
    ``validate.ArgumentError`` for ``executor`` when Dask is missing or the scheduler does not answer
    within ``timeout`` seconds."""
    try:
        import distributed
    except ImportError:
        raise validate.ArgumentError(
            "executor", 'Dask is not installed here: pip install "stevq[cluster]" (or "dask[distributed]")'
        ) from None
    try:
        client = distributed.Client(address, set_as_default=False, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as err:
        raise validate.ArgumentError("executor", f"cannot reach a Dask scheduler at {address} ({err})") from None
    with client:
        yield client.get_executor(pure=False)  # a part run again (resumed) is computed again


def _worker_start(backend_name):
    allocator.keep_freed_memory()  # as in the main process (stevq.allocator)
    backend.use(backend_name)
    provenance.commit()  # read now, when the code this worker runs was loaded


@contextlib.contextmanager
def _environment(values):
    """Set environment variables for the processes started inside the block, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """In the main thread, SIGTERM stops the workers as Ctrl-C does; without this the parent would
    die and its spawned workers run on."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
