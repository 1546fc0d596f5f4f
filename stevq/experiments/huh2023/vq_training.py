"""Training every quantizer variant (``vq_quantizers``) in one network, on the experiments' one
loop (``training.fit``), with the diagnostics of Huh et al. (2023) recorded along the way.

A ``Network`` is encoder -> quantizer -> readout (a decoder trained on squared or absolute error,
or a classifier head trained on cross-entropy). Each step:

    0. (first step only) ``quantizer.data_init``  (k-means initialisation from the first batch)
    1. ``quantizer.before_step``  (alternating optimisation refines the codebook for the current
                                  assignments, which the step then re-uses)
    2. loss = task loss + quantizer_weight * quantizer loss, its gradient, one Adam (or AdamW) step
       on every parameter
    3. ``quantizer.after_step``   (EMA codebook update, dead-code replacement)

Every ``record_every`` steps the network is evaluated on a fixed evaluation set: the task score
(reconstruction MSE or accuracy), codebook utilisation, perplexity, dead codes and the distribution
gap between embeddings and codes (``stevq.metrics``); also the utilisation over the training
batches since the last record and the fraction of codes that received gradient at that step.
At every step the share of codes chosen in the current batch ("active", vqtorch's "active %") is kept.
A NaN or inf in the encoder output, the loss or the evaluation stops the run with
``runio.NonFiniteError`` naming the step and the last good metrics. On a GPU a step reads one
pair of numbers back to the host (the loss and the encoder output's largest |value|, checked
together: ``training.fit``); the traced step reads no other value (``stevq.validate``), the
quantizer's maintenance between steps calls stevq.vq's unchecked kernels, and the chosen codes are
read back once per record.
"""

import dataclasses
import math
from collections import namedtuple

import numpy as np

from stevq import metrics, ops, optim, runio, validate
from stevq.autodiff import getval, value_and_grad
from stevq.backend import namespace_of, to_numpy
from stevq.data import fresh_shuffle_indices, minibatch_indices
from stevq.experiments import training

TASKS = ("reconstruction", "classification")

LOSSES = ("mse", "l1")

# what ``evaluate`` measures for every task, in the order of the experiments' tables
SCORES = ("utilisation", "perplexity", "dead_codes", "score", "mean_gap", "var_gap", "sliced_wasserstein")

# how mini-batches are drawn: epoch by epoch (data.minibatch_indices) or each from a fresh shuffle
BATCHES = ("epochs", "fresh-shuffle")

# quantizer_weight multiplies the quantizer's loss (vqtorch's examples: 10); reconstruction_loss is
# "mse" (mean squared error) or "l1" (mean absolute error, vqtorch's autoencoder example)
Network = namedtuple(
    "Network", "encoder quantizer readout task input_shape quantizer_weight reconstruction_loss", defaults=(1.0, "mse")
)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How a network is trained and how often it is measured."""

    steps: int
    batch_size: int = 128
    lr: float = 1e-3  # on every parameter (networks and codebook)
    record_every: int = 25
    seed: int = 0  # mini-batch order and dead-code draws
    gap_rows: int = 4096  # embeddings used for the distribution gap
    snapshot_steps: tuple = ()  # steps at which embeddings and codes are kept (2-D pictures)
    snapshot_rows: int = 512
    optimizer: str = "adam"  # or "adamw" (PyTorch's AdamW, decoupled weight_decay)
    weight_decay: float = 0.01  # adamw only
    batches: str = "epochs"  # or "fresh-shuffle": each batch from a new shuffle (vqtorch's examples)

    def __post_init__(self):
        validate.number(self.steps, "steps", low=0, integer=True)
        for name in ("batch_size", "record_every", "gap_rows", "snapshot_rows"):
            validate.number(getattr(self, name), name, low=1, integer=True)
        validate.number(self.lr, "lr", low=0.0, low_inclusive=False)
        validate.choice(self.optimizer, "optimizer", ("adam", "adamw"))
        validate.number(self.weight_decay, "weight_decay", low=0.0)
        validate.choice(self.batches, "batches", BATCHES)

    def make_optimizer(self):
        """The ``stevq.optim`` triple of this schedule."""
        if self.optimizer == "adamw":
            return optim.adamw(self.lr, weight_decay=self.weight_decay)
        return optim.adam(self.lr)


def init_network(network, rng):
    """Initial (params, quantizer_state) of ``network``; ``rng`` a numpy Generator."""
    latent_shape, encoder = network.encoder[0](rng, network.input_shape)
    quantizer, state = network.quantizer.init(rng, latent_shape)
    _, readout = network.readout[0](rng, latent_shape)
    return {"encoder": encoder, "quantizer": quantizer, "readout": readout}, state


def task_loss(network, prediction, x, y):
    """Mean squared (or, with reconstruction_loss="l1", absolute) reconstruction error, or the mean
    cross-entropy of the class logits."""
    if network.task == "reconstruction":
        if network.reconstruction_loss == "l1":
            return ops.mean_absolute_error(prediction, x)
        return ops.mean(ops.square(ops.subtract(prediction, x)))
    return ops.cross_entropy(prediction, y)


def forward(network, params, state, x, indices=None, step=None, last_good=None, where="forward", side=None):
    """(prediction, aux) for inputs ``x``; the encoder output is checked for NaN/inf first, or, in a
    training step (``side`` a dict), its largest |value| is left in side["encoder_max_abs"] on the
    device for the step's one combined check."""
    z_e = network.encoder[1](params["encoder"], x)
    value = getval(z_e)
    xp = namespace_of(value)
    largest = xp.max(xp.abs(value))
    if side is None:
        runio.check_finite(step, {"encoder_output_max_abs": float(largest)}, last_good, where)
    else:
        side["encoder_max_abs"] = largest
    out, aux = network.quantizer.apply(params["quantizer"], state, z_e, indices)
    return network.readout[1](params["readout"], out), aux


def evaluate(
    network,
    params,
    state,
    data,
    gap_rows=4096,
    keep_rows=0,
    step=None,
    last_good=None,
    where="evaluation",
    measure=None,
):
    """Metrics of the network on all of ``data`` (chunks of 500, no gradient); ``step``,
    ``last_good`` and ``where`` go into the message if the encoder output is not finite.

    Returns (scores, kept): scores = {"score", "utilisation", "perplexity", "dead_codes",
    "mean_gap", "var_gap", "sliced_wasserstein"}, with "score" the MSE (reconstruction; then also
    "mae", the mean absolute error) or the accuracy (classification); kept = {"indices": all indices (host), "z_e": the first
    ``keep_rows`` embeddings, "codebook"} for saving and pictures.
    """
    num_codes = network.quantizer.num_codes
    index_chunks, embedding_chunks, total, absolute, count = [], [], 0.0, 0.0, 0
    for x, y in data.chunks(500):
        prediction, aux = forward(network, params, state, x, None, step, last_good, where)
        xp = namespace_of(prediction)
        if network.task == "reconstruction":
            error = prediction - x
            total += float(xp.mean(error * error)) * x.shape[0]
            absolute += float(xp.mean(xp.abs(error))) * x.shape[0]
        else:
            total += training.correct(prediction, y)
        count += x.shape[0]
        index_chunks.append(aux["indices"])
        if sum(e.shape[0] for e in embedding_chunks) < max(gap_rows, keep_rows):
            embedding_chunks.append(aux["z_e"])
    xp = namespace_of(aux["z_e"])
    embeddings = xp.concat(embedding_chunks, axis=0)
    gap_rows, keep_rows = min(gap_rows, embeddings.shape[0]), min(keep_rows, embeddings.shape[0])
    codebook = getval(aux["codebook"])
    scores = {
        "score": total / count,
        "utilisation": metrics.utilisation(index_chunks, num_codes),
        "perplexity": metrics.perplexity(index_chunks, num_codes),
        "dead_codes": metrics.dead_codes(index_chunks, num_codes),
    }
    if network.task == "reconstruction":
        scores["mae"] = absolute / count
    scores.update(metrics.distribution_gap(embeddings[:gap_rows, ...], codebook))
    if measure is not None:  # the caller's own numbers on the same parameters (e.g. the STE's gradient error)
        scores.update(measure(params, state))
    kept = {
        "indices": np.concatenate([to_numpy(i) for i in index_chunks]),
        "z_e": to_numpy(embeddings[:keep_rows, ...]),
        "codebook": to_numpy(codebook),
    }
    return scores, kept


def _with_params(opt_state, params):
    """The optimizer state with its parameters replaced (every ``stevq.optim`` state is a tuple
    whose first item is the parameter tree): the quantizer changes parameters outside the optimizer."""
    return (params,) + tuple(opt_state[1:])


def train(network, params, state, data, eval_data, schedule, description="training", show_progress=True, measure=None):
    """Train ``network`` from (params, state), recording on ``eval_data`` (``training.fit``);
    ``measure(params, state)`` (optional) returns more numbers for each record (e.g. the STE's
    gradient error). Returns a dict with the final "params" and "state", the "history" (a list per
    metric, one entry per record, step 0 included) and the "snapshots" (step, first embeddings,
    codebook, their indices; host arrays) taken at ``schedule.snapshot_steps``, and "active": the
    share of codes chosen in each step's batch (one entry per step)."""
    quantizer, num_codes = network.quantizer, network.quantizer.num_codes
    rng = np.random.default_rng(schedule.seed)  # the batches, then k-means and dead-code draws, in step order
    draw = minibatch_indices if schedule.batches == "epochs" else fresh_shuffle_indices
    batches = (data.take(rows) for rows in draw(rng, data.size, schedule.batch_size))
    opt_init, opt_update, get_params = schedule.make_optimizer()
    run = {"opt_state": opt_init(params), "params": params, "state": state}  # what the callbacks change
    snapshots, active = [], []
    window = np.zeros(num_codes, dtype=np.int64)  # how often each code was chosen since the last record
    chosen = []  # the step's indices since the last record, on the device until the record

    def objective(p, quantizer_state, x, y, indices, side):
        prediction, aux = forward(network, p, quantizer_state, x, indices, side=side)
        side.update(indices=getval(aux["indices"]), z_e=getval(aux["z_e"]))
        loss = task_loss(network, prediction, x, y)
        if aux["loss"] is None:
            return loss
        return ops.add(
            loss,
            aux["loss"] if network.quantizer_weight == 1.0 else ops.multiply(network.quantizer_weight, aux["loss"]),
        )

    gradient = value_and_grad(objective)

    def set_quantizer(quantizer_params):
        """The quantizer's parameters changed outside the optimizer (k-means, alternating, EMA, ...)."""
        if quantizer_params is not run["params"]["quantizer"]:
            run["params"] = dict(run["params"], quantizer=quantizer_params)
            run["opt_state"] = _with_params(run["opt_state"], run["params"])

    def compute(step, batch):
        x, y = batch
        current = run["params"]
        if step == 1:
            quantizer_params, run["state"] = quantizer.data_init(
                current["quantizer"], run["state"], lambda: network.encoder[1](current["encoder"], x), rng
            )
            set_quantizer(quantizer_params)
            current = run["params"]
        quantizer_params, run["state"], indices = quantizer.before_step(
            run["params"]["quantizer"], run["state"], lambda: network.encoder[1](current["encoder"], x)
        )
        set_quantizer(quantizer_params)
        run["side"] = {}
        loss, run["grads"] = gradient(run["params"], run["state"], x, y, indices, run["side"])
        return {"loss": loss, "encoder_output_max_abs": run["side"]["encoder_max_abs"]}

    def update(step):
        run["opt_state"] = opt_update(step - 1, run["grads"], run["opt_state"])
        run["params"] = get_params(run["opt_state"])
        quantizer_params, run["state"] = quantizer.after_step(
            run["params"]["quantizer"], run["state"], run["side"], rng
        )
        set_quantizer(quantizer_params)
        chosen.append(run["side"]["indices"])

    def record(step, numbers, last_good):
        nonlocal window
        if chosen:  # the steps' codes since the last record, read back in one transfer
            xp = namespace_of(chosen[0])
            codes = to_numpy(xp.concat([xp.reshape(c, (-1,)) for c in chosen], axis=0)).astype(np.int64)
            for step_codes in np.split(codes, np.cumsum([math.prod(c.shape) for c in chosen])[:-1]):
                counts = np.bincount(step_codes, minlength=num_codes)
                window += counts
                active.append(float(np.mean(counts > 0)))
            chosen.clear()
        keep = schedule.snapshot_rows if step in schedule.snapshot_steps else 0
        scores, kept = evaluate(
            network,
            run["params"],
            run["state"],
            eval_data,
            schedule.gap_rows,
            keep,
            step,
            last_good,
            f"{description} (evaluation)",
            measure,
        )
        codebook_gradient = run["grads"]["quantizer"].get("codebook") if step else None
        scores = dict(
            train_loss=numbers and numbers["loss"],
            **scores,
            window_utilisation=float(np.mean(window > 0)) if window.any() else None,
            grad_coverage=None if codebook_gradient is None else metrics.gradient_coverage(codebook_gradient),
        )
        if keep:
            snapshots.append(
                {"step": step, "z_e": kept["z_e"], "codebook": kept["codebook"], "indices": kept["indices"][:keep]}
            )
        window = np.zeros_like(window)
        return scores

    history = training.fit(
        schedule.steps,
        batches,
        compute,
        update,
        record,
        schedule.record_every,
        description,
        show_progress,
        schedule.snapshot_steps,
    )
    return {
        "params": run["params"],
        "state": run["state"],
        "history": history,
        "snapshots": snapshots,
        "active": active,
    }
