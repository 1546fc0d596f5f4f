"""Case (b): one training step of the convolutional VQ-VAE of the VQ experiments, batch 128, float32.

stevq runs the experiments' own code: ``vq_models.conv_encoder`` / ``conv_decoder`` (width 16,
latent dimension 16) around the "ste" quantizer of ``vq_quantizers`` with 256 codes, the step of
``vq_training.train`` (``forward``, ``task_loss`` + quantizer loss, value_and_grad, Adam):

    encoder  1x28x28 -> conv 4x4/2 (16) -> ReLU -> conv 4x4/2 (32) -> ReLU -> conv 1x1 (16) = z_e, 7x7
    VQ       each of the 49 latent vectors -> nearest of 256 codes, straight-through output
    decoder  conv 3x3 (32) -> ReLU -> transposed conv 4x4 x2 (16) -> ReLU -> transposed conv 4x4 x2 (1)
    loss     mean (x_hat - x)^2 + L_cb + 0.25 L_com

The PyTorch twin below is the same network, written with ``torch.nn.functional`` and started from
the same weights (stevq's conv weights are (out, in, kh, kw) and its transposed-conv weights
(in, out, kh, kw), PyTorch's layouts). There is no autograd.numpy contender here: autograd.numpy has
no convolution with a fast gradient, and the target of this case is PyTorch.
"""

import numpy as np
import timing  # benchmarks/ is on sys.path (run.py puts it there)

SETTINGS = {"full": dict(batch=128, width=16, latent=16, codes=256), "small": dict(batch=2, width=2, latent=3, codes=8)}
LR = 1e-3


def _network(small):
    from stevq.experiments.huh2023 import vq_models, vq_quantizers, vq_training

    s = SETTINGS["small" if small else "full"]
    quantizer = vq_quantizers.make_quantizer(
        "ste", vq_quantizers.Settings(num_codes=s["codes"], dtype="float32"), s["latent"]
    )
    network = vq_training.Network(
        vq_models.conv_encoder(s["latent"], s["width"], "float32"),
        quantizer,
        vq_models.conv_decoder(s["width"], "float32"),
        "reconstruction",
        vq_models.IMAGE_SHAPE,
    )
    params, state = vq_training.init_network(network, np.random.default_rng(0))
    x = np.random.default_rng(1).uniform(0.0, 1.0, (s["batch"],) + vq_models.IMAGE_SHAPE).astype(np.float32)
    return network, params, state, x


def stevq_step(small=False):
    import stevq
    from stevq import ops
    from stevq.experiments.huh2023 import vq_training

    network, params, state, x_host = _network(small)
    x = stevq.asarray(x_host)

    def objective(p):
        prediction, aux = vq_training.forward(network, p, state, x)
        return ops.add(vq_training.task_loss(network, prediction, x, None), aux["loss"])

    return timing.stevq_adam_step(objective, params, LR)


def torch_step(small=False):
    import torch
    import torch.nn.functional as F

    import stevq

    network, params, _, x_host = _network(small)
    from stevq.experiments.huh2023 import vq_quantizers

    beta = vq_quantizers.Settings().beta  # the commitment weight the stevq quantizer was built with

    def leaf(value):
        return torch.tensor(stevq.to_numpy(value), requires_grad=True)

    encoder = [(leaf(p["W"]), leaf(p["b"])) for p in params["encoder"] if p]
    decoder = [(leaf(p["W"]), leaf(p["b"])) for p in params["readout"] if p]
    codebook = leaf(params["quantizer"]["codebook"])
    optimizer = torch.optim.Adam([t for pair in encoder + decoder for t in pair] + [codebook], lr=LR)
    x = torch.from_numpy(x_host)

    def step():
        optimizer.zero_grad(set_to_none=True)
        (w1, b1), (w2, b2), (w3, b3) = encoder
        h = F.relu(F.conv2d(x, w1, b1, stride=2, padding=1))
        h = F.relu(F.conv2d(h, w2, b2, stride=2, padding=1))
        z_map = F.conv2d(h, w3, b3)
        n, d, height, width = z_map.shape
        z_e = z_map.permute(0, 2, 3, 1).reshape(-1, d)
        with torch.no_grad():
            indices = torch.argmin((codebook * codebook).sum(1) - 2.0 * (z_e @ codebook.T), dim=1)
        z_q = codebook[indices]
        z = (z_e + (z_q - z_e).detach()).reshape(n, height, width, d).permute(0, 3, 1, 2)
        (w4, b4), (w5, b5), (w6, b6) = decoder
        h = F.relu(F.conv2d(z, w4, b4, padding=1))
        h = F.relu(F.conv_transpose2d(h, w5, b5, stride=2, padding=1))
        x_hat = F.conv_transpose2d(h, w6, b6, stride=2, padding=1)
        loss = F.mse_loss(x_hat, x) + F.mse_loss(z_q, z_e.detach()) + beta * F.mse_loss(z_e, z_q.detach())
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def contenders(torch_available):
    found = {"stevq": stevq_step}
    if torch_available:
        found["PyTorch"] = torch_step
    return found


TITLE = "(b) conv VQ-VAE of the experiments (width 16, latent 16, K = 256), batch 128: training step"
TARGETS = (("PyTorch", 1.3),)
