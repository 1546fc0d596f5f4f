"""Tables, figures and the Markdown summary of the quantized-activation experiment (``quant_act``)."""

import collections

import numpy as np

from stevq import runio
from stevq.experiments.figures import subplots


def metrics(floats, grid, instability, gradients):
    """The metrics.json content: final numbers per network, the instability rows, the coarse
    gradient norms at the instability test's starting points, every curve."""
    return {
        "float": _rows(floats),
        "grid": _rows(grid),
        "instability": _instability_rows(instability, gradients),
        "start_coarse_gradients": gradients,
        "curves": {_label(r): r["history"] for r in floats + grid + instability},
    }


def figures(config, floats, grid, instability):
    """The PNG figures by file name."""
    return {
        "loss_curves": figure_curves(config, floats, grid),
        "accuracy": figure_accuracy(config, grid),
        "instability": figure_instability(config, instability),
    }


def _label(row):
    if "from" in row:
        return f"{row['net']}-{row['bits']}bit-{row['from']}-then-{row['continued_with']}-lr{row['lr']:g}"
    return f"{row['net']}-float" if row["bits"] == "float" else f"{row['net']}-{row['bits']}bit-{row['ste']}"


def _rows(results):
    return [{key: r[key] for key in ("net", "bits", "ste", "train_loss", "test_accuracy")} for r in results]


def _instability_rows(results, gradients):
    """Loss at the start and end of the continued training, its maximum, the relative change, and
    the norm of the continuing STE's coarse gradient at the start."""
    rows = []
    for r in results:
        losses = r["history"]["train_loss"]
        norms = next(g["coarse_gradient_norm"] for g in gradients if (g["net"], g["from"]) == (r["net"], r["from"]))
        rows.append(
            {
                "net": r["net"],
                "bits": r["bits"],
                "from": r["from"],
                "continued_with": r["continued_with"],
                "lr": r["lr"],
                "grad_norm_at_start": norms[r["continued_with"]],
                "loss_start": losses[0],
                "loss_end": losses[-1],
                "loss_max": max(losses),
                "change_percent": 100.0 * (losses[-1] - losses[0]) / losses[0],
                "test_accuracy": r["test_accuracy"],
            }
        )
    return rows


def _figure(rows, columns, width, height, **options):
    """A Figure of ``rows`` x ``columns`` panels of ``width`` x ``height`` inches each."""
    return subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False, **options)


COLOURS = collections.defaultdict(
    lambda: "tab:gray",
    {
        "identity": "tab:red",
        "relu": "tab:blue",
        "clipped_relu": "tab:green",
        "leaky_clipped_relu": "tab:olive",
        "tanh": "tab:purple",
        "approx_sign": "tab:orange",
    },
)
# ReLU and clipped-ReLU curves often lie on each other: circles under a dashed line keep both visible
STYLES = {
    "identity": {"ls": "-"},
    "relu": {"ls": "-", "marker": "o", "ms": 4, "mfc": "none"},
    "clipped_relu": {"ls": "--", "lw": 1.8},
}


def figure_curves(config, floats, grid):
    """Training loss over the steps, one panel per (net, bits), one line per STE; the dotted line
    is the float ReLU network they all start from."""
    figure, axes = _figure(len(config.nets), len(config.bits), 3.6, 3.0, sharex=True)
    for r in floats:
        for axis in axes[config.nets.index(r["net"])]:
            axis.axhline(r["train_loss"], color="grey", linestyle=":", label="float ReLU")
    for r in grid:
        axis = axes[config.nets.index(r["net"])][config.bits.index(r["bits"])]
        axis.semilogy(
            r["history"]["step"],
            r["history"]["train_loss"],
            color=COLOURS[r["ste"]],
            label=r["ste"],
            **STYLES.get(r["ste"], {}),
        )
        axis.set_title(f"{r['net']}, {r['bits']}-bit activations", fontsize=10)
    for axis in axes[-1]:
        axis.set_xlabel("step")
    for row in axes:
        row[0].set_ylabel("training loss")
    axes[0][0].legend(title="STE", fontsize=8)
    figure.suptitle("Training loss of the quantized networks, from the float ReLU network (dotted)", fontsize=11)
    figure.tight_layout()
    return figure


def figure_accuracy(config, grid):
    """Final test accuracy per (net, bits), one bar per STE."""
    figure, axes = _figure(1, len(config.nets), 4.2, 3.2)
    width = 0.8 / len(config.stes)
    for column, net in enumerate(config.nets):
        axis = axes[0][column]
        for k, backward in enumerate(config.stes):
            values = [
                next(100 * r["test_accuracy"] for r in grid if (r["net"], r["bits"], r["ste"]) == (net, b, backward))
                for b in config.bits
            ]
            axis.bar(
                np.arange(len(config.bits)) + (k - (len(config.stes) - 1) / 2) * width,
                values,
                width,
                color=COLOURS[backward],
                label=backward,
            )
        axis.set_xticks(np.arange(len(config.bits)), [f"{b} bit" for b in config.bits])
        low = min(100 * r["test_accuracy"] for r in grid if r["net"] == net)
        axis.set_ylim(max(0.0, low - 5.0), 100.0)
        axis.set_title(f"{net}: test accuracy after training")
        axis.set_xlabel("activation bit width")
        axis.set_ylabel("test accuracy (%)")
    axes[0][0].legend(title="STE", fontsize=8)
    figure.tight_layout()
    return figure


def figure_instability(config, results):
    """Training loss while training continues from a good solution: the identity STE (solid)
    against the STE the network was trained with (dashed); one panel per (net, step size)."""
    figure, axes = _figure(len(config.nets), len(config.instability_lrs), 4.5, 3.3)
    for r in results:
        axis = axes[config.nets.index(r["net"])][config.instability_lrs.index(r["lr"])]
        style = "-" if r["continued_with"] == "identity" else "--"
        axis.plot(
            r["history"]["step"],
            r["history"]["train_loss"],
            style,
            color=COLOURS[r["from"]],
            label=f"{r['from']} -> {r['continued_with']}",
        )
        axis.set_title(f"{r['net']}, {r['bits']}-bit, plain SGD step {r['lr']:g}", fontsize=10)
        axis.set_xlabel("steps after the switch")
        axis.set_ylabel("training loss")
    for row in axes:
        for axis in row:
            axis.legend(fontsize=8)
    figure.suptitle(
        "Continuing from a trained network:\nthe identity STE (solid) against the STE it was trained with (dashed)",
        fontsize=10,
    )
    figure.tight_layout()
    return figure


def _cell(row):
    """'training loss / test accuracy %', the format of the paper's table."""
    return f"{row['train_loss']:.3g} / {100 * row['test_accuracy']:.2f}"


def summary(config, metrics, backend_name):
    """The Markdown summary: the paper-style table and the instability result."""
    lines = [
        f"# Quantized activations (Yin et al. 2019){' - quick' if config.quick else ''}",
        "",
        f"Data: {config.data}, {config.train_size} training / {config.test_size} test examples; "
        f"training loss measured on the first {config.loss_eval_size} training examples. "
        f"MLP hidden widths {'-'.join(map(str, config.mlp_hidden))}; LeNet-5 as in ``models.lenet5``. "
        f"A float ReLU network is trained {config.pretrain_steps} steps, then each quantized network "
        f"{config.steps} steps from it, SGD with momentum {config.momentum:g}, lr {config.lr:g} "
        f"(/10 for the last third), batch {config.batch_size}; "
        f"{'with' if config.normalize else 'without'} batch standardisation before the activations; "
        f"{config.dtype}, backend {backend_name}, seed {config.seed}.",
        "",
        "## Final training loss / test accuracy (%)",
        "",
    ]
    table = [
        {
            "net": net,
            "bits": bits,
            **{r["ste"]: _cell(r) for r in metrics["grid"] if (r["net"], r["bits"]) == (net, bits)},
        }
        for net in config.nets
        for bits in config.bits
    ]
    lines.append(runio.markdown_table(table, ["net", "bits", *config.stes]))
    lines.append(
        "The float ReLU networks they start from: "
        + "; ".join(f"{r['net']} {_cell(r)}" for r in metrics["float"])
        + "."
    )
    lines += [""] + _worst_lines(config, metrics["grid"])
    lines += [
        "",
        f"## Instability test ({config.instability_bits}-bit, {config.instability_steps} steps of plain "
        f"SGD at step sizes {', '.join(f'{lr:g}' for lr in config.instability_lrs)})",
        "",
        "Training continues from the trained ReLU / clipped-ReLU network, with the identity STE or "
        "with the STE it was trained with, on the same mini-batches. grad_norm_at_start: norm of the "
        "continuing STE's full-batch coarse gradient at the starting point.",
        "",
        runio.markdown_table(
            metrics["instability"],
            [
                "net",
                "from",
                "continued_with",
                "lr",
                "grad_norm_at_start",
                "loss_start",
                "loss_end",
                "loss_max",
                "change_percent",
                "test_accuracy",
            ],
        ),
    ]
    lines += _instability_lines(metrics["instability"])
    return "\n".join(lines) + "\n"


def _worst_lines(config, grid):
    lines = []
    for net in config.nets:
        for bits in config.bits:
            cell = [r for r in grid if (r["net"], r["bits"]) == (net, bits)]
            if len(cell) > 1:
                worst = max(cell, key=lambda r: r["train_loss"])
                lines.append(f"- {net}, {bits} bit: highest training loss with the {worst['ste']} STE.")
    return lines


FLAT_PERCENT = 1.0  # a change of the training loss within +-1% is reported as flat


def _trend(change_percent):
    if change_percent > FLAT_PERCENT:
        return "rises"
    return "falls" if change_percent < -FLAT_PERCENT else f"stays within {FLAT_PERCENT:g}% of its start"


def _instability_lines(rows):
    lines = []
    for r in rows:
        if r["continued_with"] == "identity":
            control = next(
                (
                    c
                    for c in rows
                    if (c["net"], c["from"], c["continued_with"], c["lr"]) == (r["net"], r["from"], r["from"], r["lr"])
                ),
                None,
            )
            verdict = _trend(r["change_percent"])
            text = (
                f"- {r['net']}, from the {r['from']} solution, step {r['lr']:g}: with the identity STE the "
                f"training loss {verdict} ({r['loss_start']:.4g} -> {r['loss_end']:.4g}, "
                f"{r['change_percent']:+.1f}%, peak {r['loss_max']:.4g})"
            )
            if control is not None:
                text += (
                    f"; with the {r['from']} STE: {control['loss_start']:.4g} -> {control['loss_end']:.4g} "
                    f"({control['change_percent']:+.1f}%, peak {control['loss_max']:.4g})"
                )
            lines.append(text + ".")
    return lines
