"""The table of one benchmark case: its rows (medians, spreads, ratios, memory, agreement with the
reference contender) from the pooled calls of every contender, and the table as ``run.py`` prints it."""

import math

import timing


def check(module, name, first, reference):
    """(text, number): how well contender ``name`` agrees with its reference on its first call (same
    start, same data): the fraction of equal indices (lookup) or the largest difference relative to
    the largest reference value (a loss, a gradient); None where there is nothing to compare."""
    import numpy as np

    if first is None or reference is None:
        return None, None
    if hasattr(module, "agree"):
        agreement = module.agree(name, first, reference)
        return f"{module.AGREEMENT} {agreement:.2%}", agreement
    difference = float(np.max(np.abs(first - reference)) / max(float(np.max(np.abs(reference))), 1e-30))
    return f"rel. diff {difference:.0e}", difference


def summarize(pooled, module):
    """Table rows; each contender is compared (ratio, check) with stevq, or with the contender its
    case names in ``REFERENCES``."""
    rows = []
    for name, entry in pooled.items():
        reference = pooled.get(getattr(module, "REFERENCES", {}).get(name, "stevq"), entry)  # absent: itself
        wall_ref, cpu_ref = timing.spread(reference["wall"])[0], timing.spread(reference["cpu"])[0]
        wall, cpu = timing.spread(entry["wall"]), timing.spread(entry["cpu"])
        memory = [m for m in entry["memory_mb"] if m is not None]
        text, number = (
            check(module, name, entry["first"], reference["first"]) if reference is not entry else (None, None)
        )
        rows.append(
            {
                "contender": name,
                "wall_ms": 1e3 * wall[0],
                "wall_p25_ms": 1e3 * wall[1],
                "wall_p75_ms": 1e3 * wall[2],
                "cpu_ms": 1e3 * cpu[0],
                "calls": len(entry["wall"]),
                "ratio_wall": wall_ref / wall[0],
                "ratio_cpu": cpu_ref / cpu[0] if cpu[0] > 0 else math.nan,
                "memory_mb": max(memory) if memory else None,
                "check": text,
                "agreement": number,
                "traced_mb": max([t for t in entry.get("traced_mb", []) if t is not None], default=None),
            }
        )
    return rows


def print_case(result):
    print(f"\n{result['title']}")
    print(
        f"  {'contender':<36} {'wall ms':>9} {'(25-75 %)':>15} {'CPU ms':>9} {'stevq/this':>11} "
        f"{'(CPU)':>6} {'step MB':>8}  check"
    )
    for row in result["rows"]:
        memory = "-" if row["memory_mb"] is None else f"{row['memory_mb']:.0f}"
        print(
            f"  {row['contender']:<36} {row['wall_ms']:9.2f} {row['wall_p25_ms']:7.2f}-{row['wall_p75_ms']:<7.2f} "
            f"{row['cpu_ms']:9.2f} {row['ratio_wall']:10.2f}x {row['ratio_cpu']:5.2f}x {memory:>8}  {row['check'] or ''}"
        )
    for row in result["rows"]:
        if row.get("traced_mb") is not None:
            print(
                f"  {row['contender']}: peak of NumPy's allocations during one call (tracemalloc) "
                f"{row['traced_mb']:.1f} MB"
            )
    for target in result["targets"]:
        if "memory_of" in target:
            shown = (
                "not measured (--no-memory)"
                if target["megabytes"] is None
                else f"{target['megabytes']:.1f} MB -> {'met' if target['met'] else 'MISSED'}"
            )
            print(f"  target {target['memory_of']}: extra peak memory (tracemalloc) < {target['limit_mb']} MB: {shown}")
        elif target["ratio_wall"] is None:
            print(
                f"  target {target['ours']} <= {target['limit']}x {target['versus']}: not measured "
                f"({target['versus']} absent)"
            )
        else:
            verdict = lambda met: "met" if met else "MISSED"
            print(
                f"  target {target['ours']} <= {target['limit']}x {target['versus']}: {target['ratio_wall']:.2f}x wall "
                f"-> {verdict(target['met'])}; {target['ratio_cpu']:.2f}x CPU -> {verdict(target['met_cpu'])}"
            )
