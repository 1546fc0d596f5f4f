"""The networks around the quantizer in the VQ experiments, as ``stevq.nn`` layer pairs.

MNIST-scale images (1 x 28 x 28, NCHW):

    encoder      conv 4x4 /2 (width) -> ReLU -> conv 4x4 /2 (2 width) -> ReLU -> conv 1x1 (latent)
                 28 x 28 -> 14 x 14 -> 7 x 7: one latent vector per 4 x 4 patch, 49 per image
    decoder      conv 3x3 (2 width) -> ReLU -> transposed conv 4x4 x2 (width) -> ReLU
                 -> transposed conv 4x4 x2 (1 channel): back to 1 x 28 x 28
    classifier   flatten the quantized 7 x 7 grid -> dense 64 -> ReLU -> dense 10

Small on purpose: the experiments train dozens of them on two CPU cores. The quantizer sits between
encoder and decoder (or head) and quantizes each of the 49 latent vectors (the channel axis).

For the toy Gaussian experiment, ``mlp_encoder`` and ``mlp_decoder`` map R^n -> R^2 -> R^n.
"""
from stevq import nn, validate

IMAGE_SHAPE = (1, 28, 28)


def _check(width, latent_dim):
    validate.number(width, "width", low=1, integer=True)
    validate.number(latent_dim, "latent_dim", low=1, integer=True)


def conv_encoder(latent_dim, width=16, dtype="float32"):
    """1 x 28 x 28 images -> latent_dim x 7 x 7 embeddings z_e (two stride-2 convolutions, then a
    1 x 1 convolution to the latent dimension, with no activation: z_e may take any sign)."""
    _check(width, latent_dim)
    return nn.serial(nn.Conv(width, 4, 2, 1, dtype), nn.Relu, nn.Conv(2 * width, 4, 2, 1, dtype), nn.Relu,
                     nn.Conv(latent_dim, 1, dtype=dtype))


def conv_decoder(width=16, dtype="float32"):
    """latent x 7 x 7 -> 1 x 28 x 28 reconstructions (linear output, trained with squared error)."""
    validate.number(width, "width", low=1, integer=True)
    return nn.serial(nn.Conv(2 * width, 3, 1, 1, dtype), nn.Relu, nn.ConvTranspose(width, 4, 2, 1, dtype), nn.Relu,
                     nn.ConvTranspose(IMAGE_SHAPE[0], 4, 2, 1, dtype))


def classifier_head(classes=10, hidden=64, dtype="float32"):
    """Quantized latent grid -> class logits."""
    validate.number(classes, "classes", low=2, integer=True)
    validate.number(hidden, "hidden", low=1, integer=True)
    return nn.serial(nn.Flatten, nn.Dense(hidden, dtype), nn.Relu, nn.Dense(classes, dtype))


def mlp_encoder(latent_dim=2, hidden=64, dtype=None):
    """Vectors -> latent_dim embeddings: dense(hidden) -> ReLU -> dense(hidden) -> ReLU -> dense(latent)."""
    _check(hidden, latent_dim)
    return nn.serial(nn.Dense(hidden, dtype), nn.Relu, nn.Dense(hidden, dtype), nn.Relu, nn.Dense(latent_dim, dtype))


def mlp_decoder(out_dim, hidden=64, dtype=None):
    """latent vectors -> out_dim reconstructions (same shape as ``mlp_encoder``, mirrored)."""
    _check(hidden, out_dim)
    return nn.serial(nn.Dense(hidden, dtype), nn.Relu, nn.Dense(hidden, dtype), nn.Relu, nn.Dense(out_dim, dtype))
