"""The ledger of the three papers' claims, built from runs (``python -m stevq claims records``):
``rules`` (the arithmetic of a decision), ``yin``, ``huh`` and ``mentzer`` (each claim's test),
``catalogue`` (the claims with their rules), ``ledger`` (finding runs, verdicts, docs/claims.md)
and ``tables`` (the README's record tables)."""

from stevq.experiments.claims import tables
from stevq.experiments.claims.catalogue import CLAIMS
from stevq.experiments.claims.ledger import INDICATIVE, damaged_results, find_runs, ledger, markdown, write
from stevq.experiments.claims.rules import VERDICTS, Claim, Missing, clearly_better, spearman, verdict, within

__all__ = [
    "CLAIMS",
    "tables",
    "INDICATIVE",
    "VERDICTS",
    "Claim",
    "Missing",
    "clearly_better",
    "damaged_results",
    "find_runs",
    "ledger",
    "markdown",
    "spearman",
    "verdict",
    "within",
    "write",
]
