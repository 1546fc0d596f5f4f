"""The experiments' one training loop and their data container.

``fit`` runs the part every training run shares (``quant_act``'s networks, ``vq_training``'s
quantizer variants), with what differs given as callbacks:

    for n = 1 .. steps:                     (a progress bar over the steps)
        numbers = compute(n, next(batches))   forward and backward on the n-th batch: the 0-d device
                                              arrays that must be finite (the loss, ...)
        one read-back of ``numbers``; NaN or inf stops the run (the NaN guard below)
        update(n)                             the optimizer's step, the quantizer's maintenance
        at n = 0 (before any step), every ``record_every`` steps, the last step and ``record_at``:
            record(n, numbers, last_good) -> {name: value}, measured after step n (numbers: None at 0)

The guard raises ``runio.NonFiniteError`` naming the step and the last good numbers: those of the
last good step, then those of the last record (``recorded_at``: its step). On a GPU a step reads
its numbers back to the host in one transfer, and nothing else: a record reads what it measures.
Returns the records as ``{"step": [...], name: [...]}``, one entry per record.
"""

import numpy as np

from stevq import runio
from stevq.backend import asarray, is_array, namespace_of, to_numpy


class Data:
    """Inputs ``x`` and (for classification) integer labels ``y`` on the active backend."""

    def __init__(self, x, y=None, dtype="float32"):
        # host data is moved to the active backend; an array already there stays (no host round trip)
        self.x = asarray(x if is_array(x) else np.asarray(x), dtype)
        self.y = None if y is None else asarray(y if is_array(y) else np.asarray(y), "int64")
        self.size = int(self.x.shape[0])

    def take(self, rows):
        """The rows ``rows`` (host integers): ``(x, y)``, y None without labels."""
        xp = namespace_of(self.x)
        where = asarray(np.asarray(rows, dtype=np.int64))
        return xp.take(self.x, where, axis=0), None if self.y is None else xp.take(self.y, where, axis=0)

    def chunks(self, size, limit=None):
        """``(x, y)`` in consecutive chunks of ``size`` rows over the first ``limit`` rows (all)."""
        end = self.size if limit is None else min(limit, self.size)
        for start in range(0, end, size):
            stop = min(start + size, end)
            yield self.x[start:stop, ...], None if self.y is None else self.y[start:stop]


def correct(logits, labels):
    """How many rows of ``logits`` have their largest value at the row's label (a host int): the
    accuracy's numerator, for every classifier the experiments evaluate."""
    xp = namespace_of(logits)
    return int(to_numpy(xp.sum(xp.astype(xp.argmax(logits, axis=1) == labels, xp.int64))))


def read_back(*scalars):
    """0-d device arrays as Python floats, in one device-to-host transfer."""
    xp = namespace_of(scalars[0])
    return [float(v) for v in to_numpy(xp.stack([xp.astype(s, xp.float64) for s in scalars]))]


def fit(steps, batches, compute, update, record, record_every, description="training", progress=True, record_at=()):
    """Train for ``steps`` steps on ``batches`` (an iterator) with the callbacks of the module
    docstring; returns the records."""
    history, last_good, last_record = {}, None, None

    def keep(n, numbers):
        nonlocal last_good, last_record
        scores = runio.check_finite(
            n, {"step": n, **record(n, numbers, last_good)}, last_good, f"{description} (evaluation)"
        )
        for name, value in scores.items():
            history.setdefault(name, []).append(value)
        last_good = last_record = scores

    keep(0, None)
    for n in runio.progress(range(1, steps + 1), description, progress):
        numbers = compute(n, next(batches))  # traced: no value read, but the numbers read back below
        numbers = dict(zip(numbers, read_back(*numbers.values())))
        runio.check_finite(n, numbers, last_good, description)
        recorded = {name: value for name, value in last_record.items() if name != "step" and name not in numbers}
        last_good = {"step": n, **numbers, **recorded, "recorded_at": last_record["step"]}
        update(n)
        if n % record_every == 0 or n == steps or n in record_at:
            keep(n, numbers)
    return history
