"""Case (a): one training step of an MLP VQ-VAE, 784-512-64, codebook 512 x 64, batch 256, float32.

    encoder  x (784) -> dense 512 -> ReLU -> dense 64 = z_e
    VQ       q = argmin_k ||z_e - c_k||^2, z_q = C[q], straight-through output z_e + sg(z_q - z_e)
    decoder  -> dense 512 -> ReLU -> dense 784 = x_hat
    loss     mean (x_hat - x)^2 + mean (z_q - sg(z_e))^2 + 0.25 mean (z_e - sg(z_q))^2
    update   Adam, lr 1e-3, on every weight, bias and the codebook

The same step is written three times: with stevq (``nn``, ``vq.VectorQuantizer``, ``optim.adam``
updating its state in place, ``donate=True``), with plain ``autograd.numpy`` in its fastest form
(the nine leaves as nine positional arguments, Adam in place) and with PyTorch as a PyTorch user
writes it (``F.linear`` with (out, in) weights, the nearest code by ``torch.addmm(||c||^2, z, C^T,
alpha=-2).argmin(1)``, ``torch.optim.Adam(fused=True)``). All three start from the same weights and
the same batch; their first losses are compared. ``sizes`` (input, hidden, D, K, batch) changes the
problem: case (e) and the scaling table (``scaling.py``) use it.
"""

import numpy as np
import timing  # benchmarks/ is on sys.path (run.py puts it there)

SIZES = {"full": (784, 512, 64, 512, 256), "small": (12, 8, 4, 6, 16)}  # input, hidden, D, K, batch
BETA = 0.25
LR = 1e-3


def sizes_of(small, sizes):
    return tuple(sizes) if sizes is not None else SIZES["small" if small else "full"]


def problem(small=False, seed=0, sizes=None):
    """Host (NumPy float32) weights and batch: {"x", "layers": [(W, b)] x 4, "codebook"}."""
    n_in, hidden, dim, codes, batch = sizes_of(small, sizes)
    rng = np.random.default_rng(seed)

    def dense(fan_in, fan_out):
        return (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32), np.zeros(
            fan_out, np.float32
        )

    layers = [dense(n_in, hidden), dense(hidden, dim), dense(dim, hidden), dense(hidden, n_in)]
    # codes drawn among the typical encoder outputs, so that many of them are used
    codebook = (0.5 * rng.standard_normal((codes, dim))).astype(np.float32)
    x = rng.uniform(0.0, 1.0, (batch, n_in)).astype(np.float32)
    return {"x": x, "layers": layers, "codebook": codebook}


def _stevq_problem(small, sizes):
    """(loss(params), params) of the stevq step: the layers, quantizer and batch of ``problem``."""
    import stevq
    from stevq import nn, ops, vq

    n_in, hidden, dim, _, _ = sizes_of(small, sizes)
    data = problem(small, sizes=sizes)
    encoder = nn.serial(nn.Dense(hidden, "float32"), nn.Relu, nn.Dense(dim, "float32"))[1]
    decoder = nn.serial(nn.Dense(hidden, "float32"), nn.Relu, nn.Dense(n_in, "float32"))[1]
    quantizer = vq.VectorQuantizer(data["codebook"].shape[0], beta=BETA, dtype="float32")[1]
    as_layer = lambda pair: {"W": stevq.asarray(pair[0]), "b": stevq.asarray(pair[1])}
    layers = [as_layer(pair) for pair in data["layers"]]
    params = {
        "encoder": [layers[0], {}, layers[1]],
        "quantizer": {"codebook": stevq.asarray(data["codebook"])},
        "decoder": [layers[2], {}, layers[3]],
    }
    x = stevq.asarray(data["x"])

    def loss(p):
        z, aux = quantizer(p["quantizer"], encoder(p["encoder"], x))
        reconstruction = ops.mean(ops.square(ops.subtract(decoder(p["decoder"], z), x)))
        return ops.add(reconstruction, aux["loss"])

    return loss, params


def stevq_step(small=False, sizes=None):
    return timing.stevq_adam_step(*_stevq_problem(small, sizes), LR)


def stevq_forward_backward(small=False, sizes=None):
    """The step without its update: the loss and the gradients of the same parameters, every call."""
    from stevq import autodiff

    loss, params = _stevq_problem(small, sizes)
    loss_and_grads = autodiff.value_and_grad(loss)
    return lambda: float(loss_and_grads(params)[0])


def stevq_adam_alone(small=False, sizes=None):
    """The update without the step: ``optim.adam(donate=True)`` applied to one fixed set of gradients."""
    from stevq import autodiff, optim

    loss, params = _stevq_problem(small, sizes)
    grads = autodiff.value_and_grad(loss)(params)[1]
    opt_init, opt_update, _ = optim.adam(LR, donate=True)
    state = {"opt": opt_init(params), "step": 0}

    def step():
        state["opt"] = opt_update(state["step"], grads, state["opt"])
        state["step"] += 1

    return step


def autograd_step(small=False, sizes=None):
    """The same step in plain autograd.numpy, in the fastest form autograd's public API allows: the
    nine leaves are nine positional arguments (``argnum`` a tuple; a nested list would be traced as
    one container, whose every access costs a zero-filled copy of all the parameters), ``@`` whose
    gradient autograd computes with matmuls, the codebook gradient through ``codebook[indices]``
    (autograd's ``np.add.at``), and Adam in place in NumPy with one scratch array per leaf."""
    import autograd.numpy as anp  # noqa: F401  (the traced functions below are autograd.numpy's)
    from autograd import value_and_grad
    from autograd.tracer import getval

    data = problem(small, sizes=sizes)
    leaves = [array.copy() for pair in data["layers"] for array in pair] + [data["codebook"].copy()]
    x = data["x"]

    def loss(w1, b1, w2, b2, w3, b3, w4, b4, codebook):
        z_e = anp.maximum(x @ w1 + b1, 0.0) @ w2 + b2
        table, rows = getval(codebook), getval(z_e)
        indices = np.argmin(np.sum(table * table, axis=1) - 2.0 * (rows @ table.T), axis=1)
        z_q = codebook[indices]
        z = z_e + getval(z_q - z_e)  # straight-through: value z_q, gradient to z_e
        x_hat = anp.maximum(z @ w3 + b3, 0.0) @ w4 + b4
        codebook_loss = anp.mean((z_q - getval(z_e)) ** 2)
        commitment = anp.mean((z_e - getval(z_q)) ** 2)
        return anp.mean((x_hat - x) ** 2) + codebook_loss + BETA * commitment

    loss_and_grads = value_and_grad(loss, argnum=tuple(range(len(leaves))))
    moments = [np.zeros_like(leaf) for leaf in leaves]
    squares = [np.zeros_like(leaf) for leaf in leaves]
    scratch = [np.zeros_like(leaf) for leaf in leaves]
    state = {"step": 0}

    def step():
        value, grads = loss_and_grads(*leaves)
        state["step"] += 1
        root = np.sqrt(1 - 0.999 ** state["step"])
        size, eps = LR * root / (1 - 0.9 ** state["step"]), 1e-8 * root
        for leaf, g, m, s, tmp in zip(leaves, grads, moments, squares, scratch):
            np.subtract(g, m, out=tmp)
            tmp *= 0.1
            m += tmp
            np.multiply(g, g, out=tmp)
            tmp -= s
            tmp *= 0.001
            s += tmp
            np.sqrt(s, out=tmp)
            tmp += eps
            np.divide(m, tmp, out=tmp)
            tmp *= size
            leaf -= tmp
        return float(value)

    return step


def torch_adam(torch, parameters, lr):
    """torch.optim.Adam in its fastest CPU form: fused (one kernel over all parameters, PyTorch >=
    2.4), else foreach (multi-tensor)."""
    try:
        return torch.optim.Adam(parameters, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(parameters, lr=lr, foreach=True)


def torch_nearest(torch, z, codebook):
    """argmin_k ||c_k||^2 - 2 z . c_k in one fused addmm, no (N, K, D) or extra (N, K) arrays."""
    with torch.no_grad():
        return torch.addmm((codebook * codebook).sum(1), z, codebook.T, alpha=-2).argmin(1)


def _torch_problem(small, sizes):
    """(loss(), optimizer) of the PyTorch step: what a PyTorch user writes: nn.Linear's layout
    ((out, in) weights, ``F.linear``), the addmm nearest code, ``mse_loss``, fused Adam."""
    import torch
    import torch.nn.functional as F

    data = problem(small, sizes=sizes)
    tensors = [
        (torch.tensor(w.T.copy(), requires_grad=True), torch.tensor(b, requires_grad=True)) for w, b in data["layers"]
    ]
    codebook = torch.tensor(data["codebook"], requires_grad=True)
    x = torch.from_numpy(data["x"])
    optimizer = torch_adam(torch, [t for pair in tensors for t in pair] + [codebook], LR)
    (w1, b1), (w2, b2), (w3, b3), (w4, b4) = tensors

    def loss():
        z_e = F.linear(torch.relu(F.linear(x, w1, b1)), w2, b2)
        z_q = codebook[torch_nearest(torch, z_e.detach(), codebook.detach())]
        z = z_e + (z_q - z_e).detach()
        x_hat = F.linear(torch.relu(F.linear(z, w3, b3)), w4, b4)
        return F.mse_loss(x_hat, x) + F.mse_loss(z_q, z_e.detach()) + BETA * F.mse_loss(z_e, z_q.detach())

    return loss, optimizer


def _torch_backward_step(small, sizes, update):
    """zero_grad(set_to_none=True), loss, backward, and (``update``) the fused Adam step."""
    loss_of, optimizer = _torch_problem(small, sizes)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of()
        loss.backward()
        if update:
            optimizer.step()
        return float(loss.detach())

    return step


def torch_step(small=False, sizes=None):
    return _torch_backward_step(small, sizes, update=True)


def torch_forward_backward(small=False, sizes=None):
    return _torch_backward_step(small, sizes, update=False)


def torch_adam_alone(small=False, sizes=None):
    """The fused Adam step on one fixed set of gradients."""
    loss_of, optimizer = _torch_problem(small, sizes)
    loss_of().backward()
    return optimizer.step


def contenders(torch_available):
    """name -> factory(small) of a step callable (returning the loss); stevq first. The last rows
    split the step: forward + backward alone, and Adam alone (each pair compared with each other)."""
    found = {"stevq": stevq_step, "autograd.numpy": autograd_step}
    if torch_available:
        found["PyTorch"] = torch_step
    found[FB_STEVQ] = stevq_forward_backward
    if torch_available:
        found[FB_TORCH] = torch_forward_backward
    found[ADAM_STEVQ] = stevq_adam_alone
    if torch_available:
        found[ADAM_TORCH] = torch_adam_alone
    return found


FB_STEVQ, FB_TORCH = "stevq, forward + backward alone", "PyTorch, forward + backward alone"
ADAM_STEVQ, ADAM_TORCH = "stevq, Adam alone (12 NumPy passes)", "PyTorch, fused Adam alone"
# each PyTorch part is compared with the same part of stevq (its ratio: stevq part / PyTorch part)
REFERENCES = {FB_STEVQ: FB_STEVQ, FB_TORCH: FB_STEVQ, ADAM_STEVQ: ADAM_STEVQ, ADAM_TORCH: ADAM_STEVQ}
TITLE = "(a) MLP VQ-VAE 784-512-64, K = 512 x 64, batch 256: forward + VQ + backward + Adam"
TARGETS = (("PyTorch", 1.1),)
