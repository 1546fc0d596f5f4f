"""Case (f): one training step of each of Huh et al.'s MNIST networks (the ``vq-ablation`` experiment),
batch 256, 1 x 28 x 28 images in [-1, 1], float32, AdamW (lr 3e-4, weight decay 0.01):

    encoder      conv 3x3 (16) -> max-pool 2 -> GELU -> conv 3x3 (32) -> max-pool 2: 32 x 7 x 7
    VQ           each of the 49 latent vectors -> nearest of 256 codes, straight-through output
    autoencoder  upsample x2 -> conv 3x3 (16) -> GELU -> upsample x2 -> conv 3x3 (1) -> clamp [-1, 1]
                 loss = mean |x_hat - x| + 10 ((1 - 0.95) L_com + 0.95 L_cb)
    classifier   conv 3x3 (64) -> global max-pool -> dense 10
                 loss = cross-entropy + 10 ((1 - 0.95) L_com + 0.95 L_cb)

stevq runs the experiment's own code: ``vq_ablation.build`` (the "baseline" row), the objective of
``vq_training.train`` (``forward``, ``task_loss`` + quantizer weight x quantizer loss), its
value_and_grad and the schedule's AdamW (``vq_ablation.schedule(...).make_optimizer()``). The PyTorch
twin is the same network as a PyTorch user writes it (``F.conv2d``, ``F.max_pool2d``, ``F.gelu`` with
``approximate="tanh"``, the form stevq computes, ``F.interpolate`` nearest, the addmm nearest code,
``torch.optim.AdamW(fused=True)``), from the same weights and batch; the first losses are compared.

The floor: the BLAS products of stevq's step alone, the same shapes and layouts (``products``), into
preallocated outputs (``out=``): every convolution's forward product, weight gradient, input gradient
(not the image's) and bias gradient (ones @ g), the nearest-code scores (N 49, D + 1) x (D + 1, K),
the dense layer's. What the step costs above it is moving data (patches, pooling, elementwise
functions) and Python.
"""

import numpy as np

MODELS = ("autoencoder", "classifier")
BATCH = {"full": 256, "small": 2}
SEED = 0


def _config():
    from stevq.experiments.huh2023 import vq_ablation

    return vq_ablation.Config()  # the published settings: lr 3e-4, weight decay 0.01, 256 codes of 32-D


def _network(model, small):
    """(network, params, state, x, y) of ``model``: the experiment's network, host batch and labels."""
    from stevq.experiments.huh2023 import vq_ablation, vq_training

    network = vq_ablation.build(_config(), model, "baseline")
    params, state = vq_training.init_network(network, np.random.default_rng(SEED))
    batch = BATCH["small" if small else "full"]
    data = np.random.default_rng(SEED + 1)
    x = data.uniform(-1.0, 1.0, (batch, 1, 28, 28)).astype(np.float32)
    y = data.integers(0, 10, batch)
    return network, params, state, x, y


def stevq_step(model, small=False):
    """The step of ``vq_training.train`` for the baseline row: loss, gradients, one AdamW update."""
    import timing  # benchmarks/ is on sys.path (run.py puts it there)

    import stevq
    from stevq import ops
    from stevq.experiments.huh2023 import vq_ablation, vq_training

    network, params, state, x_host, y_host = _network(model, small)
    x, y = stevq.asarray(x_host), stevq.asarray(y_host, "int64")

    def objective(p):
        prediction, aux = vq_training.forward(network, p, state, x, side={})
        loss = vq_training.task_loss(network, prediction, x, y)
        return ops.add(loss, ops.multiply(network.quantizer_weight, aux["loss"]))

    return timing.stevq_training_step(objective, params, vq_ablation.schedule(_config(), model).make_optimizer())


def torch_step(model, small=False):
    import torch
    import torch.nn.functional as F

    import stevq

    config = _config()
    network, params, _, x_host, y_host = _network(model, small)

    def leaf(value, transpose=False):
        host = stevq.to_numpy(value)
        return torch.tensor(host.T.copy() if transpose else host, requires_grad=True)

    conv = lambda layer: (leaf(layer["W"]), leaf(layer["b"]))
    encoder = [conv(p) for p in params["encoder"] if p]
    codebook = leaf(params["quantizer"]["codebook"])
    readout = [p for p in params["readout"] if p]
    head = [conv(readout[0])] + (
        [conv(readout[1])]
        if model == "autoencoder"
        else [(leaf(readout[1]["W"], transpose=True), leaf(readout[1]["b"]))]
    )  # (out, in)
    leaves = [t for pair in encoder + head for t in pair] + [codebook]
    optimizer = torch.optim.AdamW(leaves, lr=config.lr, weight_decay=config.weight_decay, fused=True)
    x, y = torch.from_numpy(x_host), torch.from_numpy(y_host)
    beta, weight = config.beta, network.quantizer_weight

    def step():
        optimizer.zero_grad(set_to_none=True)
        (w1, b1), (w2, b2) = encoder
        h = F.gelu(F.max_pool2d(F.conv2d(x, w1, b1, padding=1), 2), approximate="tanh")
        z_map = F.max_pool2d(F.conv2d(h, w2, b2, padding=1), 2)
        n, d, height, width = z_map.shape
        z_e = z_map.permute(0, 2, 3, 1).reshape(-1, d)
        with torch.no_grad():
            indices = torch.addmm((codebook * codebook).sum(1), z_e, codebook.T, alpha=-2).argmin(1)
        z_q = codebook[indices]
        z = (z_e + (z_q - z_e).detach()).reshape(n, height, width, d).permute(0, 3, 1, 2)
        vq_loss = (1 - beta) * F.mse_loss(z_e, z_q.detach()) + beta * F.mse_loss(z_q, z_e.detach())
        (w3, b3), (w4, b4) = head
        if model == "autoencoder":
            h = F.gelu(
                F.conv2d(F.interpolate(z, scale_factor=2, mode="nearest"), w3, b3, padding=1), approximate="tanh"
            )
            x_hat = torch.clamp(
                F.conv2d(F.interpolate(h, scale_factor=2, mode="nearest"), w4, b4, padding=1), -1.0, 1.0
            )
            task = F.l1_loss(x_hat, x)
        else:
            logits = F.linear(torch.amax(F.conv2d(z, w3, b3, padding=1), dim=(2, 3)), w4, b4)
            task = F.cross_entropy(logits, y)
        loss = task + weight * vq_loss
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def products(model, small=False):
    """Every BLAS product of stevq's step, as ``(a, b)`` pairs of shapes with "T" marking an operand
    used transposed (a view of the transposed array, as in the VJPs) and a leading batch axis for the
    tap-by-tap products (``stevq.ops.taps``). Follows the routes ``ops.conv2d`` takes: patches @ kernel
    (few input channels: the taps gathered one by one; 16 or more: ``patch_conv``, input gradient tap
    by tap) or, with fewer output than input channels, the tap route (``tap_conv``; one output channel:
    one matmul and shifted sums)."""
    from stevq.ops import conv

    n = BATCH["small" if small else "full"]
    config = _config()
    # (input channels, output channels, image size) of each 3 x 3, stride-1, padding-1 convolution
    layers = [(1, 16, 28), (16, 32, 14)]
    layers += [(config.latent_dim, 16, 14), (16, 1, 28)] if model == "autoencoder" else [(config.latent_dim, 64, 7)]
    found = []
    for layer, (c, o, size) in enumerate(layers):
        pixels, padded = n * size * size, n * (size + 2) ** 2
        if o < c and o >= conv.TAP_PRODUCTS_MIN_CHANNELS:  # tap_conv: per-tap products, one G
            found += [
                ((1, padded, c), (9, c, o)),
                ((padded, 9 * o), ("T", c, 9 * o)),
                (("T", padded, c), (padded, 9 * o)),
            ]
        elif o < c:  # the tap route's reference: one matmul with every tap's kernel
            found += [
                ((padded, c), (c, 9 * o)),
                ((padded, 9 * o), ("T", c, 9 * o)),
                (("T", padded, c), (padded, 9 * o)),
            ]
        else:  # patches @ kernel; the input gradient (not for the image) tap by tap
            found += [((pixels, 9 * c), (9 * c, o)), (("T", pixels, 9 * c), (pixels, o))]
            found += [((1, pixels, o), ("T", 9, c, o))] if layer else []
        found.append(((pixels,), (pixels, o)))  # the bias gradient: ones @ the output gradient
    found.append(((n * 49, config.latent_dim + 1), (config.latent_dim + 1, config.num_codes)))  # nearest codes
    if model == "classifier":  # the dense layer, 64 -> 10: forward, weight, input and bias gradients
        found += [((n, 64), (64, 10)), (("T", n, 64), (n, 10)), ((n, 10), ("T", 64, 10)), ((n,), (n, 10))]
    return found


def _operand(shape, rng):
    """A float32 array of ``shape``; ("T", ..., p, q): the transposed view of a (..., p, q) array."""
    if shape[0] == "T":
        return np.matrix_transpose(rng.standard_normal(shape[1:]).astype(np.float32))
    return rng.standard_normal(shape).astype(np.float32)


def blas_floor(model, small=False):
    """Every product of ``products`` into its own preallocated output, operands drawn once."""
    rng = np.random.default_rng(2)
    operands = []
    for a, b in products(model, small):
        a, b = _operand(a, rng), _operand(b, rng)
        operands.append((a, b, np.empty(np.matmul(a, b).shape, np.float32)))

    def floor():
        for a, b, out in operands:
            np.matmul(a, b, out=out)

    return floor


def _named(function, model):
    return lambda small=False: function(model, small)


def contenders(torch_available):
    found = {}
    for model in MODELS:
        found[f"stevq, {model}"] = _named(stevq_step, model)
        if torch_available:
            found[f"PyTorch, {model}"] = _named(torch_step, model)
        found[f"BLAS products alone, {model}"] = _named(blas_floor, model)
    return found


REFERENCES = {
    f"{who}, {model}": f"stevq, {model}" for model in MODELS for who in ("stevq", "PyTorch", "BLAS products alone")
}
TITLE = (
    "(f) Huh et al.'s networks (vq-ablation), batch 256, 1 x 28 x 28, K = 256 x 32, AdamW: training step "
    "of the autoencoder and of the classifier"
)
TARGETS = tuple((f"stevq, {model}", f"PyTorch, {model}", 1.2) for model in MODELS)
