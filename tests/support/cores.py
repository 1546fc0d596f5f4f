"""How many processes one test may run at once: the machine's cores shared among pytest-xdist's
workers. Kernels started faster than the cores can serve them miss Jupyter's start-up timeout
(seen in CI: "Kernel didn't respond in 60 seconds" while two workers each ran two kernels)."""

import os
import shutil


def share(at_most=2):
    """This worker's share of the cores, between 1 and ``at_most``."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, min(at_most, (os.cpu_count() or 1) // workers))


def in_own_network(argv):
    """(command, isolated): ``argv`` in a network namespace of its own, loopback only, where this runs
    as root with ``unshare`` and ``ip`` (as ``course.py grade`` runs each submission). Kernels started
    at the same time can then not collide on a port (jupyter_client picks a free port, the kernel binds
    it later), so such commands may run two at a time beside another worker: each waits for its
    kernel part of the time."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if os.geteuid() != 0 or not (unshare and ip):
        return list(map(str, argv)), False
    return [unshare, "--net", "--", "/bin/sh", "-c", f'{ip} link set lo up && exec "$@"', "sh", *map(str, argv)], True
