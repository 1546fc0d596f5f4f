"""How many processes one test may run at once: the machine's cores shared among pytest-xdist's
workers. Kernels started faster than the cores can serve them miss Jupyter's start-up timeout
(seen in CI: "Kernel didn't respond in 60 seconds" while two workers each ran two kernels)."""

import os


def share(at_most=2):
    """This worker's share of the cores, between 1 and ``at_most``."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, min(at_most, (os.cpu_count() or 1) // workers))
