"""Mentzer et al. (2023): finite scalar quantization against VQ in stevq's conv VQ-VAE
(``vq-bottleneck``). FSQ is compared with the best VQ variant of the same run, not only with the
plain STE, which collapses."""

from stevq.experiments.claims.huh import _bottleneck, _cells
from stevq.experiments.claims.rules import Missing, mean, ms

MENTZER = "Mentzer et al. 2023"
VQ_VARIANTS = ("ste", "ema", "affine", "alternating", "sync", "affine+alt+sync", "dead-code")


def best_vq(metrics, size):
    """(variant, per-seed test MSEs) of the VQ variant with the lowest mean test MSE at K = ``size``."""
    here = [
        v
        for v in VQ_VARIANTS
        if any(r["model"] == "vqvae" and r["K"] == size and r["variant"] == v for r in metrics[0]["rows"])
    ]
    if not here:
        raise Missing("no VQ rows")
    scores = {v: _bottleneck(metrics, "vqvae", size, v, "score") for v in here}
    name = min(scores, key=lambda v: mean(scores[v]))
    return name, scores[name]


def _fsq_sizes(metrics):
    sizes = [
        size
        for model, size in _cells(metrics, "vqvae")
        if any(r["variant"] == "fsq" and r["K"] == size for r in metrics[0]["rows"])
    ]
    if not sizes:
        raise Missing("no FSQ rows")
    return sorted(sizes)


def fsq_utilisation(metrics, seeds):
    numbers, checks = [], []
    for model, size in _cells(metrics):
        if not any(r["variant"] == "fsq" and (r["model"], r["K"]) == (model, size) for r in metrics[0]["rows"]):
            continue
        use = _bottleneck(metrics, model, size, "fsq", "utilisation")
        numbers.append(f"{model} K={size} {ms(use, 100, unit='%')}")
        checks.append((f"{model} K={size}", mean(use) >= 0.9))
    if not checks:
        raise Missing("no FSQ rows")
    return "FSQ codes used on the test images: " + "; ".join(numbers), checks


def fsq_competitive(metrics, seeds):
    numbers, checks = [], []
    for size in _fsq_sizes(metrics):
        fsq = _bottleneck(metrics, "vqvae", size, "fsq", "score")
        name, best = best_vq(metrics, size)
        plain = _bottleneck(metrics, "vqvae", size, "ste", "score")
        numbers.append(
            f"K={size}: FSQ {ms(fsq, digits=4)}, best VQ ({name}) {ms(best, digits=4)}, plain STE {ms(plain, digits=4)}"
        )
        checks.append((f"K={size}", mean(fsq) <= 1.1 * mean(best)))
    return "VQ-VAE test MSE: " + "; ".join(numbers), checks


def vq_better_when_small(metrics, seeds):
    size = _fsq_sizes(metrics)[0]
    fsq = _bottleneck(metrics, "vqvae", size, "fsq", "score")
    name, best = best_vq(metrics, size)
    return (
        f"VQ-VAE test MSE at K={size}: best VQ ({name}) {ms(best, digits=4)}, FSQ {ms(fsq, digits=4)}",
        [(f"K={size}: best VQ within 1.1x of FSQ or better", mean(best) <= 1.1 * mean(fsq))],
    )


def fsq_with_size(metrics, seeds):
    sizes = _fsq_sizes(metrics)
    if len(sizes) < 2:
        raise Missing("needs two codebook sizes")
    small, large = sizes[0], sizes[-1]
    use = {(v, k): _bottleneck(metrics, "vqvae", k, v, "utilisation") for v in ("ste", "fsq") for k in (small, large)}
    ratio = {k: mean(_bottleneck(metrics, "vqvae", k, "fsq", "score")) / mean(best_vq(metrics, k)[1]) for k in sizes}
    return (
        f"VQ-VAE, K={small} -> K={large}: plain VQ codes used {ms(use['ste', small], 100, unit='%')} -> "
        f"{ms(use['ste', large], 100, unit='%')}, FSQ {ms(use['fsq', small], 100, unit='%')} -> "
        f"{ms(use['fsq', large], 100, unit='%')}; MSE ratio FSQ / best VQ "
        + " -> ".join(f"{ratio[k]:.3g}" for k in sizes),
        [
            ("VQ's utilisation falls with K", mean(use["ste", large]) < mean(use["ste", small])),
            (
                "FSQ uses at least 90% of its codes at every K",
                all(mean(_bottleneck(metrics, "vqvae", k, "fsq", "utilisation")) >= 0.9 for k in sizes),
            ),
            ("FSQ's MSE relative to the best VQ's falls with K", ratio[large] < ratio[small]),
        ],
    )
