"""How many processes one test may run at once: the machine's cores shared among pytest-xdist's
workers. Kernels started faster than the cores can serve them miss Jupyter's start-up timeout
(seen in CI: "Kernel didn't respond in 60 seconds" while two workers each ran two kernels)."""

import functools
import os
import shutil


def share(at_most=2):
    """This worker's share of the cores, between 1 and ``at_most``."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, min(at_most, (os.cpu_count() or 1) // workers))


@functools.cache
def _unshare_and_ip():
    """The paths of ``unshare`` and ``ip`` where this runs as root and has both, else None."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    return (unshare, ip) if os.geteuid() == 0 and unshare and ip else None


def in_own_network(argv):
    """``argv`` in a network namespace of its own, loopback only, where this runs as root with
    ``unshare`` and ``ip`` (as ``course.py grade`` runs each submission); else ``argv`` as it is."""
    argv, found = list(map(str, argv)), _unshare_and_ip()
    if found is None:
        return argv
    unshare, ip = found
    return [unshare, "--net", "--", "/bin/sh", "-c", f'{ip} link set lo up && exec "$@"', "sh", *argv]


def kernels_at_once():
    """How many commands that each start a Jupyter kernel (``in_own_network``) may run at once: two
    when each has a network of its own, even beside another worker (kernels started together cannot
    collide on a port, which jupyter_client picks before the kernel binds it, and each waits for its
    kernel part of the time); else this worker's share of the cores."""
    return 2 if _unshare_and_ip() is not None else share(at_most=2)
