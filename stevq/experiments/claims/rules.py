"""The arithmetic of the ledger's decision rules: a claim's numbers over seeds, paired comparisons,
rank correlation, and the verdict from a list of checks."""

import dataclasses
import math
from typing import Callable

from stevq.experiments import runner as across_seeds

VERDICTS = ("reproduced", "partly", "not reproduced")


class Missing(Exception):
    """The run lacks a number the claim needs."""


def values(metrics, get):
    """``get(metrics)`` for every seed; a missing entry raises ``Missing``."""
    out = []
    for one in metrics:
        try:
            value = get(one)
        except (KeyError, IndexError, StopIteration, TypeError) as err:
            raise Missing(str(err)) from None
        out.append(across_seeds.NON_FINITE.get(value, value) if isinstance(value, str) else float(value))
    return out


def mean(xs):
    return across_seeds.statistic(xs)["mean"]


def sd(xs):
    return across_seeds.statistic(xs)["sd"]


def ms(xs, scale=1.0, digits=3, unit=""):
    """``mean ± sd`` of ``xs`` (times ``scale``)."""
    stat = across_seeds.statistic([x * scale for x in xs])
    return f"{stat['mean']:.{digits}g} ± {stat['sd']:.2g}{unit}"


def clearly_better(before, after, higher_is_better=True):
    """Paired by seed: the mean change (after - before, signed so that positive is better) exceeds
    the sample standard deviation of the changes (with one seed: any positive change, which is why
    a verdict needs three seeds)."""
    stat = across_seeds.statistic([(a - b) * (1 if higher_is_better else -1) for a, b in zip(after, before)])
    return stat["mean"] > stat["sd"] if stat["n"] > 1 else stat["mean"] > 0


def within(ours, theirs_mean, theirs_sd, k=2.0):
    """Agreement with a published mean ± sd: |mean(ours) - theirs_mean| <= k * max(sd(ours), theirs_sd)."""
    return abs(mean(ours) - theirs_mean) <= k * max(sd(ours), theirs_sd)


def spearman(xs, ys):
    """Spearman's rank correlation of two equally long sequences (average ranks for ties)."""

    def ranks(values):
        order = sorted(range(len(values)), key=lambda i: values[i])
        out = [0.0] * len(values)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2
            i = j + 1
        return out

    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    norm = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return cov / norm if norm > 0 else 0.0


def row_where(rows, **keys):
    """The row of ``rows`` whose fields equal ``keys``."""
    return next(r for r in rows if all(r.get(k) == v for k, v in keys.items()))


def verdict(checks):
    """(verdict, regime) from ``[(label, holds), ...]``."""
    if not checks:
        raise Missing("no checks")
    held = [label for label, holds in checks if holds]
    failed = [label for label, holds in checks if not holds]
    if not failed:
        return VERDICTS[0], "; ".join(held)
    if not held:
        return VERDICTS[2], "; ".join(failed)
    return VERDICTS[1], f"holds: {'; '.join(held)}. fails: {'; '.join(failed)}"


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim: the paper, what it says, the experiment that tests it, the decision rule in words,
    ``test(per_seed_metrics, seeds) -> (numbers, [(check, holds), ...])``, which runs qualify
    (``where(config)``), and what the authors' own code shows where it was measured."""

    paper: str
    statement: str
    experiment: str
    rule: str
    test: Callable
    where: Callable = lambda config: True
    authors: str = ""
    settings: str = ""  # the --set options of the experiment's command, if any
