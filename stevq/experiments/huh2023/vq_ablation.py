"""Huh et al.'s (2023) MNIST ablation, re-implemented the way their code runs it (vqtorch,
examples/autoencoder.py and examples/classification.py; docs/reference/vq.md).

Both of their networks (``vq_models.pool_encoder`` -> VQ on 32-D vectors with 256 codes -> the
``upsample_decoder`` trained on L1, or the ``pool_classifier`` trained on cross-entropy), PyTorch's
default initialisation, inputs scaled to [-1, 1], AdamW (lr 3e-4, weight decay 0.01) on every
parameter, batch 256, 1000 steps, loss = task loss + 10 * vq loss in their convention
(1 - beta) L_com + beta L_cb with beta = 0.95. The rows:

    baseline                 plain STE, codebook N(0, 1) (nn.Embedding's default)
    kmeans                   + k-means initialisation from the first batch
    kmeans+sync              + synchronized update (nu = 2 autoencoder, 1 classifier)
    kmeans+sync+affine       + affine re-parameterisation (affine_lr = 2 autoencoder, 10 classifier)
    kmeans+sync+affine+alt   + alternating optimisation (no official run: vqtorch's in-place
                             update refuses beta != 1 and fails with the affine codebook)
    alt                      baseline + alternating optimisation (stevq's inner codebook step)
    dead-code                baseline + dead-code replacement (codes unused for 20 steps re-seeded)
    fsq                      FSQ with levels (8, 6, 5) = 240 codes in place of the VQ layer (the
                             encoder's last convolution has 3 channels), no auxiliary loss
    sync, affine             (not in the default list) one fix at a time on the baseline

The first four rows are cumulative, as in their scripts. Every row of a model starts from the same
network weights and sees the same first epoch of mini-batches. Measured: the share of the codebook
used by each training batch ("active %", their progress bar) at every step, and every
``record_every`` steps on the first ``test_size`` test images the utilisation, perplexity, dead
codes, the gap between embeddings and codes, and the reconstruction error (MSE and L1) or the
accuracy. Each (model, row) is a resumable part seeded from (config.seed, model), independent of the
others.
"""

import dataclasses
import zlib

import numpy as np

from stevq import backend, runio, validate
from stevq.experiments import images as image_data
from stevq.experiments import settings, training
from stevq.experiments.huh2023 import vq_models, vq_plots, vq_quantizers, vq_training
from stevq.experiments.huh2023.vq_quantizers import Variant
from stevq.experiments.protocol import Experiment, Part
from stevq.experiments.settings import setting

NAME = "vq-ablation"
MODELS = {"autoencoder": "reconstruction", "classifier": "classification"}
ROWS = {
    "baseline": Variant(),
    "kmeans": Variant(kmeans=True),
    "kmeans+sync": Variant(kmeans=True, estimator="sync"),
    "kmeans+sync+affine": Variant(kmeans=True, estimator="sync", affine=True),
    "kmeans+sync+affine+alt": Variant(kmeans=True, estimator="sync", affine=True, alternating=True),
    "alt": Variant(alternating=True),
    "dead-code": Variant(dead_code=True),
    "fsq": Variant(fsq=True),
    "sync": Variant(estimator="sync"),
    "affine": Variant(affine=True),
}
DEFAULT_ROWS = tuple(ROWS)[:8]
# The choices of each protocol where stevq and the authors' code differ (settings left at None take
# them): "stevq" is this experiment's own; "vqtorch" reproduces what vqtorch's examples do
# (docs/reference/vqtorch-ablation.md): torchpq's
# farthest-point k-means with up to 100 Lloyd iterations, every batch from a fresh shuffle, and only
# the four cumulative rows their scripts run.
PROTOCOLS = {
    "stevq": {"kmeans_seeding": "kmeans++", "kmeans_steps": 10, "batches": "epochs", "rows": DEFAULT_ROWS},
    "vqtorch": {
        "kmeans_seeding": "farthest",
        "kmeans_steps": 100,
        "batches": "fresh-shuffle",
        "rows": ("baseline", "kmeans", "kmeans+sync", "kmeans+sync+affine"),
    },
}
FINAL_KEYS = ("active", "utilisation", "perplexity", "dead_codes", "mean_gap", "sliced_wasserstein", "score")


@dataclasses.dataclass(frozen=True)
class Config(image_data.ImageConfig):
    """Settings of the ablation; ``None`` fields take the quick/full default. The defaults are
    the published ones."""

    models: tuple | None = setting(None, 'subset of ("autoencoder", "classifier")')
    rows: tuple | None = setting(None, "keys of ROWS")
    train_size: int | None = None
    test_size: int | None = setting(None, "first n test images: every measurement")
    steps: int | None = setting(None, "AdamW steps per run")
    batch_size: int | None = None
    record_every: int | None = setting(None, "steps between two measurements on the test images")
    lr: float = setting(3e-4, "AdamW")
    weight_decay: float = setting(0.01, "AdamW (PyTorch's default)")
    num_codes: int = 256
    latent_dim: int = setting(32, "VQ code dimension")
    beta: float = setting(0.95, "vqtorch's convention: (1 - beta) L_com + beta L_cb")
    vq_weight: float = setting(10.0, 'loss = task loss + vq_weight * vq loss ("alpha" in their scripts)')
    nu_autoencoder: float = setting(2.0, "sync: the chosen codes get nu x the task gradient (autoencoder)")
    nu_classifier: float = setting(1.0, "sync: the same for the classifier")
    affine_lr_autoencoder: float = setting(2.0, "affine: learning-rate multiplier of scale and shift (autoencoder)")
    affine_lr_classifier: float = setting(10.0, "affine: the same for the classifier")
    init_scale: float = setting(1.0, "baseline codebook N(0, init_scale^2)")
    alt_rate: float = 0.5
    alt_steps: int = setting(1, "alternating: codebook steps before each training step")
    dead_threshold: int = 20
    protocol: str = setting(
        "stevq", '"stevq", or "vqtorch": the choices of the authors\' code for the None settings below'
    )
    kmeans_seeding: str | None = setting(
        None, 'k-means initialisation: "kmeans++" (D^2 sampling) or "farthest" (torchpq\'s)'
    )
    kmeans_steps: int | None = setting(None, "k-means initialisation: Lloyd iterations (farthest: at most this many)")
    kmeans_tol: float = setting(1e-4, "farthest: stop once the codes move less (sum of squares)")
    batches: str | None = setting(None, '"epochs" (a shuffle per epoch) or "fresh-shuffle" (a shuffle per batch)')
    dtype: str = "float32"

    def __post_init__(self):
        validate.choice(self.protocol, "protocol", tuple(PROTOCOLS))
        choices = PROTOCOLS[self.protocol]
        quick = {
            "models": tuple(MODELS),
            "train_size": 256,
            "test_size": 64,
            "steps": 16,
            "batch_size": 8,
            "record_every": 8,
            **choices,
        }
        full = {
            "models": tuple(MODELS),
            "train_size": 60000,
            "test_size": 5000,
            "steps": 1000,
            "batch_size": 256,
            "record_every": 250,
            **choices,
        }
        settings.fill_mode_defaults(self, quick, full, ("models", "rows"))
        validate.distinct(self.models, "models")
        validate.distinct(self.rows, "rows")
        validate.choice(self.data, "data", ("fashion-mnist", "mnist"))
        validate.choice(self.kmeans_seeding, "kmeans_seeding", vq_quantizers.KMEANS_SEEDINGS)
        validate.choice(self.batches, "batches", vq_training.BATCHES)
        for model in self.models:
            validate.choice(model, "models", tuple(MODELS))
        for row in self.rows:
            validate.choice(row, "rows", tuple(ROWS))
        for field in ("train_size", "test_size", "steps", "batch_size", "record_every", "latent_dim"):
            validate.number(getattr(self, field), field, low=1, integer=True)
        validate.number(self.lr, "lr", low=0.0, low_inclusive=False)
        validate.number(self.vq_weight, "vq_weight", low=0.0)
        if self.batch_size > self.train_size:
            raise ValueError(f"batch_size: {self.batch_size} exceeds train_size {self.train_size}")
        if any(ROWS[row].kmeans for row in self.rows) and self.batch_size * 49 < self.num_codes:
            raise ValueError(
                f"batch_size: k-means initialisation needs at least {self.num_codes} embeddings "
                f"in the first batch (49 per image), got batch_size {self.batch_size}"
            )
        validate.choice(self.dtype, "dtype", ("float32", "float64"))
        for model in self.models:
            self.settings(model)  # checks the quantizer settings

    def settings(self, model):
        """The quantizer settings of ``model`` (its own nu and affine_lr, as in their two scripts)."""
        nu, affine_lr = getattr(self, f"nu_{model}"), getattr(self, f"affine_lr_{model}")
        return vq_quantizers.settings_of(self, convention="vqtorch", nu=nu, affine_lr=affine_lr)


def load_data(config):
    """(train, test) ``training.Data``: 1 x 28 x 28 images scaled to [-1, 1], with labels."""
    images = image_data.load(config)
    return (
        training.Data(2 * images.train_images - 1, images.train_labels, config.dtype),
        training.Data(2 * images.test_images - 1, images.test_labels, config.dtype),
    )


def build(config, model, row):
    """The ``vq_training.Network`` of one (model, row)."""
    quantizer = vq_quantizers.make_quantizer(row, config.settings(model), config.latent_dim, ROWS[row])
    readout = (
        vq_models.upsample_decoder(dtype=config.dtype)
        if model == "autoencoder"
        else vq_models.pool_classifier(dtype=config.dtype)
    )
    return vq_training.Network(
        vq_models.pool_encoder(quantizer.latent_dim, dtype=config.dtype),
        quantizer,
        readout,
        MODELS[model],
        vq_models.IMAGE_SHAPE,
        config.vq_weight,
        "l1",
    )


def part_name(model, row):
    return f"{model}-{row}"


def part_seed(config, model, purpose):
    """A seed from (config.seed, model, purpose) alone: every row of a model shares it."""
    return zlib.crc32(f"{config.seed}/{model}/{purpose}".encode())


def schedule(config, model):
    return vq_training.Schedule(
        config.steps,
        config.batch_size,
        config.lr,
        config.record_every,
        part_seed(config, model, "batches"),
        optimizer="adamw",
        weight_decay=config.weight_decay,
        batches=config.batches,
    )


def train_part(context, model, row):
    """One (model, row) run: train, measuring on the test images every ``record_every`` steps."""
    config, (train_data, test_data) = context.config, context.data
    network = build(config, model, row)
    params, state = vq_training.init_network(network, np.random.default_rng(part_seed(config, model, "init")))
    result = vq_training.train(
        network, params, state, train_data, test_data, schedule(config, model), part_name(model, row), context.progress
    )
    history, active = result["history"], result["active"]
    final = {key: history[key][-1] for key in history if key not in ("step", "train_loss")}
    final["active"] = float(np.mean(active[-max(1, len(active) // 20) :]))  # last 5% of the steps
    quantizer = result["params"]["quantizer"]
    affine = {
        key: float(np.linalg.norm(backend.to_numpy(quantizer[key]))) for key in ("scale", "shift") if key in quantizer
    }
    return {
        "model": model,
        "row": row,
        "variant": row,
        "num_codes": network.quantizer.num_codes,
        "settings": dataclasses.asdict(config.settings(model)),
        "quantizer": dataclasses.asdict(ROWS[row]),
        "final": final,
        "history": history,
        "active": active,
        "affine_norms": affine,
    }


def plan(config):
    """One part per (model, row)."""
    return [Part(part_name(model, row), train_part, (model, row)) for model in config.models for row in config.rows]


def summarize(config, results):
    """(metrics, summary, figures) from the parts' results (by part name)."""
    parts = [results[part.name] for part in plan(config)]
    rows = [
        {"model": p["model"], "row": p["row"], "codes": p["num_codes"], "mae": p["final"].get("mae")}
        | {key: p["final"][key] for key in FINAL_KEYS}
        for p in parts
    ]
    metrics = {
        "rows": rows,
        "curves": {part_name(p["model"], p["row"]): p["history"] for p in parts},
        "active": {part_name(p["model"], p["row"]): p["active"] for p in parts},
        "affine_norms": {part_name(p["model"], p["row"]): p["affine_norms"] for p in parts},
    }
    one_column = [dict(p, num_codes=config.num_codes) for p in parts]  # FSQ's 240 codes drawn with the VQ rows
    figures = {
        "active": vq_plots.figure_active(parts, config.models, config.rows),
        **vq_plots.model_figures(one_column, config.models, MODELS, (config.num_codes,), config.rows),
    }
    return metrics, summary(config, rows), figures


def summary(config, rows):
    lines = [
        f"# Huh et al.'s MNIST ablation (vqtorch protocol){' - quick' if config.quick else ''}",
        "",
        f"Data: {config.data} in [-1, 1], first {config.train_size} training images; measured on the first "
        f"{config.test_size} test images. {config.steps} AdamW steps (lr {config.lr:g}, weight decay "
        f"{config.weight_decay:g}, batch {config.batch_size}); {config.num_codes} codes on {config.latent_dim}-D "
        f"vectors (7 x 7 per image); loss = task + {config.vq_weight:g} * ((1 - beta) L_com + beta L_cb), "
        f"beta {config.beta:g}; nu {config.nu_autoencoder:g} / {config.nu_classifier:g} and affine_lr "
        f"{config.affine_lr_autoencoder:g} / {config.affine_lr_classifier:g} (autoencoder / classifier); "
        f"{config.dtype}, backend {backend.name()}, seed {config.seed}. Protocol {config.protocol}: "
        f"k-means {config.kmeans_seeding} with {config.kmeans_steps} Lloyd steps, batches {config.batches}.",
        "",
        "active: share of the codes used by a training batch (mean over the last 5% of the steps; "
        'vqtorch\'s "active %"); utilisation: share of the codes used on the test images; dead_codes: '
        "codes never used there; mean_gap and sliced_wasserstein: gap between the test embeddings and the "
        "(effective) codebook; score: reconstruction MSE (mae: L1) or accuracy. FSQ has 240 codes.",
        "",
    ]
    for model in config.models:
        here = [
            dict(r, accuracy_percent=100 * r["score"]) if MODELS[model] == "classification" else r
            for r in rows
            if r["model"] == model
        ]
        reconstruction = MODELS[model] == "reconstruction"
        columns = ["row", "codes", *FINAL_KEYS] + (["mae"] if reconstruction else [])
        if not reconstruction:  # the accuracy as a percentage, as in the findings and the figures
            columns[columns.index("score")] = "accuracy_percent"
        score = "test MSE" if reconstruction else "test accuracy (%)"
        lines += [f"## {model} (score = {score})", "", runio.markdown_table(here, columns), *_findings(here, model), ""]
    return "\n".join(lines + _caveats(config, rows)) + "\n"


def _caveats(config, rows):
    """What a short run cannot show, said where its numbers are read."""
    notes = []
    if "dead-code" in config.rows and config.steps < config.dead_threshold:
        notes.append(
            f"- {config.steps} steps never reach the dead-code threshold of {config.dead_threshold} unused "
            "steps: no code is ever replaced, so the dead-code row trains as the baseline does and does "
            "not test the fix."
        )
    low = [r for r in rows if MODELS[r["model"]] == "classification" and r["score"] < 0.2]
    if low:
        notes.append(
            f"- {len(low)} classifier rows are within 10 points of chance (10%, e.g. "
            f"{100 * low[0]['score']:.0f}% for {low[0]['row']}): too little training to rank the rows."
        )
    if config.quick and notes:
        notes = ["## Caveats of the quick mode", "", "The quick mode checks the code, not the claims:", *notes, ""]
    elif notes:
        notes = ["## Caveats", "", *notes, ""]
    return notes


def _findings(rows, model):
    """Each row against the baseline, in words: active codes per batch, test utilisation, score."""
    by_row = {r["row"]: r for r in rows}
    if "baseline" not in by_row:
        return []

    def said(r):
        score = (
            f"test MSE {r['score']:.4f}, L1 {r['mae']:.4f}"
            if MODELS[model] == "reconstruction"
            else f"test accuracy {100 * r['score']:.1f}%"
        )
        return (
            f"{100 * r['active']:.1f}% of the codes active per batch, {100 * r['utilisation']:.1f}% used on the "
            f"test images, {score}"
        )

    lines = [f"- baseline: {said(by_row['baseline'])}."]
    lines += [f"- {name}: {said(r)}." for name, r in by_row.items() if name != "baseline"]
    return lines


SEED_TABLES = {"rows": ("model", "row", "codes")}  # the metrics averaged over seeds, by their key fields
EXPERIMENT = Experiment(
    NAME, Config, plan, summarize, SEED_TABLES, load_data=load_data, data_origin=image_data.origin, doc=__doc__
)
