"""Case (a): one training step of an MLP VQ-VAE, 784-512-64, codebook 512 x 64, batch 256, float32.

    encoder  x (784) -> dense 512 -> ReLU -> dense 64 = z_e
    VQ       q = argmin_k ||z_e - c_k||^2, z_q = C[q], straight-through output z_e + sg(z_q - z_e)
    decoder  -> dense 512 -> ReLU -> dense 784 = x_hat
    loss     mean (x_hat - x)^2 + mean (z_q - sg(z_e))^2 + 0.25 mean (z_e - sg(z_q))^2
    update   Adam, lr 1e-3, on every weight, bias and the codebook

The same step is written three times: with stevq (``nn``, ``vq.VectorQuantizer``, ``optim.adam``),
with plain ``autograd.numpy`` as an autograd user would write it, and with PyTorch (``torch.optim.Adam``).
All three start from the same weights and the same batch; their first losses are compared.
"""
import numpy as np

import timing  # benchmarks/ is on sys.path (run.py puts it there)

SIZES = {"full": (784, 512, 64, 512, 256), "small": (12, 8, 4, 6, 16)}  # input, hidden, D, K, batch
BETA = 0.25
LR = 1e-3


def problem(small=False, seed=0):
    """Host (NumPy float32) weights and batch: {"x", "layers": [(W, b)] x 4, "codebook"}."""
    n_in, hidden, dim, codes, batch = SIZES["small" if small else "full"]
    rng = np.random.default_rng(seed)

    def dense(fan_in, fan_out):
        return (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32), np.zeros(fan_out, np.float32)
    layers = [dense(n_in, hidden), dense(hidden, dim), dense(dim, hidden), dense(hidden, n_in)]
    # codes drawn among the typical encoder outputs, so that many of them are used
    codebook = (0.5 * rng.standard_normal((codes, dim))).astype(np.float32)
    x = rng.uniform(0.0, 1.0, (batch, n_in)).astype(np.float32)
    return {"x": x, "layers": layers, "codebook": codebook}


def stevq_step(small=False):
    import stevq
    from stevq import nn, ops, vq
    n_in, hidden, dim, _, _ = SIZES["small" if small else "full"]
    data = problem(small)
    encoder = nn.serial(nn.Dense(hidden, "float32"), nn.Relu, nn.Dense(dim, "float32"))[1]
    decoder = nn.serial(nn.Dense(hidden, "float32"), nn.Relu, nn.Dense(n_in, "float32"))[1]
    quantizer = vq.VectorQuantizer(data["codebook"].shape[0], beta=BETA, dtype="float32")[1]
    as_layer = lambda pair: {"W": stevq.asarray(pair[0]), "b": stevq.asarray(pair[1])}
    layers = [as_layer(pair) for pair in data["layers"]]
    params = {"encoder": [layers[0], {}, layers[1]], "quantizer": {"codebook": stevq.asarray(data["codebook"])},
              "decoder": [layers[2], {}, layers[3]]}
    x = stevq.asarray(data["x"])

    def loss(p):
        z, aux = quantizer(p["quantizer"], encoder(p["encoder"], x))
        reconstruction = ops.mean(ops.square(ops.subtract(decoder(p["decoder"], z), x)))
        return ops.add(reconstruction, aux["loss"])
    return timing.stevq_adam_step(loss, params, LR)


def autograd_step(small=False):
    """The same step in plain autograd.numpy (``@``, whose gradient autograd computes with matmuls);
    Adam written in NumPy in place, with one scratch array per leaf (the fastest NumPy can do)."""
    import autograd.numpy as anp  # noqa: F401  (the traced functions below are autograd.numpy's)
    from autograd import value_and_grad
    from autograd.tracer import getval
    data = problem(small)
    params = [[w.copy(), b.copy()] for w, b in data["layers"]] + [data["codebook"].copy()]
    x = data["x"]

    def loss(p):
        (w1, b1), (w2, b2), (w3, b3), (w4, b4), codebook = p
        z_e = anp.maximum(x @ w1 + b1, 0.0) @ w2 + b2
        table, rows = getval(codebook), getval(z_e)
        indices = np.argmin(np.sum(table * table, axis=1) - 2.0 * (rows @ table.T), axis=1)
        z_q = codebook[indices]
        z = z_e + getval(z_q - z_e)  # straight-through: value z_q, gradient to z_e
        x_hat = anp.maximum(z @ w3 + b3, 0.0) @ w4 + b4
        codebook_loss = anp.mean((z_q - getval(z_e)) ** 2)
        commitment = anp.mean((z_e - getval(z_q)) ** 2)
        return anp.mean((x_hat - x) ** 2) + codebook_loss + BETA * commitment
    loss_and_grads = value_and_grad(loss)
    leaves = lambda tree: [leaf for pair in tree[:4] for leaf in pair] + [tree[4]]
    moments = [np.zeros_like(leaf) for leaf in leaves(params)]
    squares = [np.zeros_like(leaf) for leaf in leaves(params)]
    scratch = [np.zeros_like(leaf) for leaf in leaves(params)]
    state = {"step": 0}

    def step():
        value, grads = loss_and_grads(params)
        state["step"] += 1
        root = np.sqrt(1 - 0.999 ** state["step"])
        size, eps = LR * root / (1 - 0.9 ** state["step"]), 1e-8 * root
        for leaf, g, m, s, tmp in zip(leaves(params), leaves(grads), moments, squares, scratch):
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


def torch_step(small=False):
    import torch
    import torch.nn.functional as F
    data = problem(small)
    tensors = [(torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)) for w, b in data["layers"]]
    codebook = torch.tensor(data["codebook"], requires_grad=True)
    x = torch.from_numpy(data["x"])
    optimizer = torch.optim.Adam([t for pair in tensors for t in pair] + [codebook], lr=LR)
    (w1, b1), (w2, b2), (w3, b3), (w4, b4) = tensors

    def step():
        optimizer.zero_grad(set_to_none=True)
        z_e = torch.relu(x @ w1 + b1) @ w2 + b2
        with torch.no_grad():
            indices = torch.argmin((codebook * codebook).sum(1) - 2.0 * (z_e @ codebook.T), dim=1)
        z_q = codebook[indices]
        z = z_e + (z_q - z_e).detach()
        x_hat = torch.relu(z @ w3 + b3) @ w4 + b4
        loss = (F.mse_loss(x_hat, x) + F.mse_loss(z_q, z_e.detach()) + BETA * F.mse_loss(z_e, z_q.detach()))
        loss.backward()
        optimizer.step()
        return float(loss.detach())
    return step


def contenders(torch_available):
    """name -> factory(small) of a step callable (returning the loss); stevq first."""
    found = {"stevq": stevq_step, "autograd.numpy": autograd_step}
    if torch_available:
        found["PyTorch"] = torch_step
    return found


TITLE = "(a) MLP VQ-VAE 784-512-64, K = 512 x 64, batch 256: forward + VQ + backward + Adam"
TARGETS = (("PyTorch", 1.3), ("autograd.numpy", 1.1))
