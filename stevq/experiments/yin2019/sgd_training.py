"""Training and evaluation of the quant-act classifiers: mini-batch SGD with momentum on the
cross-entropy, in phases (each with a fresh optimizer state), on the shared loop ``training.fit``."""

import numpy as np

from stevq import ops, optim
from stevq.autodiff import value_and_grad
from stevq.backend import to_numpy
from stevq.data import minibatch_indices
from stevq.experiments import training


def evaluate(apply, params, dataset, limit=None):
    """Mean cross-entropy and accuracy over the first ``limit`` examples (large batches)."""
    total_loss, right, count = 0.0, 0, 0
    for images, labels in dataset.chunks(1000, limit):
        logits = apply(params, images)
        total_loss += float(to_numpy(ops.cross_entropy(logits, labels))) * labels.shape[0]
        right += training.correct(logits, labels)
        count += labels.shape[0]
    return total_loss / count, right / count


# ---------------------------------------------------------------- training


def annealed(steps, lr, momentum):
    """The schedule of every network here: SGD with momentum at ``lr``, then at ``lr / 10`` for the
    last third of the steps, so that training ends close to a minimum (where the instability test
    starts). A list of phases (steps, optimizer) for ``train``."""
    first = (2 * steps) // 3
    return [(first, optim.sgd(lr, momentum)), (steps - first, optim.sgd(lr / 10, momentum))]


def train(
    apply,
    params,
    train_set,
    phases,
    batch_size,
    seed,
    loss_eval_size,
    eval_every,
    description="training",
    show_progress=True,
):
    """Mini-batch training of cross-entropy through ``phases``, a list of (steps, optimizer) run one
    after the other (each optimizer starts from a fresh state), on ``training.fit``. Returns
    (params, history) with the training loss on the first ``loss_eval_size`` training examples at
    step 0 and every ``eval_every`` steps. Raises ``runio.NonFiniteError`` naming the step if a loss
    is NaN or inf."""
    objective = value_and_grad(lambda p, x, y: ops.cross_entropy(apply(p, x), y))
    batches = (
        train_set.take(rows) for rows in minibatch_indices(np.random.default_rng(seed), train_set.size, batch_size)
    )
    # per step: its optimizer and its step within the phase (a phase starts its optimizer afresh)
    schedule = [(optimizer, k) for steps, optimizer in phases for k in range(steps)]
    run = {"params": params, "state": None, "get_params": None}

    def current():
        return run["params"] if run["state"] is None else run["get_params"](run["state"])

    def compute(step, batch):
        (opt_init, _, get_params), k = schedule[step - 1]
        if k == 0:
            run["params"] = current()
            run["state"], run["get_params"] = opt_init(run["params"]), get_params
        loss, run["grads"] = objective(get_params(run["state"]), *batch)
        return {"batch_loss": loss}

    def update(step):
        (_, opt_update, _), k = schedule[step - 1]
        run["state"] = opt_update(k, run["grads"], run["state"])

    def record(step, numbers, last_good):
        return {"train_loss": evaluate(apply, current(), train_set, loss_eval_size)[0]}

    history = training.fit(len(schedule), batches, compute, update, record, eval_every, description, show_progress)
    return current(), history
