"""Quantized activations (Yin et al. 2019): three STEs at 1, 2 and 4 bits, and the identity STE's instability.

An MLP and a LeNet-5-style CNN with 1-, 2- and 4-bit quantized ReLU activations

    q(x) = step * clip(ceil(x / step), 0, 2^bits - 1)

are trained with each of the three straight-through estimators of ``stevq.ste`` (identity, ReLU,
clipped ReLU), all from the same float ReLU network trained first (the paper also starts from
pretrained float weights). The step of each bit width is the one that minimises the mean squared
error E[(q(x) - x)^2] for half-Gaussian x (x = |z|, z ~ N(0, 1)), fixed in advance; with
``normalize=True`` a batch standardisation without scale/shift puts the pre-activations on that
scale, as in the paper.

The instability test: starting from the trained ReLU (and clipped-ReLU) network, training
continues with the identity STE at a small step (plain SGD), and for control with the STE the
network was trained with, on the same mini-batches. The training loss is evaluated along the way
(the paper's finding: with the identity STE it rises), and at the starting point the norm of each
STE's full-batch coarse gradient is recorded: training with the ReLU STE has made its own coarse
gradient small there, while the identity STE's need not be, so even small identity-STE steps leave
the good solution.

Quick mode: the MLP only, 6000 training examples, a few hundred steps (seconds). Full mode: the MLP
and LeNet-5 on all 60000 Fashion-MNIST training examples (minutes on two cores; LeNet-5 dominates).
"""

import dataclasses
import io
import math

import numpy as np

from stevq import backend, ops, optim, runio, ste, validate
from stevq.autodiff import grad
from stevq.backend import asarray, to_numpy
from stevq.experiments import images as image_data
from stevq.experiments import settings
from stevq.experiments.protocol import Experiment, Part
from stevq.experiments.settings import setting
from stevq.experiments.yin2019 import models
from stevq.experiments.yin2019 import quant_act_report as report
from stevq.experiments.yin2019.activation_quantizer import (
    half_gaussian_step,  # noqa: F401  (Lecture 3 reads it here)
    quantized_activation,
)
from stevq.experiments.yin2019.quant_act_data import data_origin, datasets
from stevq.experiments.yin2019.sgd_training import annealed, evaluate, train

NAME = "quant-act"


@dataclasses.dataclass(frozen=True)
class Config(image_data.ImageConfig):
    """Settings of the quantized-activation experiment; ``None`` fields take the quick/full default."""

    data: str = setting("fashion-mnist", '"fashion-mnist", "mnist" or "synthetic" (random class blobs)')
    nets: tuple | None = setting(None, 'subset of ("mlp", "lenet5")')
    mlp_hidden: tuple = setting((256, 256, 256, 256), "widths of the MLP's hidden layers")
    bits: tuple = setting((1, 2, 4), "activation bit widths of the grid")
    stes: tuple = setting(ste.SURROGATES, "backward passes of the grid: names of stevq.ste.REGISTRY")
    normalize: bool = setting(True, "batch standardisation before every quantized activation")
    train_size: int | None = setting(None, "training examples used (first n of the training set)")
    test_size: int | None = setting(None, "test examples used (first n of the test set)")
    loss_eval_size: int | None = setting(None, "training examples on which the training loss is measured")
    batch_size: int = 128
    lr: float = setting(0.02, "SGD with momentum, as in the paper")
    momentum: float = setting(0.9, "SGD momentum")
    pretrain_steps: int | None = setting(None, "float ReLU network")
    steps: int | None = setting(None, "each quantized network")
    eval_every: int | None = setting(None, "steps between two measurements of the training loss")
    instability_bits: int = setting(2, "bit width of the instability test")
    instability_from: tuple = setting(
        ("relu", "clipped_relu"), "STEs whose trained networks the instability test continues from"
    )
    instability_lrs: tuple | None = setting(None, "step sizes of plain SGD (no momentum) after the switch")
    instability_steps: int | None = setting(None, "steps of the instability test")
    instability_eval_every: int | None = setting(None, "steps between two measurements in the instability test")
    dtype: str = "float32"

    def __post_init__(self):
        quick = {
            "nets": ("mlp",),
            "train_size": 6000,
            "test_size": 2000,
            "loss_eval_size": 2000,
            "pretrain_steps": 200,
            "steps": 120,
            "eval_every": 20,
            "instability_lrs": (0.05,),
            "instability_steps": 40,
            "instability_eval_every": 5,
        }
        full = {
            "nets": ("mlp", "lenet5"),
            "train_size": 60000,
            "test_size": 10000,
            "loss_eval_size": 5000,
            "pretrain_steps": 1200,
            "steps": 700,
            "eval_every": 70,
            "instability_lrs": (0.001, 0.01, 0.05),
            "instability_steps": 150,
            "instability_eval_every": 15,
        }
        settings.fill_mode_defaults(
            self, quick, full, ("nets", "mlp_hidden", "bits", "stes", "instability_from", "instability_lrs")
        )
        for field in ("nets", "bits", "stes", "instability_from", "instability_lrs"):  # mlp_hidden may repeat a width
            validate.distinct(getattr(self, field), field)
        validate.choice(self.data, "data", ("fashion-mnist", "mnist", "synthetic"))
        for net in self.nets:
            validate.choice(net, "nets", tuple(models.NETWORKS))
        for width in self.mlp_hidden:
            validate.number(width, "mlp_hidden", low=1, integer=True)
        for bits in self.bits + (self.instability_bits,):
            validate.number(bits, "bits", low=1, high=8, integer=True)
        for name in self.stes:  # any registered surrogate (stevq.ste.REGISTRY)
            validate.choice(name, "stes", tuple(ste.REGISTRY))
        for name in self.instability_from:
            validate.choice(name, "instability_from", ste.SURROGATES)
        for field in (
            "train_size",
            "test_size",
            "loss_eval_size",
            "batch_size",
            "eval_every",
            "instability_eval_every",
        ):
            validate.number(getattr(self, field), field, low=1, integer=True)
        for field in ("pretrain_steps", "steps", "instability_steps"):
            validate.number(getattr(self, field), field, low=0, integer=True)
        validate.number(self.lr, "lr", low=0.0, low_inclusive=False)
        for lr in self.instability_lrs:
            validate.number(lr, "instability_lrs", low=0.0, low_inclusive=False)
        validate.number(self.momentum, "momentum", low=0.0, high=1.0)
        validate.choice(self.dtype, "dtype", ("float32", "float64"))
        for field in ("loss_eval_size", "batch_size"):
            if getattr(self, field) > self.train_size:
                raise ValueError(f"{field}: {getattr(self, field)} exceeds train_size {self.train_size}")


def build(net, activation, config):
    """The network ``net`` of ``config`` with the given activation factory."""
    options = {"hidden": config.mlp_hidden} if net == "mlp" else {}
    return models.NETWORKS[net](activation, normalize=config.normalize, dtype=config.dtype, **options)


# ---------------------------------------------------------------- parts of a run


def save_params(path, params):
    """Write a ``serial`` parameter list (list of dicts of arrays) to an .npz file, atomically."""
    arrays = {f"{index}/{key}": to_numpy(value) for index, layer in enumerate(params) for key, value in layer.items()}
    buffer = io.BytesIO()
    np.savez(buffer, layers=np.asarray(len(params)), **arrays)
    runio.atomic_write_bytes(path, buffer.getvalue())


def load_params(path, dtype):
    """Read what ``save_params`` wrote, onto the active backend."""
    with np.load(path) as stored:
        params = [{} for _ in range(int(stored["layers"]))]
        for key in stored.files:
            if key != "layers":
                index, name = key.split("/")
                params[int(index)][name] = asarray(stored[key], dtype)
    return params


# ---------------------------------------------------------------- the parts: each trains from a fresh init or
# from the saved parameters of the part it continues, in the run directory


def params_path(context, part):
    return context.dir / "parts" / f"{part}.npz"


def trained(context, part, apply, start, phases, seed, eval_every, extra):
    """Part ``part``: train ``apply`` from the parameters of part ``start`` (or a fresh init when
    ``start`` is a list of params), save the parameters, return the metrics."""
    config, (train_set, test_set) = context.config, context.data
    params = load_params(params_path(context, start), config.dtype) if isinstance(start, str) else start
    params, history = train(
        apply,
        params,
        train_set,
        phases,
        config.batch_size,
        seed,
        config.loss_eval_size,
        eval_every,
        part,
        context.progress,
    )
    save_params(params_path(context, part), params)
    test_loss, test_accuracy = evaluate(apply, params, test_set)
    return dict(
        extra, train_loss=history["train_loss"][-1], test_loss=test_loss, test_accuracy=test_accuracy, history=history
    )


def pretrained(context, net):
    """The float ReLU network every quantized network starts from."""
    config = context.config
    init, apply = build(net, models.relu_activation, config)
    _, params = init(np.random.default_rng(config.seed), (1, 28, 28))
    schedule = annealed(config.pretrain_steps, config.lr, config.momentum)
    return trained(
        context,
        float_name(net),
        apply,
        params,
        schedule,
        config.seed + 1,
        config.eval_every,
        {"net": net, "bits": "float", "ste": "-"},
    )


def quantized(context, net, bits, backward):
    """The ``bits``-bit network trained with the ``backward`` STE from the float network; every
    STE sees the same mini-batches."""
    config = context.config
    _, apply = build(net, quantized_activation(bits, backward), config)
    schedule = annealed(config.steps, config.lr, config.momentum)
    return trained(
        context,
        quantized_name(net, bits, backward),
        apply,
        float_name(net),
        schedule,
        config.seed + 2,
        config.eval_every,
        {"net": net, "bits": bits, "ste": backward},
    )


def continued(context, net, source, backward, lr):
    """The instability test: continue the trained ``source``-STE network with the ``backward``
    STE at step ``lr`` (plain SGD), on the same mini-batches for every ``backward``."""
    config, bits = context.config, context.config.instability_bits
    _, apply = build(net, quantized_activation(bits, backward), config)
    return trained(
        context,
        continued_name(net, bits, source, backward, lr),
        apply,
        quantized_name(net, bits, source),
        [(config.instability_steps, optim.sgd(lr))],
        config.seed + 3,
        config.instability_eval_every,
        {"net": net, "bits": bits, "from": source, "continued_with": backward, "lr": lr},
    )


def start_gradients(context, net, source):
    """At the trained ``source``-STE network: the norm of the full-batch coarse gradient that each
    STE computes (on the training-loss examples). A minimum for one STE is a point where its own
    coarse gradient is small; the identity STE's need not be."""
    config, bits = context.config, context.config.instability_bits
    params = load_params(params_path(context, quantized_name(net, bits, source)), config.dtype)
    norms = {
        backward: coarse_gradient_norm(
            build(net, quantized_activation(bits, backward), config)[1], params, context.data[0], config.loss_eval_size
        )
        for backward in ste.SURROGATES
    }
    return {"net": net, "bits": bits, "from": source, "coarse_gradient_norm": norms}


def float_name(net):
    return f"{net}-float"


def quantized_name(net, bits, backward):
    return f"{net}-{bits}bit-{backward}"


def continued_name(net, bits, source, backward, lr):
    return f"{quantized_name(net, bits, source)}-then-{backward}-lr{lr:g}"


def coarse_gradient_norm(apply, params, dataset, limit):
    """|| mean over the first ``limit`` examples of the (coarse) gradient of the loss ||, the
    gradient that the network's STE computes, over all parameters (large batches, summed)."""
    gradient = grad(lambda p, x, y: ops.multiply(ops.cross_entropy(apply(p, x), y), float(y.shape[0])))
    total, count = None, 0
    for images, labels in dataset.chunks(1000, limit):
        batch = gradient(params, images, labels)
        total = batch if total is None else optim.tree_map(lambda a, b: a + b, total, batch)
        count += labels.shape[0]
    leaves = optim.tree_leaves(total)
    return math.sqrt(sum(float(to_numpy(backend.namespace_of(g).sum(g * g))) for g in leaves)) / count


# ---------------------------------------------------------------- the run


def _instability(config):
    return [
        (net, source, backward, lr)
        for net in config.nets
        for source in config.instability_from
        for lr in config.instability_lrs
        for backward in dict.fromkeys(("identity", source))
    ]


def plan(config):
    """The parts: the float networks, every (net, bits, STE), the instability test's continued
    networks and the coarse-gradient norms at their starting points; each quantized network
    continues its float network, the instability parts continue a quantized one."""
    bits = config.instability_bits
    parts = [Part(float_name(net), pretrained, (net,)) for net in config.nets]
    grid = [(net, b, backward) for net in config.nets for b in config.bits for backward in config.stes]
    grid += [(net, bits, source) for net in config.nets for source in config.instability_from]
    parts += [Part(quantized_name(*q), quantized, q, (float_name(q[0]),)) for q in dict.fromkeys(grid)]
    parts += [
        Part(
            continued_name(net, bits, source, backward, lr),
            continued,
            (net, source, backward, lr),
            (quantized_name(net, bits, source),),
        )
        for net, source, backward, lr in _instability(config)
    ]
    parts += [
        Part(
            f"{quantized_name(net, bits, source)}-coarse-gradients",
            start_gradients,
            (net, source),
            (quantized_name(net, bits, source),),
        )
        for net in config.nets
        for source in config.instability_from
    ]
    return parts


def summarize(config, results):
    """(metrics, summary, figures) from the parts' results (by part name)."""
    bits = config.instability_bits
    floats = [results[float_name(net)] for net in config.nets]
    grid = [
        results[quantized_name(net, b, backward)]
        for net in config.nets
        for b in config.bits
        for backward in config.stes
    ]
    instability = [
        results[continued_name(net, bits, source, backward, lr)] for net, source, backward, lr in _instability(config)
    ]
    gradients = [
        results[f"{quantized_name(net, bits, source)}-coarse-gradients"]
        for net in config.nets
        for source in config.instability_from
    ]
    metrics = report.metrics(floats, grid, instability, gradients)
    return (metrics, report.summary(config, metrics, backend.name()), report.figures(config, floats, grid, instability))


EXPERIMENT = Experiment(
    NAME,
    Config,
    plan,
    summarize,
    {
        "float": ("net", "bits", "ste"),
        "grid": ("net", "bits", "ste"),
        "instability": ("net", "bits", "from", "continued_with", "lr"),
    },
    load_data=datasets,
    data_origin=data_origin,
    doc=__doc__,
)
