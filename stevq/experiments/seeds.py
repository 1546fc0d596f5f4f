"""Results over several seeds: mean, standard deviation and every seed's value.

An experiment names in ``SEED_TABLES`` the entries of its metrics that are averaged, each with its
key fields (what identifies a row: ``{"rows": ("model", "K", "codes", "variant")}``). An entry is

- a list of rows (dicts): rows are matched by position, their key fields must agree across seeds
  and are kept as they are; every other number becomes a statistic;
- a dict: each value is aggregated the same way (e.g. ``{"identity": {...}, "relu": {...}}``);
- a number: a statistic.

A statistic is ``{"mean": m, "sd": s, "n": number of seeds, "values": [one per seed]}``, with the
sample standard deviation (``ddof = 1``; 0 for one seed). Booleans count as 0 / 1 (the mean is
the fraction of seeds where it holds). Text that differs across seeds is kept as the list of the
seeds' values; lists of numbers (curves) are left to the seeds' own metrics.json.
"""
import dataclasses
import math
import numbers

NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}  # how runio stores them


def statistic(values):
    """Mean, sample standard deviation, count and the values themselves."""
    values = [NON_FINITE.get(v, v) if isinstance(v, str) else float(v) for v in values]
    n = len(values)
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "n": n, "values": values}


def is_statistic(value):
    return isinstance(value, dict) and set(value) == {"mean", "sd", "n", "values"}


def _number(value):
    return isinstance(value, numbers.Number) or (isinstance(value, str) and value in NON_FINITE)


def _combine(values, keys, where):
    """Aggregate one entry given as its value in every seed."""
    first = values[0]
    if all(_number(v) for v in values) and not all(isinstance(v, str) for v in values):
        return statistic(values)
    if isinstance(first, dict):
        if any(not isinstance(v, dict) or set(v) != set(first) for v in values):
            raise ValueError(f"seeds: {where} has different fields in different seeds")
        return {name: (first[name] if name in keys and _same([v[name] for v in values], where, name)
                       else _combine([v[name] for v in values], keys, f"{where}.{name}")) for name in first}
    if isinstance(first, list) and first and all(isinstance(row, dict) for row in first):
        if any(len(v) != len(first) for v in values):
            raise ValueError(f"seeds: {where} has a different number of rows in different seeds")
        return [_combine([v[i] for v in values], keys, f"{where}[{i}]") for i in range(len(first))]
    if all(v == first for v in values):
        return first
    return {"values": values}


def _same(values, where, name):
    if any(v != values[0] for v in values):
        raise ValueError(f"seeds: key field {name!r} of {where} differs across seeds: {values}")
    return True


def aggregate(per_seed, tables):
    """``{"seeds": [...], "mean_sd": {entry: aggregated}}`` from ``{seed: metrics}``."""
    seeds = list(per_seed)
    return {"seeds": seeds,
            "mean_sd": {entry: _combine([per_seed[s][entry] for s in seeds], set(keys), entry)
                        for entry, keys in tables.items() if all(entry in per_seed[s] for s in seeds)}}


def top_config(config, seeds):
    """The configuration of a run over ``seeds`` (stored in its directory's config.json)."""
    values = dataclasses.asdict(config)
    values.pop("seed", None)
    return {**values, "seeds": list(seeds)}


def cell(value, digits=4):
    """``mean ± sd`` for a statistic, the value itself otherwise."""
    if is_statistic(value):
        return f"{value['mean']:.{digits}g} ± {value['sd']:.2g}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, dict) and set(value) == {"values"}:
        return " / ".join(map(str, value["values"]))
    return str(value)


def _table(rows):
    """A Markdown table of aggregated rows."""
    columns = list(dict.fromkeys(name for row in rows for name in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _section(entry, value):
    if is_statistic(value) or not isinstance(value, (dict, list)):
        return [f"- {entry}: {cell(value)}", ""]
    if isinstance(value, list):
        return [f"## {entry}", "", _table(value)]
    if all(isinstance(v, dict) and not is_statistic(v) for v in value.values()):
        return [f"## {entry}", "", _table([{"": name, **_flat(v)} for name, v in value.items()])]
    return [f"## {entry}", "", _table([_flat(value)])]


def _flat(row):
    """Nested dicts of statistics as one row (``outer.inner`` columns)."""
    flat = {}
    for name, value in row.items():
        if isinstance(value, dict) and not is_statistic(value) and set(value) != {"values"}:
            flat.update({f"{name}.{inner}": v for inner, v in _flat(value).items()})
        else:
            flat[name] = value
    return flat


def summary(name, config, metrics, seed_dirs):
    """The Markdown summary of experiment ``name`` over several seeds: every aggregated entry as
    mean ± sd."""
    seeds = metrics["seeds"]
    lines = [f"# {name}{' - quick' if getattr(config, 'quick', False) else ''}: mean ± sd over {len(seeds)} seeds "
             f"({', '.join(map(str, seeds))})", "",
             "Each cell: mean ± sample standard deviation over the seeds (every seed's value is in "
             "metrics.json). Each seed's own summary, figures and curves: "
             + ", ".join(f"{directory.name}/summary.md" for directory in seed_dirs.values()) + ".", ""]
    for entry, value in metrics["mean_sd"].items():
        lines += _section(entry, value)
    return "\n".join(lines) + "\n"

