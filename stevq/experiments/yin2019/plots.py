"""Figures of the yin2019-toy experiment, drawn from its stored parts: loss curves from random
starts, runs started next to a spurious minimum, the descent ratio on a path into it, and the
paper's Figure 1. Curves that coincide (the ReLU and clipped-ReLU STEs often do) are drawn in
distinct styles and the legend says how close they are.
"""

import math

import numpy as np

from stevq import ste
from stevq.experiments.figures import subplots

# One style per STE, so that curves that coincide (ReLU and clipped ReLU often do) stay visible:
# a solid line, circles on a solid line, a dashed line on top.
STYLES = {
    "identity": {"ls": "-", "lw": 1.2},
    "relu": {"ls": "-", "lw": 1.2, "marker": "o", "ms": 4, "mfc": "none"},
    "clipped_relu": {"ls": "--", "lw": 1.6},
}


def coincidence_notes(curves, rtol=0.05):
    """{name: " (identical to X)" or " (within 1.9% of X)"} for each curve that lies within ``rtol``
    (relative, everywhere) of an earlier one: said in the legend, since one would hide the other."""
    notes, seen = {}, []
    for name, values in curves.items():
        values = np.asarray(values, dtype=float)
        for other, other_values in seen:
            if values.shape != other_values.shape:
                continue
            if np.array_equal(values, other_values):
                notes[name] = f" (identical to {other})"
                break
            scale = np.maximum(np.abs(other_values), np.finfo(float).tiny)
            gap = float(np.max(np.abs(values - other_values) / scale)) if values.size else 0.0
            if gap < rtol:
                notes[name] = f" (within {100 * gap:.2g}% of {other})"
                break
        seen.append((name, values))
    return notes


def _plot_stes(axis, x, curves, plot="plot"):
    """One line per STE in its own style, the legend noting coinciding ones."""
    notes = coincidence_notes(curves)
    for name, values in curves.items():
        getattr(axis, plot)(
            x, values, label=name + notes.get(name, ""), markevery=max(len(x) // 12, 1), **STYLES.get(name, {})
        )


def figures(config, results, f_spurious):
    """The four figures from the stored parts."""
    names = ste.SURROGATES
    out = {}

    fig, axes = subplots(1, 3, figsize=(15, 4.2), sharey=True, layout="constrained")
    for ax, name in zip(axes, names):
        curves = results["random_starts"][name]["curves"]
        f = np.maximum(np.asarray(curves["f"]), 1e-17)
        ax.semilogy(curves["step"], f, lw=0.8)
        ax.axhline(f_spurious, color="k", ls="--", lw=0.8, label="f at the spurious minimum")
        ax.set(title=f"{name} STE", xlabel="step")
    axes[0].set_ylabel("population loss f (one line per run)")
    axes[0].legend()
    fig.suptitle(f"Coarse gradient descent from the same {config.runs} random initialisations (lr {config.lr:g})")
    out["loss_curves"] = fig

    fig, axes = subplots(1, 3, figsize=(15, 4.4), layout="constrained")
    curves = {name: results["spurious_start"][name]["curves"] for name in names}
    step = curves[names[0]]["step"]
    _plot_stes(axes[0], step, {name: np.asarray(c["f"]) - f_spurious for name, c in curves.items()})
    _plot_stes(
        axes[1],
        step,
        {name: np.maximum(math.pi - np.asarray(c["theta"]), 1e-17) for name, c in curves.items()},
        "semilogy",
    )
    _plot_stes(axes[2], step, {name: c["w_norm"] for name, c in curves.items()}, "semilogy")
    axes[0].set_yscale("symlog", linthresh=1e-6)
    axes[0].set(xlabel="step", ylabel="f - f(spurious minimum)", title="loss above the spurious minimum")
    axes[1].set(xlabel="step", ylabel="pi - theta (floored at 1e-17)", title="angle to the spurious minimum")
    axes[2].set(xlabel="step", ylabel="||w||", title="norm of the first-layer weights")
    for ax in axes:
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"Started next to a spurious minimum: theta0 = pi - {config.start_gap}, v0 = its v")
    out["spurious_start"] = fig

    fig, ax = subplots(figsize=(6.5, 4.4), layout="constrained")
    _plot_stes(ax, results["ratio"]["t"], {name: np.abs(results["ratio"][name]) for name in names}, "loglog")
    ax.set(
        xlabel="distance t (theta = pi - t, v = v_spurious + t u)",
        ylabel="||E g||^2 / (||df/dv||^2 + <E g, df/dw>)",
        title="Approaching the spurious minimum: step over first-order decrease",
    )
    ax.legend(fontsize=8)
    out["ratio"] = fig

    fig, axes = subplots(1, 3, figsize=(15, 4.4), sharey=True, layout="constrained")
    for ax, name in zip(axes, names):
        data = results["figure1"][name]
        # the population curve underneath, wide and pale, so that a large-N curve on it stays visible
        ax.plot(data["eta"], data["population"], color="0.6", lw=5, alpha=0.5, label="population loss", zorder=1)
        for k, (size, losses) in enumerate(data["empirical"].items()):
            ax.plot(
                data["eta"],
                losses,
                lw=1.1,
                marker="os^D"[k % 4],
                ms=3,
                markevery=max(len(losses) // 10, 1),
                label=f"N = {size}",
                zorder=2,
            )
        ax.set(title=f"{name} STE", xlabel="step size eta")
    axes[0].set_ylabel("empirical loss after one coarse-gradient step")
    axes[0].legend(fontsize=8)
    fig.suptitle("Yin et al. 2019, Figure 1: the loss on N samples after one coarse-gradient step of size eta")
    out["figure1"] = fig
    return out
