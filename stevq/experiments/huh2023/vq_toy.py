"""Toy Gaussian VQ (Huh et al. 2023): how the codes drift away from the embeddings, in pictures.

Part 1, the covariate-shift setting (``stevq.theory.covariate_shift``): 512 fixed embeddings
P ~ N(0, 0.5 I), 128 codes C ~ N(-1 1, 0.3 I) in 2-D, 20 gradient steps on the codebook loss alone.
Standard codes: only the chosen ones move, most are never updated. Affine codes (shared scale and
shift, learned or from running statistics): every code moves. Repeated over several seeds, affine
learning-rate multipliers, and both readings of the paper's 0.5 and 0.3 (variances, or standard
deviations: variances 0.25 and 0.09).

Part 2, a small autoencoder on Gaussian data: x ~ N(0, I) in ``data_dim`` dimensions, an MLP
encoder to a 2-D latent, a VQ layer, an MLP decoder, trained on squared error with Adam. Standard
VQ ("ste") against alternating optimisation alone and Huh et al.'s fixes ("affine+alt+sync"), each
from codebooks initialised at several scales. Snapshots of the embeddings P, the codes C and the chosen codes Q over training
give the paper's divergence figure; the curves show utilisation, perplexity, reconstruction error
and the distribution gap, and every record measures the STE's gradient error beside the commitment
error (``ste_error``).
"""

import dataclasses

import numpy as np

from stevq import backend, data, metrics, runio, theory, validate
from stevq.autodiff import getval
from stevq.backend import namespace_of
from stevq.experiments import settings, training
from stevq.experiments.huh2023 import vq_models, vq_plots, vq_quantizers, vq_training
from stevq.experiments.protocol import Experiment, Part, config_part
from stevq.experiments.settings import BaseConfig, setting

NAME = "vq-toy"
PARAMETERIZATIONS = ("standard", "affine", "running")
# the paper's N(0, 0.5 I) and N(-1, 0.3 I) read as variances or as standard deviations
READINGS = {"variance": (0.5, 0.3), "std": (0.25, 0.09)}
STE_ERRORS = ("ste_relative_error", "ste_cosine", "commitment_error")  # what ste_error measures


@dataclasses.dataclass(frozen=True)
class Config(BaseConfig):
    """Settings of the toy experiment; ``None`` fields take the quick/full default."""

    shift_seeds: int | None = setting(None, "covariate shift: seeds n seed .. n seed + n - 1")
    shift_affine_lrs: tuple = setting((1.0, 4.0), "affine learning-rate multipliers tried there")
    shift_readings: tuple = setting(tuple(READINGS), "how N(0, 0.5 I), N(-1, 0.3 I) are read")
    data_dim: int = setting(8, "dimension of the Gaussian data")
    train_size: int = setting(3072, "training points")
    eval_size: int = setting(1024, "held-out points: metrics and pictures")
    num_codes: int = 128
    code_scales: tuple = setting((1.0, 5.0), "codebook initialised as N(0, scale^2 I)")
    variants: tuple = setting(
        ("ste", "alternating", "affine+alt+sync"), "quantizer variants (keys of vq_quantizers.VARIANTS, not fsq)"
    )
    steps: int | None = setting(None, "Adam steps per autoencoder run")
    batch_size: int = 128
    lr: float = setting(3e-3, "Adam step size")
    record_every: int | None = None
    snapshots: int = setting(4, "pictures per run, evenly spaced, step 0 included")
    beta: float = 0.25
    nu: float = 1.0
    affine_lr: float = 4.0
    alt_rate: float = 0.5
    dtype: str = "float64"

    def __post_init__(self):
        quick = {"shift_seeds": 3, "steps": 150, "record_every": 25}
        full = {"shift_seeds": 20, "steps": 1500, "record_every": 50}
        settings.fill_mode_defaults(
            self, quick, full, ("shift_affine_lrs", "shift_readings", "code_scales", "variants")
        )
        for field in ("shift_affine_lrs", "shift_readings", "code_scales", "variants"):
            validate.distinct(getattr(self, field), field)
        for reading in self.shift_readings:
            validate.choice(reading, "shift_readings", tuple(READINGS))
        for variant in self.variants:  # the pictures need 2-D codes: every VQ variant, not FSQ
            validate.choice(variant, "variants", tuple(v for v in vq_quantizers.VARIANTS if v != "fsq"))
        for field in (
            "shift_seeds",
            "data_dim",
            "train_size",
            "eval_size",
            "num_codes",
            "batch_size",
            "record_every",
            "snapshots",
            "steps",
        ):
            validate.number(getattr(self, field), field, low=1, integer=True)
        for value in self.shift_affine_lrs + self.code_scales:
            validate.number(value, "shift_affine_lrs/code_scales", low=0.0, low_inclusive=False)
        validate.choice(self.dtype, "dtype", ("float32", "float64"))
        validate.number(self.lr, "lr", low=0.0, low_inclusive=False)
        vq_quantizers.settings_of(self)  # checks the quantizer settings


def snapshot_steps(config):
    """``config.snapshots`` steps from 0 to ``config.steps``, evenly spaced."""
    return tuple(sorted({int(round(s)) for s in np.linspace(0, config.steps, config.snapshots)}))


def covariate_shift_part(config, reading, affine_lr):
    """Huh et al.'s toy over ``config.shift_seeds`` = n seeds (n seed .. n seed + n - 1, so that
    runs with different ``seed`` share none): per parameterisation the mean (and min, max) over
    them of the fraction of codes never updated and ever chosen, and the gap."""
    embedding_var, code_var = READINGS[reading]
    runs = [
        theory.covariate_shift(
            PARAMETERIZATIONS,
            seed=config.seed * config.shift_seeds + k,
            affine_lr=affine_lr,
            embedding_var=embedding_var,
            code_var=code_var,
        )
        for k in range(config.shift_seeds)
    ]
    rows = []
    for name in PARAMETERIZATIONS:
        never = [r[name]["never_updated"] for r in runs]
        chosen = [r[name]["ever_chosen"] for r in runs]
        rows.append(
            {
                "reading": reading,
                "parameterization": name,
                "affine_lr": affine_lr,
                "seeds": len(runs),
                "never_updated": float(np.mean(never)),
                "never_updated_min": min(never),
                "never_updated_max": max(never),
                "ever_chosen": float(np.mean(chosen)),
                "gap_before": float(np.mean([r[name]["gap_before"]["sliced_wasserstein"] for r in runs])),
                "gap_after": float(np.mean([r[name]["gap_after"]["sliced_wasserstein"] for r in runs])),
            }
        )
    return {"rows": rows}


def gaussian_data(config):
    """(train, eval) ``training.Data`` of x ~ N(0, I) in ``config.data_dim`` dimensions."""
    points = data.gaussian(
        config.train_size + config.eval_size, np.zeros(config.data_dim), 1.0, seed=config.seed + 100, dtype=config.dtype
    )
    return (
        training.Data(points[: config.train_size], dtype=config.dtype),
        training.Data(points[config.train_size :], dtype=config.dtype),
    )


def autoencoder_part(context, variant, code_scale):
    """One autoencoder run; every run starts from the same networks (seeded), only the codebook
    scale and the variant differ."""
    config, (train_data, eval_data) = context.config, context.data
    quantizer = vq_quantizers.make_quantizer(variant, vq_quantizers.settings_of(config, init_scale=code_scale), 2)
    network = vq_training.Network(
        vq_models.mlp_encoder(2, dtype=config.dtype),
        quantizer,
        vq_models.mlp_decoder(config.data_dim, dtype=config.dtype),
        "reconstruction",
        (config.data_dim,),
    )
    params, state = vq_training.init_network(network, np.random.default_rng(config.seed))
    schedule = vq_training.Schedule(
        config.steps,
        config.batch_size,
        config.lr,
        config.record_every,
        config.seed + 1,
        snapshot_steps=snapshot_steps(config),
        snapshot_rows=config.eval_size,
    )  # the pictures show the points the summary counts
    result = vq_training.train(
        network,
        params,
        state,
        train_data,
        eval_data,
        schedule,
        f"{variant} (codes x{code_scale:g})",
        context.progress,
        ste_error(network, eval_data),
    )
    final = {key: values[-1] for key, values in result["history"].items()}
    return {
        "variant": variant,
        "code_scale": code_scale,
        "final": final,
        "history": result["history"],
        "snapshots": result["snapshots"],
    }


def ste_error(network, eval_data):
    """``measure`` for ``vq_training.train``: on the evaluation points, the straight-through
    gradient's error (``metrics.ste_gradient_error``: the decoder's loss gradient at z_q against
    the one at z_e, the decoder held fixed) and the commitment error mean ||z_e - z_q||^2, which
    Huh et al. (2023) say the gradient error grows with."""

    def measure(params, state):
        x = eval_data.x
        z_e = network.encoder[1](params["encoder"], x)
        _, aux = network.quantizer.apply(params["quantizer"], state, z_e)
        z_e, z_q = getval(aux["z_e"]), getval(aux["z_q"])
        decoded_loss = lambda z: vq_training.task_loss(network, network.readout[1](params["readout"], z), x, None)
        error = metrics.ste_gradient_error(decoded_loss, z_e, z_q)
        xp = namespace_of(z_e)
        commitment = float(xp.mean(xp.sum((z_e - z_q) ** 2, axis=-1)))
        return {
            "ste_relative_error": error["relative_error"],
            "ste_cosine": error["cosine"],
            "commitment_error": commitment,
        }

    return measure


def plan(config):
    """The covariate-shift parts (one per reading and affine lr) and one autoencoder part per
    (codebook scale, variant)."""
    return [
        config_part(f"shift-{reading}-affine_lr{a:g}", covariate_shift_part, (reading, a))
        for reading in config.shift_readings
        for a in config.shift_affine_lrs
    ] + [
        Part(f"ae-{variant}-codes{scale:g}", autoencoder_part, (variant, scale))
        for scale in config.code_scales
        for variant in config.variants
    ]


def summarize(config, results):
    """(metrics, summary, figures) from the parts' results (by part name)."""
    parts = plan(config)
    shift = [row for part in parts if part.compute is not autoencoder_part for row in results[part.name]["rows"]]
    runs = [results[part.name] for part in parts if part.compute is autoencoder_part]
    table = [
        {"variant": r["variant"], "code_scale": r["code_scale"]}
        | {key: r["final"][key] for key in vq_training.SCORES + STE_ERRORS}
        for r in runs
    ]
    metrics = {
        "covariate_shift": shift,
        "autoencoder": table,
        "curves": {f"{r['variant']}-codes{r['code_scale']:g}": r["history"] for r in runs},
    }
    figures = {"divergence": vq_plots.figure_divergence(runs), "toy_curves": vq_plots.figure_toy_curves(runs)}
    return metrics, summary(config, shift, table), figures


def summary(config, shift, table):
    lines = [
        f"# Toy Gaussian VQ (Huh et al. 2023){' - quick' if config.quick else ''}",
        "",
        "## 1. Covariate shift: 512 fixed embeddings N(0, 0.5 I), 128 codes N(-1, 0.3 I), "
        f"20 SGD steps (lr 0.1) on the codebook loss; mean over {config.shift_seeds} seeds",
        "",
        "reading: 0.5 and 0.3 taken as variances, or as standard deviations (variances 0.25, 0.09).",
        "",
        runio.markdown_table(
            shift,
            [
                "reading",
                "parameterization",
                "affine_lr",
                "never_updated",
                "never_updated_min",
                "never_updated_max",
                "ever_chosen",
                "gap_before",
                "gap_after",
            ],
        ),
        "never_updated: fraction of codes whose value never changed; gap: sliced 2-Wasserstein "
        "distance between embeddings and codes (affine_lr only matters for the learned affine "
        "parameterisation).",
        "",
        f"## 2. Autoencoder {config.data_dim}-D Gaussian -> 2-D latent -> {config.num_codes} codes "
        f"-> {config.data_dim}-D, {config.steps} Adam steps (lr {config.lr:g}, batch "
        f"{config.batch_size}), measured on {config.eval_size} held-out points",
        "",
        runio.markdown_table(
            table,
            ["variant", "code_scale", *vq_training.SCORES, "commitment_error", "ste_relative_error"],
        ),
        "score: reconstruction MSE; code_scale: the codebook starts as N(0, scale^2 I); commitment_error: "
        "mean ||z_e - z_q||^2; ste_relative_error: ||g(z_q) - g(z_e)|| / ||g(z_e)||, g the decoder loss's "
        "gradient (metrics.ste_gradient_error). Pictures: divergence.png; curves: toy_curves.png.",
        "",
        *_findings(table),
        "",
        f"Backend {backend.name()}, {config.dtype}, seed {config.seed}.",
    ]
    return "\n".join(lines) + "\n"


def _findings(table):
    """Per codebook scale: each variant's share of used codes and reconstruction error."""
    lines = []
    for scale in dict.fromkeys(r["code_scale"] for r in table):
        here = [r for r in table if r["code_scale"] == scale]
        lines.append(
            f"- codes x{scale:g}: "
            + "; ".join(
                f"{r['variant']} uses {100 * r['utilisation']:.1f}% of the codes ({r['dead_codes']} dead, gap "
                f"{runio.readable(r['sliced_wasserstein'], 3)}), MSE {runio.readable(r['score'])}"
                for r in here
            )
            + "."
        )
    return lines


SEED_TABLES = {  # the metrics averaged over seeds, by their key fields
    "covariate_shift": ("reading", "parameterization", "affine_lr", "seeds"),
    "autoencoder": ("variant", "code_scale"),
}
EXPERIMENT = Experiment(NAME, Config, plan, summarize, SEED_TABLES, load_data=gaussian_data, doc=__doc__)
