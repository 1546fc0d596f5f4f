"""Yin et al. (2019): the claims about the coarse gradient on their toy model (``yin2019-toy``)
and about quantized activations at MNIST scale (``quant-act``)."""

from stevq.experiments.claims.rules import Missing, clearly_better, mean, ms, row_where, values

YIN = "Yin et al. 2019"
STES = ("identity", "relu", "clipped_relu")
Z_LIMIT = 5.0  # Monte Carlo: a coordinate agrees when within 5 standard errors (50 batch means)
FLAT_PERCENT = 1.0  # quant-act: a loss change within +-1% is flat


def closed_form(metrics, seeds):
    mc = {name: values(metrics, lambda m: m["monte_carlo"][name]["max_abs_z"]) for name in STES}
    norm = values(metrics, lambda m: m["monte_carlo"]["identity"]["mc_norm"])
    se = values(metrics, lambda m: m["monte_carlo"]["identity"]["se_norm"])
    formula = values(metrics, lambda m: m["identity_grad_norm_formula"])
    checks = []
    for i, seed in enumerate(seeds):
        checks.append(
            (
                f"seed {seed}: every coordinate of each STE within {Z_LIMIT:g} standard errors of its closed "
                f"form (largest {max(mc[name][i] for name in STES):.2g})",
                all(mc[name][i] < Z_LIMIT for name in STES),
            )
        )
        checks.append(
            (
                f"seed {seed}: the identity STE's Monte Carlo norm {norm[i]:.4g} is {norm[i] / se[i]:.0f} "
                "standard errors from 0",
                norm[i] > Z_LIMIT * se[i],
            )
        )
    return (
        f"identity: engine Monte Carlo ||E g|| {ms(norm, digits=4)} against the paper's formula "
        f"{ms(formula, digits=4)}; largest coordinate difference in standard errors: identity {ms(mc['identity'])}, "
        f"ReLU {ms(mc['relu'])}, clipped ReLU {ms(mc['clipped_relu'])} (their closed form is 0)",
        checks,
    )


def correlated(metrics, seeds):
    share = {name: values(metrics, lambda m: m["correlation"][name]["share_positive"]) for name in STES}
    points = values(metrics, lambda m: m["correlation"]["relu"]["points"])
    cosine = {name: values(metrics, lambda m: m["correlation"][name]["median_cosine"]) for name in STES}
    checks = [
        (f"seed {seed}: {name} positive at {100 * share[name][i]:.1f}% of the points", share[name][i] == 1.0)
        for i, seed in enumerate(seeds)
        for name in STES
    ]
    return (
        f"share of {int(points[0])} random (v, w) with <E g, df/dw> >= 0: "
        + ", ".join(f"{name} {ms(share[name], 100, unit='%')}" for name in STES)
        + "; median cosine: "
        + ", ".join(f"{name} {ms(cosine[name])}" for name in STES),
        checks,
    )


def descends(name):
    def test(metrics, seeds):
        rows = values(metrics, lambda m: len(m["step_sizes"][name]))
        shares = [values(metrics, lambda m: m["step_sizes"][name][k]["monotone_share"]) for k in range(int(rows[0]))]
        lrs = [row["lr"] for row in metrics[0]["step_sizes"][name]]
        smallest = shares[-1]
        return (
            "runs with f decreasing monotonically (same starts, same number of steps): "
            + ", ".join(f"step {lr:g}: {ms(s, 100, unit='%')}" for lr, s in zip(lrs, shares)),
            [
                (f"seed {seed}: {100 * s:.0f}% monotone at step {lrs[-1]:g}", s == 1.0)
                for seed, s in zip(seeds, smallest)
            ],
        )

    return test


def converges(metrics, seeds):
    checks, numbers = [], []
    for name in ("relu", "clipped_relu"):
        share = values(metrics, lambda m: m["step_sizes"][name][0]["critical_share"])
        numbers.append(f"{name} {ms(share, 100, unit='%')}")
        checks += [(f"seed {seed}: {name} {100 * s:.0f}% of the runs", s >= 0.9) for seed, s in zip(seeds, share)]
    lr = metrics[0]["step_sizes"]["relu"][0]["lr"]
    return (
        f"runs ending at a critical point (||df/dv|| + ||E g|| below 1e-3 of its start), step {lr:g}: "
        + ", ".join(numbers),
        checks,
    )


def identity_unstable(metrics, seeds):
    checks, converged = [], {}
    for name in STES:
        converged[name] = values(metrics, lambda m: m["spurious_start"][name]["converged"])
    ratio = values(metrics, lambda m: m["ratio_at_smallest_t"]["identity"])
    rises = values(metrics, lambda m: m["spurious_start"]["identity"]["increases"])
    for i, seed in enumerate(seeds):
        holds = (
            not converged["identity"][i]
            and converged["relu"][i]
            and converged["clipped_relu"][i]
            and ratio[i] > 1e3
            and rises[i] >= 10
        )
        state = ", ".join(f"{name} {'converges' if converged[name][i] else 'does not converge'}" for name in STES)
        checks.append((f"seed {seed}: {state}, identity ratio {ratio[i]:.2g}, f rises {rises[i]:.0f} times", holds))
    return (
        f"started at pi - 0.05 from a spurious minimum, converged (fraction of seeds): identity "
        f"{mean(converged['identity']):.2g}, ReLU {mean(converged['relu']):.2g}, clipped ReLU "
        f"{mean(converged['clipped_relu']):.2g}; identity: f rises {ms(rises)} times, ratio {ms(ratio)}",
        checks,
    )


def _grid(metrics, net, bits, name, key="train_loss"):
    return values(metrics, lambda m: row_where(m["grid"], net=net, bits=bits, ste=name)[key])


def identity_worst(metrics, seeds):
    cells = sorted({(r["net"], r["bits"]) for r in metrics[0]["grid"]}, key=str)
    numbers, checks = [], []
    for net, bits in cells:
        loss = {name: _grid(metrics, net, bits, name) for name in STES}
        accuracy = {name: _grid(metrics, net, bits, name, "test_accuracy") for name in STES}
        numbers.append(
            f"{net} {bits} bit: "
            + ", ".join(f"{name} {ms(loss[name])} / {ms(accuracy[name], 100, 4)}%" for name in STES)
        )
        if bits in (2, 4):  # the paper's bit widths; 1 bit is reported, not tested
            worse = all(clearly_better(loss["identity"], loss[other], higher_is_better=False) for other in STES[1:])
            checks.append((f"{net} {bits} bit", worse))
    if not checks:
        raise Missing("no 2- or 4-bit rows")
    return "training loss / test accuracy: " + "; ".join(numbers), checks


def identity_raises_loss(metrics, seeds):
    rows = [r for r in metrics[0]["instability"] if r["continued_with"] == "identity"]
    numbers, checks = [], []
    for r in rows:
        keys = dict(net=r["net"], lr=r["lr"], **{"from": r["from"]})
        ident = values(
            metrics, lambda m: row_where(m["instability"], **keys, continued_with="identity")["change_percent"]
        )
        control = values(
            metrics, lambda m: row_where(m["instability"], **keys, continued_with=r["from"])["change_percent"]
        )
        start = _grid(metrics, r["net"], r["bits"], r["from"], "test_accuracy")
        after = values(
            metrics, lambda m: row_where(m["instability"], **keys, continued_with="identity")["test_accuracy"]
        )
        label = f"{r['net']} from {r['from']}, step {r['lr']:g}"
        numbers.append(
            f"{label}: identity {ms(ident, unit='%')}, {r['from']} {ms(control, unit='%')}, test accuracy "
            f"{ms(start, 100, 4)}% -> {ms(after, 100, 4)}%"
        )
        checks.append((label, mean(ident) > FLAT_PERCENT and clearly_better(control, ident)))
    return "training-loss change after the switch: " + "; ".join(numbers), checks


def clipped_best(metrics, seeds):
    numbers, checks = [], []
    for net, bits in sorted({(r["net"], r["bits"]) for r in metrics[0]["grid"] if r["bits"] in (2, 4)}, key=str):
        loss = {name: _grid(metrics, net, bits, name) for name in STES}
        numbers.append(f"{net} {bits} bit: ReLU {ms(loss['relu'])}, clipped ReLU {ms(loss['clipped_relu'])}")
        checks.append((f"{net} {bits} bit", mean(loss["clipped_relu"]) <= mean(loss["relu"])))
    if not checks:
        raise Missing("no 2- or 4-bit rows")
    return "training loss: " + "; ".join(numbers), checks


def ste_check(expected):
    """The ste-check run of one surrogate gives ``expected`` ("like clipped ReLU" or "like the
    identity STE") in every seed."""

    def test(metrics, seeds):
        words = [m["verdict"]["word"] for m in metrics]
        norms = values(metrics, lambda m: m["spurious"]["grad_norm_at_spurious"])
        critical = values(metrics, lambda m: m["random_starts"]["critical"] / m["random_starts"]["runs"])
        converged = values(metrics, lambda m: m["spurious"]["converged"])
        return (
            f"{metrics[0]['ste']}: ||E g|| at the spurious minimum {ms(norms)}; the run next to it converges in "
            f"{100 * mean(converged):.0f}% of the seeds; random starts at a critical point {ms(critical, 100, unit='%')}; "
            f"verdicts: {', '.join(words)}",
            [(f"seed {seed}: {word}", word == expected) for seed, word in zip(seeds, words)],
        )

    return test
