"""VQ bottleneck on MNIST-scale images (Huh et al. 2023): index collapse and its fixes, measured.

A convolutional VQ-VAE (``vq_models.conv_encoder`` -> quantizer -> ``conv_decoder``, squared error)
and a VQ classifier (encoder -> quantizer -> ``classifier_head``, cross-entropy) on Fashion-MNIST
(or MNIST), codebook sizes 64 / 256 / 1024, every quantizer variant of ``vq_quantizers``: plain STE,
EMA, + affine, + alternating, + sync, all three, dead-code replacement, the rotation trick, and FSQ
at a comparable codebook size. All variants of a (model, size) start from the same networks and
see the same mini-batches.

Per run: the test score (reconstruction MSE or accuracy), codebook utilisation, perplexity, dead
codes and the distribution gap between embeddings and codes, on the test images, and their curves
over training (recorded on a smaller evaluation set every ``record_every`` steps). Each run is a
resumable part (``runio.Run.part``); its test-set code indices are kept in ``parts/NAME.indices.npz``.
"""

import dataclasses
import io

import numpy as np

from stevq import backend, runio, validate
from stevq.experiments import images as image_data
from stevq.experiments import settings, training
from stevq.experiments.huh2023 import vq_models, vq_plots, vq_quantizers, vq_training
from stevq.experiments.protocol import Experiment, Part
from stevq.experiments.settings import setting

NAME = "vq-bottleneck"
MODELS = {"vqvae": "reconstruction", "classifier": "classification"}


@dataclasses.dataclass(frozen=True)
class Config(image_data.ImageConfig):
    """Settings of the VQ-bottleneck experiment; ``None`` fields take the quick/full default."""

    models: tuple | None = setting(None, 'subset of ("vqvae", "classifier")')
    sizes: tuple | None = setting(None, "codebook sizes")
    variants: tuple | None = setting(None, "keys of vq_quantizers.VARIANTS")
    train_size: int | None = None
    test_size: int | None = setting(None, "first n test images: final metrics")
    curve_size: int | None = setting(None, "first n test images: the curves during training")
    steps: int | None = setting(None, "Adam steps per run")
    batch_size: int | None = None
    lr: float = setting(1e-3, "Adam")
    record_every: int | None = None
    latent_dim: int = setting(8, "VQ code dimension (FSQ: one channel per level)")
    width: int = setting(16, "channels of the first convolution")
    beta: float = 0.25
    init_scale: float = setting(1.0, "codebook initialised as N(0, init_scale^2)")
    nu: float = 1.0
    affine_lr: float = 10.0
    alt_rate: float = 0.5
    ema_decay: float = setting(0.99, "EMA codebook: decay of the running averages")
    dead_threshold: int = 20
    dtype: str = "float32"

    def __post_init__(self):
        quick = {
            "models": ("vqvae",),
            "sizes": (64,),
            "variants": ("ste", "affine+alt+sync", "dead-code", "fsq"),
            "train_size": 1024,
            "test_size": 256,
            "curve_size": 128,
            "steps": 50,
            "batch_size": 64,
            "record_every": 10,
        }
        full = {
            "models": tuple(MODELS),
            "sizes": (64, 256, 1024),
            "variants": tuple(vq_quantizers.VARIANTS),
            "train_size": 60000,
            "test_size": 2000,
            "curve_size": 256,
            "steps": 300,
            "batch_size": 128,
            "record_every": 25,
        }
        settings.fill_mode_defaults(self, quick, full, ("models", "sizes", "variants"))
        for field in ("models", "sizes", "variants"):
            validate.distinct(getattr(self, field), field)
        validate.choice(self.data, "data", ("fashion-mnist", "mnist"))
        for model in self.models:
            validate.choice(model, "models", tuple(MODELS))
        for variant in self.variants:
            validate.choice(variant, "variants", tuple(vq_quantizers.VARIANTS))
        for size in self.sizes:
            validate.number(size, "sizes", low=2, integer=True)
            if "fsq" in self.variants:
                try:
                    vq_quantizers.fsq_levels(size)
                except ValueError as err:
                    raise ValueError(f"sizes: {size} codes has no FSQ counterpart ({err})") from None
        for field in (
            "train_size",
            "test_size",
            "curve_size",
            "steps",
            "batch_size",
            "record_every",
            "latent_dim",
            "width",
            "dead_threshold",
        ):
            validate.number(getattr(self, field), field, low=1, integer=True)
        validate.number(self.lr, "lr", low=0.0, low_inclusive=False)
        if self.curve_size > self.test_size:
            raise ValueError(f"curve_size: {self.curve_size} exceeds test_size {self.test_size}")
        if self.batch_size > self.train_size:
            raise ValueError(f"batch_size: {self.batch_size} exceeds train_size {self.train_size}")
        validate.choice(self.dtype, "dtype", ("float32", "float64"))
        self.settings(self.sizes[0])  # checks the quantizer settings

    def settings(self, num_codes):
        """The quantizer settings for a codebook of ``num_codes`` codes."""
        return vq_quantizers.settings_of(self, num_codes=num_codes)


def load_data(config):
    """(train, curve, test) ``training.Data``: the first ``train_size`` training images and the
    first ``curve_size`` / ``test_size`` test images, 1 x 28 x 28 in [0, 1], with labels."""
    images = image_data.load(config)
    return (
        training.Data(images.train_images, images.train_labels, config.dtype),
        training.Data(images.test_images[: config.curve_size], images.test_labels[: config.curve_size], config.dtype),
        training.Data(images.test_images, images.test_labels, config.dtype),
    )


def build(config, model, num_codes, variant):
    """The ``vq_training.Network`` of one run."""
    quantizer = vq_quantizers.make_quantizer(variant, config.settings(num_codes), config.latent_dim)
    readout = (
        vq_models.conv_decoder(config.width, config.dtype)
        if model == "vqvae"
        else vq_models.classifier_head(dtype=config.dtype)
    )
    return vq_training.Network(
        vq_models.conv_encoder(quantizer.latent_dim, config.width, config.dtype),
        quantizer,
        readout,
        MODELS[model],
        vq_models.IMAGE_SHAPE,
    )


def part_name(model, num_codes, variant):
    return f"{model}-K{num_codes}-{variant}"


def save_indices(path, indices):
    """The test-set code indices of a run, as an .npz file (atomic)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, indices=np.asarray(indices, dtype=np.int32))
    runio.atomic_write_bytes(path, buffer.getvalue())


def train_part(context, model, num_codes, variant):
    """One (model, size, variant) run: train, then measure on the test images."""
    config, (train_data, curve_data, test_data) = context.config, context.data
    network = build(config, model, num_codes, variant)
    # same networks for every variant: the encoder's first layers and the readout draw from the same seed
    params, state = vq_training.init_network(network, np.random.default_rng(config.seed))
    schedule = vq_training.Schedule(config.steps, config.batch_size, config.lr, config.record_every, config.seed + 1)
    name = part_name(model, num_codes, variant)
    result = vq_training.train(network, params, state, train_data, curve_data, schedule, name, context.progress)
    final, kept = vq_training.evaluate(
        network,
        result["params"],
        result["state"],
        test_data,
        schedule.gap_rows,
        step=config.steps,
        where=f"{name} (test set)",
    )
    codes = network.quantizer.num_codes
    save_indices(context.dir / "parts" / f"{name}.indices.npz", kept["indices"])
    final["code_histogram"] = np.bincount(kept["indices"], minlength=codes).tolist()
    return {
        "model": model,
        "num_codes": num_codes,
        "codebook_size": codes,
        "variant": variant,
        "final": final,
        "history": result["history"],
    }


def plan(config):
    """One part per (model, size, variant)."""
    return [
        Part(part_name(model, size, variant), train_part, (model, size, variant))
        for model in config.models
        for size in config.sizes
        for variant in config.variants
    ]


def summarize(config, results):
    """(metrics, summary, figures) from the parts' results (by part name)."""
    parts = [results[part.name] for part in plan(config)]
    rows = [
        {"model": p["model"], "K": p["num_codes"], "codes": p["codebook_size"], "variant": p["variant"]}
        | {key: p["final"][key] for key in vq_training.SCORES}
        for p in parts
    ]
    metrics = {
        "rows": rows,
        "curves": {part_name(p["model"], p["num_codes"], p["variant"]): p["history"] for p in parts},
        "code_histograms": {
            part_name(p["model"], p["num_codes"], p["variant"]): p["final"]["code_histogram"] for p in parts
        },
    }
    figures = vq_plots.model_figures(parts, config.models, MODELS, config.sizes, config.variants)
    return metrics, summary(config, rows), figures


def _findings(rows, model):
    """Plain STE against the other variants, per codebook size, in words and numbers."""
    lines = []
    better = "lower" if MODELS[model] == "reconstruction" else "higher"
    for size in sorted({r["K"] for r in rows}):
        here = {r["variant"]: r for r in rows if r["K"] == size}
        if "ste" not in here:
            continue
        ste = here["ste"]
        others = [r for v, r in here.items() if v != "ste"]
        line = (
            f"- K = {size}: plain STE uses {100 * ste['utilisation']:.1f}% of the codes "
            f"({ste['codes'] - ste['dead_codes']} of {ste['codes']}, perplexity {ste['perplexity']:.1f}), "
            f"{_score(model, ste)}."
        )
        if others:
            best = max(others, key=lambda r: r["utilisation"])
            ratio = best["utilisation"] / ste["utilisation"] if ste["utilisation"] > 0 else float("inf")
            line += (
                f" Highest utilisation: {best['variant']} with {100 * best['utilisation']:.1f}% "
                f"({ratio:.1f}x), {_score(model, best)} ({better} is better). Others: "
                + ", ".join(
                    f"{r['variant']} {100 * r['utilisation']:.1f}% / {_score(model, r, short=True)}"
                    for r in others
                    if r is not best
                )
                + "."
            )
        lines.append(line)
    return lines


def _score(model, row, short=False):
    if MODELS[model] == "reconstruction":
        return f"{row['score']:.4f}" if short else f"test MSE {row['score']:.4f}"
    return f"{100 * row['score']:.1f}%" if short else f"test accuracy {100 * row['score']:.1f}%"


def summary(config, rows):
    lines = [
        f"# VQ bottleneck (Huh et al. 2023){' - quick' if config.quick else ''}",
        "",
        f"Data: {config.data}, first {config.train_size} training images; final metrics on the first "
        f"{config.test_size} test images, curves on the first {config.curve_size}. {config.steps} Adam steps "
        f"(lr {config.lr:g}, batch {config.batch_size}); latent 7 x 7 x {config.latent_dim}; beta {config.beta:g}, "
        f"codebook init N(0, {config.init_scale:g}^2), nu {config.nu:g}, affine_lr {config.affine_lr:g}, "
        f"alternating rate {config.alt_rate:g}, EMA decay {config.ema_decay:g}, dead-code threshold "
        f"{config.dead_threshold} steps; {config.dtype}, backend {backend.name()}, seed {config.seed}.",
        "",
        "utilisation: fraction of the codes chosen at least once on the test images; dead_codes: codes "
        "never chosen there; gaps between the test embeddings and the (effective) codebook: mean_gap = "
        "||mean z - mean c||, var_gap = ||var z - var c||, sliced_wasserstein = sliced W2. FSQ's "
        "codebook is its grid (codes = its size), its embeddings the bounded values on the grid's scale.",
        "",
    ]
    for model in config.models:
        here = [r for r in rows if r["model"] == model]
        score = "test MSE" if MODELS[model] == "reconstruction" else "test accuracy"
        lines += [
            f"## {model} (score = {score})",
            "",
            runio.markdown_table(here, ["K", "codes", "variant", *vq_training.SCORES]),
            *_findings(here, model),
            "",
        ]
    return "\n".join(lines) + "\n"


SEED_TABLES = {"rows": ("model", "K", "codes", "variant")}  # the metrics averaged over seeds, by their key fields
EXPERIMENT = Experiment(
    NAME, Config, plan, summarize, SEED_TABLES, load_data=load_data, data_origin=image_data.origin, doc=__doc__
)
