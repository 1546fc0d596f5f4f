"""Figures of the VQ experiments. VQ bottleneck and VQ ablation: metric curves per variant, final
utilisation against the task score, the share of codes active in each training batch; every
function takes the part results (dicts with "variant", "num_codes", "final" and "history").
Toy VQ: the embeddings, codes and chosen codes over training, and the curves of its autoencoder
runs (dicts with "variant", "code_scale", "history" and "snapshots"). Each returns a matplotlib
figure (``figures.subplots``) for ``runio.save_figure``.
"""

import numpy as np

from stevq.experiments.figures import colours, subplots

CURVE_PANELS = (
    ("score", None),
    ("utilisation", "codes used, test (%)"),
    ("perplexity", "perplexity"),
    ("dead_codes", "dead codes"),
    ("sliced_wasserstein", "gap: sliced W2(z_e, codes)"),
)
SCORE_LABEL = {"reconstruction": "reconstruction MSE (test)", "classification": "accuracy, test (%)"}


def _colours(variants):
    cmap = colours("tab10")
    return {variant: cmap(k % 10) for k, variant in enumerate(variants)}


def _style(variant):
    return "-" if variant in ("ste", "fsq") else "--" if "+" in variant else "-."


def _plot_variant(axis, x, y, variant, colours, linewidth):
    """One variant's line, in its colour and style (``_style``), labelled with its name."""
    axis.plot(x, y, _style(variant), color=colours[variant], label=variant, linewidth=linewidth)


def figure_curves(parts, task, sizes, variants):
    """Rows: test score, utilisation, perplexity, dead codes, gap; columns: codebook sizes;
    one line per variant."""
    colours = _colours(variants)
    figure, axes = subplots(
        len(CURVE_PANELS),
        len(sizes),
        squeeze=False,
        sharex=True,
        figsize=(max(5.5, 4.2 * len(sizes)), 2.4 * len(CURVE_PANELS) + 0.8),
        layout="constrained",
    )
    for part in parts:
        column = sizes.index(part["num_codes"])
        history = part["history"]
        for row, (key, _) in enumerate(CURVE_PANELS):
            # accuracy and utilisation in %, as in every other figure and summary
            scale = 100.0 if key == "utilisation" or (key == "score" and task == "classification") else 1.0
            values = [None if v is None else scale * v for v in history[key]]
            _plot_variant(axes[row][column], history["step"], values, part["variant"], colours, 1.3)
    for column, size in enumerate(sizes):
        axes[0][column].set_title(f"K = {size}", fontsize=10)
        axes[-1][column].set_xlabel("step")
    for row, (key, label) in enumerate(CURVE_PANELS):
        axes[row][0].set_ylabel(label or SCORE_LABEL[task], fontsize=9)
    if task == "reconstruction":
        for column in range(len(sizes)):
            axes[0][column].set_yscale("log")
    handles, labels = axes[1][0].get_legend_handles_labels()
    figure.legend(handles, labels, fontsize=8, ncol=min(len(labels), 5), loc="outside lower center")
    figure.suptitle(f"{task.capitalize()} through a VQ bottleneck: test-set metrics during training", fontsize=11)
    return figure


def figure_final(parts, task, sizes, variants):
    """Bars per variant: final utilisation (top row) and the task score (bottom row), per size."""
    colours = _colours(variants)
    figure, axes = subplots(
        2, len(sizes), squeeze=False, figsize=(max(5.5, 4.2 * len(sizes)), 6.4), layout="constrained"
    )
    for column, size in enumerate(sizes):
        here = [p for v in variants for p in parts if p["variant"] == v and p["num_codes"] == size]
        positions = np.arange(len(here))
        for row, key in enumerate(("utilisation", "score")):
            values = [
                100 * p["final"][key] if key == "utilisation" or task == "classification" else p["final"][key]
                for p in here
            ]
            axes[row][column].bar(positions, values, color=[colours[p["variant"]] for p in here])
            axes[row][column].set_xticks(positions, [p["variant"] for p in here], rotation=60, fontsize=7, ha="right")
        axes[0][column].set_title(f"K = {size}", fontsize=10)
    axes[0][0].set_ylabel("codes used, test (%)")
    axes[1][0].set_ylabel("accuracy, test (%)" if task == "classification" else SCORE_LABEL[task])
    for axis in axes[-1]:
        axis.set_xlabel("quantizer variant")
    figure.suptitle(f"{task.capitalize()} through a VQ bottleneck: after training", fontsize=11)
    return figure


def model_figures(parts, models, tasks, sizes, variants):
    """Per model: its curves and its final utilisation against the score (``tasks``: model -> task),
    by file name."""
    drawn = {}
    for model in models:
        here = [p for p in parts if p["model"] == model]
        drawn[f"curves_{model}"] = figure_curves(here, tasks[model], sizes, variants)
        drawn[f"final_{model}"] = figure_final(here, tasks[model], sizes, variants)
    return drawn


def figure_active(parts, models, variants, smooth=10):
    """One panel per model: the share of codes used by each training batch (vqtorch's "active %"),
    a moving average over ``smooth`` steps, one line per variant (parts carry "model", "variant" and
    "active", one entry per step)."""
    colours = _colours(variants)
    figure, axes = subplots(1, len(models), squeeze=False, figsize=(5.0 * len(models), 4.0), layout="constrained")
    for part in parts:
        active = 100 * np.asarray(part["active"], dtype=float)
        width = max(1, min(smooth, len(active)))
        smoothed = np.convolve(active, np.ones(width) / width, mode="valid")
        steps = np.arange(width, len(active) + 1)
        _plot_variant(axes[0][models.index(part["model"])], steps, smoothed, part["variant"], colours, 1.2)
    for column, model in enumerate(models):
        axes[0][column].set_title(model, fontsize=10)
        axes[0][column].set_xlabel("step")
    axes[0][0].set_ylabel(f"active codes per batch (%)\nmean of {smooth} steps")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, fontsize=8, ncol=min(len(labels), 5), loc="outside lower center")
    figure.suptitle("Share of the codebook used by each training batch", fontsize=11)
    return figure


# ---------------------------------------------------------------- toy Gaussian VQ (vq-toy)


def figure_divergence(runs):
    """Embeddings P (grey), codes C (blue x) and chosen codes Q (red circles) over training, one
    row per (variant, codebook scale), one column per snapshot."""
    columns = max(len(r["snapshots"]) for r in runs)
    figure, axes = subplots(len(runs), columns, squeeze=False, figsize=(2.9 * columns, 2.8 * len(runs)))
    for row, r in enumerate(runs):
        for column, snap in enumerate(r["snapshots"]):
            axis = axes[row][column]
            z_e, codebook = np.asarray(snap["z_e"]), np.asarray(snap["codebook"])
            chosen = codebook[np.unique(np.asarray(snap["indices"], dtype=np.int64))]
            axis.scatter(z_e[:, 0], z_e[:, 1], s=3, color="0.55", alpha=0.5, label="embeddings P")
            axis.scatter(codebook[:, 0], codebook[:, 1], s=14, marker="x", color="tab:blue", label="codes C")
            axis.scatter(
                chosen[:, 0], chosen[:, 1], s=30, facecolors="none", edgecolors="tab:red", label="chosen codes Q"
            )
            axis.set_title(
                f"{r['variant']}, codes x{r['code_scale']:g}\nstep {snap['step']}: "
                f"{len(chosen)}/{len(codebook)} codes chosen",
                fontsize=8,
            )
            axis.tick_params(labelsize=7)
        axes[row][0].set_ylabel("latent coordinate 2", fontsize=8)
    for axis in axes[-1]:
        axis.set_xlabel("latent coordinate 1", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="upper left")
    figure.suptitle(
        f"2-D latents of the {len(runs[0]['snapshots'][0]['z_e'])} held-out points, the codes, and the "
        "codes they choose, over training",
        fontsize=10,
    )
    figure.tight_layout()
    return figure


def figure_toy_curves(runs):
    """Utilisation, perplexity, reconstruction MSE and sliced Wasserstein gap over training."""
    panels = (
        ("utilisation", "codebook utilisation"),
        ("perplexity", "perplexity"),
        ("score", "reconstruction MSE"),
        ("sliced_wasserstein", "gap (sliced W2)"),
    )
    figure, axes = subplots(1, len(panels), figsize=(4.0 * len(panels), 3.5))
    for axis, (key, label) in zip(axes, panels):
        axis.set_title(label, fontsize=10)
        for r in runs:
            style = "-" if r["variant"] == "ste" else "--"
            axis.plot(
                r["history"]["step"], r["history"][key], style, label=f"{r['variant']}, codes x{r['code_scale']:g}"
            )
        axis.set_xlabel("step")
        axis.set_ylabel(label)
    axes[0].legend(fontsize=7)
    figure.suptitle("Toy VQ autoencoder, measured on the held-out points during training", fontsize=11)
    figure.tight_layout()
    return figure
