"""The claims of Yin et al. (2019), Huh et al. (2023) and Mentzer et al. (2023) that stevq tests:
each a ``Claim`` whose ``test(per_seed_metrics, seeds)`` returns (numbers, checks) for ``claims.verdict``.
A missing metric raises ``claims.Missing`` (the ledger then tries another run or says "not run")."""
import dataclasses
from typing import Callable

from stevq.experiments.claims import Missing, clearly_better, mean, ms, row_where, values

YIN, HUH, MENTZER = "Yin et al. 2019", "Huh et al. 2023", "Mentzer et al. 2023"
STES = ("identity", "relu", "clipped_relu")
FLAT_PERCENT = 1.0   # as quant_act_report: a loss change within +-1% is flat


@dataclasses.dataclass(frozen=True)
class Claim:
    paper: str
    statement: str
    experiment: str
    rule: str
    test: Callable


# ---------------------------------------------------------------- Yin et al. 2019


def closed_form(metrics, seeds):
    got = values(metrics, lambda m: m["identity_grad_norm_at_spurious"])
    paper = values(metrics, lambda m: m["identity_grad_norm_formula"])
    worst = max(abs(g - p) / p for g, p in zip(got, paper))
    return (f"stevq {ms(got, digits=6)}, paper's formula {ms(paper, digits=6)}, largest relative difference {worst:.1e}",
            [(f"seed {seed}: relative difference {abs(g - p) / p:.1e} < 1e-9", abs(g - p) / p < 1e-9)
             for seed, g, p in zip(seeds, got, paper)])


def monotone(name):
    def test(metrics, seeds):
        share = values(metrics, lambda m: m["random_starts"][name]["monotone"] / m["random_starts"][name]["runs"])
        ratio = values(metrics, lambda m: m["ratio_at_smallest_t"][name])
        return (f"share of runs with f decreasing monotonically {ms(share, 100, unit='%')}; ratio ||E g||^2 / "
                f"(||df/dv||^2 + <E g, df/dw>) near the spurious minimum {ms(ratio)}",
                [(f"seed {seed}: {100 * s:.0f}% of the runs monotone", s == 1.0) for seed, s in zip(seeds, share)])
    return test


def identity_unstable(metrics, seeds):
    checks, converged = [], {}
    for name in STES:
        converged[name] = values(metrics, lambda m: m["spurious_start"][name]["converged"])
    ratio = values(metrics, lambda m: m["ratio_at_smallest_t"]["identity"])
    rises = values(metrics, lambda m: m["spurious_start"]["identity"]["increases"])
    for i, seed in enumerate(seeds):
        holds = (not converged["identity"][i] and converged["relu"][i] and converged["clipped_relu"][i]
                 and ratio[i] > 1e3)
        state = ", ".join(f"{name} {'converges' if converged[name][i] else 'does not converge'}" for name in STES)
        checks.append((f"seed {seed}: {state}, identity ratio {ratio[i]:.2g}", holds))
    return (f"started at pi - 0.05 from a spurious minimum, converged (fraction of seeds): identity "
            f"{mean(converged['identity']):.2g}, ReLU {mean(converged['relu']):.2g}, clipped ReLU "
            f"{mean(converged['clipped_relu']):.2g}; identity: f rises {ms(rises)} times, ratio {ms(ratio)}", checks)


def identity_worst(metrics, seeds):
    cells = sorted({(r["net"], r["bits"]) for r in metrics[0]["grid"]}, key=str)
    numbers, checks = [], []
    for net, bits in cells:
        here = [name for name in STES if any((r["net"], r["bits"], r["ste"]) == (net, bits, name) for r in metrics[0]["grid"])]
        if "identity" not in here or len(here) < 2:
            raise Missing("needs the identity STE and another")
        loss = {name: values(metrics, lambda m: row_where(m["grid"], net=net, bits=bits, ste=name)["train_loss"])
                for name in here}
        worst = max(loss, key=lambda name: mean(loss[name]))
        numbers.append(f"{net} {bits} bit: " + ", ".join(f"{name} {ms(loss[name])}" for name in here))
        checks.append((f"{net} {bits} bit ({worst} worst)", worst == "identity"))
    return "training loss: " + "; ".join(numbers), checks


def identity_raises_loss(metrics, seeds):
    rows = [r for r in metrics[0]["instability"] if r["continued_with"] == "identity"]
    numbers, checks = [], []
    for r in rows:
        keys = dict(net=r["net"], lr=r["lr"])
        ident = values(metrics, lambda m: row_where(m["instability"], **keys, continued_with="identity",
                                                    **{"from": r["from"]})["change_percent"])
        control = values(metrics, lambda m: row_where(m["instability"], **keys, continued_with=r["from"],
                                                      **{"from": r["from"]})["change_percent"])
        label = f"{r['net']} from {r['from']}, step {r['lr']:g}"
        numbers.append(f"{label}: identity {ms(ident, unit='%')}, {r['from']} {ms(control, unit='%')}")
        checks.append((label, mean(ident) > FLAT_PERCENT and mean(ident) > mean(control)))
    return "training-loss change after the switch: " + "; ".join(numbers), checks


# ---------------------------------------------------------------- Huh et al. 2023


def never_updated(metrics, seeds):
    numbers, checks = [], []
    for reading in dict.fromkeys(r["reading"] for r in metrics[0]["covariate_shift"]):
        share = values(metrics, lambda m: row_where(m["covariate_shift"], reading=reading,
                                                    parameterization="standard")["never_updated"])
        numbers.append(f"{reading} reading {ms(share, 100, unit='%')}")
        checks.append((f"{reading} reading", mean(share) > 0.9))
    return "codes never updated (standard codebook): " + "; ".join(numbers), checks


def affine_closes_gap(metrics, seeds):
    numbers, checks = [], []
    cases = dict.fromkeys((r["reading"], r["affine_lr"]) for r in metrics[0]["covariate_shift"])
    for reading, lr in cases:
        def get(name, key):
            return values(metrics, lambda m: row_where(m["covariate_shift"], reading=reading, affine_lr=lr,
                                                       parameterization=name)[key])
        standard, affine, never = get("standard", "gap_after"), get("affine", "gap_after"), get("affine", "never_updated")
        label = f"{reading} reading, affine_lr {lr:g}"
        numbers.append(f"{label}: gap after {ms(standard)} standard, {ms(affine)} affine; affine codes never "
                       f"updated {ms(never, 100, unit='%')}")
        checks.append((label, mean(never) < 0.1 and mean(affine) <= 0.5 * mean(standard)))
    return "; ".join(numbers), checks


def _score_better(model):
    return model not in ("autoencoder", "vqvae")  # reconstruction error: lower is better


def fix_improves(before, after, rows_key="row", utilisation="active", where=None):
    """The fix that turns row ``before`` into row ``after`` clearly improves both the utilisation and
    the task score, per model (and codebook size)."""
    def test(metrics, seeds):
        numbers, checks = [], []
        cells = dict.fromkeys((r["model"], r.get("K")) for r in metrics[0]["rows"] if where is None or where(r))
        for model, size in cells:
            def get(name, key):
                keys = {"model": model, rows_key: name, **({"K": size} if size is not None else {})}
                return values(metrics, lambda m: row_where(m["rows"], **keys)[key])
            use = (get(before, utilisation), get(after, utilisation))
            score = (get(before, "score"), get(after, "score"))
            label = f"{model}" + (f" K={size}" if size is not None else "")
            kind, scale, unit = ("accuracy", 100, "%") if _score_better(model) else ("MSE", 1, "")
            numbers.append(f"{label}: {utilisation} {ms(use[0], 100, unit='%')} -> {ms(use[1], 100, unit='%')}, "
                           f"{kind} {ms(score[0], scale, 4, unit)} -> {ms(score[1], scale, 4, unit)}")
            checks.append((f"{label} {utilisation}", clearly_better(*use)))
            checks.append((f"{label} {kind}", clearly_better(*score, higher_is_better=_score_better(model))))
        if not checks:
            raise Missing("no rows")
        return f"{before} -> {after}: " + "; ".join(numbers), checks
    return test


def collapse(metrics, seeds):
    numbers, checks = [], []
    for size in dict.fromkeys(r["K"] for r in metrics[0]["rows"] if r["model"] == "vqvae"):
        use = values(metrics, lambda m: row_where(m["rows"], model="vqvae", K=size, variant="ste")["utilisation"])
        numbers.append(f"K={size} {ms(use, 100, unit='%')}")
        checks.append((f"K={size}", mean(use) < 0.5))
    if not checks:
        raise Missing("no VQ-VAE rows")
    return "plain-STE VQ-VAE, codes used on the test images: " + "; ".join(numbers), checks


# ---------------------------------------------------------------- Mentzer et al. 2023


def fsq_utilisation(metrics, seeds):
    numbers, checks = [], []
    for model, size in dict.fromkeys((r["model"], r["K"]) for r in metrics[0]["rows"] if r["variant"] == "fsq"):
        use = values(metrics, lambda m: row_where(m["rows"], model=model, K=size, variant="fsq")["utilisation"])
        numbers.append(f"{model} K={size} {ms(use, 100, unit='%')}")
        checks.append((f"{model} K={size}", mean(use) >= 0.9))
    if not checks:
        raise Missing("no FSQ rows")
    return "FSQ codes used on the test images: " + "; ".join(numbers), checks


def _fsq_vs_vq(metrics, size, key):
    def get(variant):
        return values(metrics, lambda m: row_where(m["rows"], model="vqvae", K=size, variant=variant)[key])
    return get("fsq"), get("ste")


def fsq_competitive(metrics, seeds):
    numbers, checks = [], []
    for size in dict.fromkeys(r["K"] for r in metrics[0]["rows"] if r["model"] == "vqvae" and r["variant"] == "fsq"):
        fsq, vq = _fsq_vs_vq(metrics, size, "score")
        numbers.append(f"K={size}: FSQ {ms(fsq, digits=4)}, VQ {ms(vq, digits=4)}")
        checks.append((f"K={size}", mean(fsq) <= 1.1 * mean(vq)))
    if not checks:
        raise Missing("no FSQ rows")
    return "VQ-VAE test MSE: " + "; ".join(numbers), checks


def fsq_with_size(metrics, seeds):
    sizes = sorted({r["K"] for r in metrics[0]["rows"] if r["model"] == "vqvae" and r["variant"] == "fsq"})
    if len(sizes) < 2:
        raise Missing("needs two codebook sizes")
    small, large = sizes[0], sizes[-1]
    (fsq_use_s, vq_use_s), (fsq_use_l, vq_use_l) = (_fsq_vs_vq(metrics, k, "utilisation") for k in (small, large))
    (fsq_s, vq_s), (fsq_l, vq_l) = (_fsq_vs_vq(metrics, k, "score") for k in (small, large))
    ratio_s, ratio_l = mean(fsq_s) / mean(vq_s), mean(fsq_l) / mean(vq_l)
    return (f"VQ-VAE, K={small} -> K={large}: VQ codes used {ms(vq_use_s, 100, unit='%')} -> "
            f"{ms(vq_use_l, 100, unit='%')}, FSQ {ms(fsq_use_s, 100, unit='%')} -> {ms(fsq_use_l, 100, unit='%')}; "
            f"MSE ratio FSQ / VQ {ratio_s:.3g} -> {ratio_l:.3g}",
            [("VQ's utilisation falls with K", mean(vq_use_l) < mean(vq_use_s)),
             (f"FSQ uses more of its codes than VQ at K={large}", mean(fsq_use_l) > mean(vq_use_l)),
             ("FSQ's MSE relative to VQ's falls with K", ratio_l < ratio_s)])


CLAIMS = [
    Claim(YIN, "Closed forms: at a spurious minimum the identity STE's expected coarse gradient has norm "
               "2 (m-1) (1^T v*)^2 / (sqrt(2 pi) (m+1)^2), not 0.", "yin2019-toy",
          "Per seed (each seed draws its own teacher), stevq's expected coarse gradient (its closed form of "
          "E[g]) against the paper's norm formula: holds when they agree to 1e-9.", closed_form),
    Claim(YIN, "The clipped-ReLU STE's expected coarse gradient is a descent direction: coarse gradient descent "
               "decreases the population loss monotonically.", "yin2019-toy",
          "Per seed: holds when every random start decreases f monotonically (f rises by no more than rounding).",
          monotone("clipped_relu")),
    Claim(YIN, "The ReLU STE's expected coarse gradient is a descent direction as well.", "yin2019-toy",
          "Per seed: holds when every random start decreases f monotonically.", monotone("relu")),
    Claim(YIN, "The identity STE is unstable near spurious minima: its coarse gradient does not vanish there and "
               "it does not converge, while ReLU and clipped ReLU do.", "yin2019-toy",
          "Per seed: holds when, started next to a spurious minimum, the identity STE does not converge, ReLU and "
          "clipped ReLU do, and the identity STE's ratio at distance 1e-6 exceeds 1e3.", identity_unstable),
    Claim(YIN, "At MNIST scale the identity STE gives the worst training loss of the three STEs.", "quant-act",
          "Per (network, bit width): holds when the identity STE has the highest mean training loss.", identity_worst),
    Claim(YIN, "Continuing from a good ReLU / clipped-ReLU solution with the identity STE raises the training loss.",
          "quant-act", "Per (network, starting STE, step): holds when the mean change of the training loss with the "
          "identity STE is above +1% and above the change when continuing with the original STE.", identity_raises_loss),
    Claim(HUH, "Toy covariate shift: with a standard codebook more than 90% of the codes are never updated.", "vq-toy",
          "Per reading of N(0, 0.5 I), N(-1, 0.3 I) (variances or standard deviations): holds when the mean share of "
          "codes never updated exceeds 90%.", never_updated),
    Claim(HUH, "The affine re-parameterisation moves every code and closes the gap between codes and embeddings.",
          "vq-toy", "Per (reading, affine_lr): holds when under 10% of the affine codes are never updated and the gap "
          "after training (sliced W2) is at most half the standard codebook's.", affine_closes_gap),
    Claim(HUH, "In their MNIST ablation, the synchronized update improves codebook use and the loss (k-means -> "
               "+ sync).", "vq-ablation",
          "Per model: holds for the active share and for the task score each when clearly better.",
          fix_improves("kmeans", "kmeans+sync")),
    Claim(HUH, "The affine re-parameterisation improves codebook use and the loss (+ sync -> + affine).",
          "vq-ablation", "Per model: holds for the active share and for the task score each when clearly better.",
          fix_improves("kmeans+sync", "kmeans+sync+affine")),
    Claim(HUH, "Alternating optimisation improves codebook use and the loss (baseline -> + alternating).",
          "vq-ablation", "Per model: holds for the active share and for the task score each when clearly better.",
          fix_improves("baseline", "alt")),
    Claim(HUH, "The fixes combined (k-means, sync, affine, alternating; no official run) improve codebook use and "
               "the loss over the plain STE.", "vq-ablation",
          "Per model: holds for the active share and for the task score each when clearly better than the baseline.",
          fix_improves("baseline", "kmeans+sync+affine+alt")),
    Claim(HUH, "Index collapse: a VQ-VAE trained with the plain STE uses a small part of its codebook.",
          "vq-bottleneck", "Per codebook size: holds when plain STE uses under 50% of the codes on the test images.",
          collapse),
    Claim(HUH, "In stevq's conv VQ-VAE (Adam, 300 steps), affine + alternating + sync improve codebook use and the "
               "reconstruction over the plain STE.", "vq-bottleneck",
          "Per codebook size: holds for utilisation and for test MSE each when clearly better.",
          fix_improves("ste", "affine+alt+sync", rows_key="variant", utilisation="utilisation",
                       where=lambda r: r["model"] == "vqvae")),
    Claim(MENTZER, "FSQ uses (nearly) its whole codebook without any auxiliary loss.", "vq-bottleneck",
          "Per (model, codebook size): holds when FSQ uses at least 90% of its codes on the test images.", fsq_utilisation),
    Claim(MENTZER, "FSQ's reconstruction is competitive with VQ's.", "vq-bottleneck",
          "Per codebook size: holds when FSQ's mean test MSE is at most 1.1 times plain VQ's.", fsq_competitive),
    Claim(MENTZER, "The comparison with VQ shifts towards FSQ as the codebook grows: VQ's utilisation falls, "
                   "FSQ's stays high, FSQ's relative reconstruction improves.", "vq-bottleneck",
          "Smallest against largest codebook size: three checks, as named in the verdict.", fsq_with_size),
]
