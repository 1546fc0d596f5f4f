"""The networks around the quantizer in the VQ experiments, as ``stevq.nn`` layer pairs.

MNIST-scale images (1 x 28 x 28, NCHW):

    encoder      conv 4x4 /2 (width) -> ReLU -> conv 4x4 /2 (2 width) -> ReLU -> conv 1x1 (latent)
                 28 x 28 -> 14 x 14 -> 7 x 7: one latent vector per 4 x 4 patch, 49 per image
    decoder      conv 3x3 (2 width) -> ReLU -> transposed conv 4x4 x2 (width) -> ReLU
                 -> transposed conv 4x4 x2 (1 channel): back to 1 x 28 x 28
    classifier   flatten the quantized 7 x 7 grid -> dense 64 -> ReLU -> dense 10

Small on purpose: the experiments train dozens of them on two CPU cores. The quantizer sits between
encoder and decoder (or head) and quantizes each of the 49 latent vectors (the channel axis).

The networks of Huh et al.'s MNIST examples (vqtorch, examples/autoencoder.py and classification.py),
with PyTorch's default (uniform) initialisation, inputs in [-1, 1]:

    pool_encoder      conv 3x3 (16) -> max-pool 2 -> GELU -> conv 3x3 (latent) -> max-pool 2: 7 x 7 x latent
    upsample_decoder  upsample x2 -> conv 3x3 (16) -> GELU -> upsample x2 -> conv 3x3 (1) -> clamp [-1, 1]
    pool_classifier   conv 3x3 (64) -> global max-pool -> dense 10

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
    return nn.serial(
        nn.Conv(width, 4, 2, 1, dtype),
        nn.Relu,
        nn.Conv(2 * width, 4, 2, 1, dtype),
        nn.Relu,
        nn.Conv(latent_dim, 1, dtype=dtype),
    )


def conv_decoder(width=16, dtype="float32"):
    """latent x 7 x 7 -> 1 x 28 x 28 reconstructions (linear output, trained with squared error)."""
    validate.number(width, "width", low=1, integer=True)
    return nn.serial(
        nn.Conv(2 * width, 3, 1, 1, dtype),
        nn.Relu,
        nn.ConvTranspose(width, 4, 2, 1, dtype),
        nn.Relu,
        nn.ConvTranspose(IMAGE_SHAPE[0], 4, 2, 1, dtype),
    )


def classifier_head(classes=10, hidden=64, dtype="float32"):
    """Quantized latent grid -> class logits."""
    validate.number(classes, "classes", low=2, integer=True)
    validate.number(hidden, "hidden", low=1, integer=True)
    return nn.serial(nn.Flatten, nn.Dense(hidden, dtype), nn.Relu, nn.Dense(classes, dtype))


def pool_encoder(latent_dim=32, width=16, dtype="float32"):
    """vqtorch's MNIST encoder: 1 x 28 x 28 in [-1, 1] -> latent_dim x 7 x 7 (no activation after
    the last max-pool: z_e may take any sign)."""
    _check(width, latent_dim)
    return nn.serial(
        nn.Conv(width, 3, 1, 1, dtype, "uniform"),
        nn.MaxPool(2),
        nn.Gelu,
        nn.Conv(latent_dim, 3, 1, 1, dtype, "uniform"),
        nn.MaxPool(2),
    )


def upsample_decoder(width=16, dtype="float32"):
    """vqtorch's MNIST decoder: latent x 7 x 7 -> 1 x 28 x 28, clamped to [-1, 1]."""
    validate.number(width, "width", low=1, integer=True)
    return nn.serial(
        nn.Upsample(2),
        nn.Conv(width, 3, 1, 1, dtype, "uniform"),
        nn.Gelu,
        nn.Upsample(2),
        nn.Conv(IMAGE_SHAPE[0], 3, 1, 1, dtype, "uniform"),
        nn.Clip(-1.0, 1.0),
    )


def pool_classifier(classes=10, width=64, dtype="float32"):
    """vqtorch's MNIST classifier head: latent x 7 x 7 -> class logits."""
    validate.number(classes, "classes", low=2, integer=True)
    validate.number(width, "width", low=1, integer=True)
    return nn.serial(nn.Conv(width, 3, 1, 1, dtype, "uniform"), nn.GlobalMaxPool(), nn.Dense(classes, dtype, "uniform"))


def mlp_encoder(latent_dim=2, hidden=64, dtype=None):
    """Vectors -> latent_dim embeddings: dense(hidden) -> ReLU -> dense(hidden) -> ReLU -> dense(latent)."""
    _check(hidden, latent_dim)
    return nn.serial(nn.Dense(hidden, dtype), nn.Relu, nn.Dense(hidden, dtype), nn.Relu, nn.Dense(latent_dim, dtype))


def mlp_decoder(out_dim, hidden=64, dtype=None):
    """latent vectors -> out_dim reconstructions (same shape as ``mlp_encoder``, mirrored)."""
    _check(hidden, out_dim)
    return nn.serial(nn.Dense(hidden, dtype), nn.Relu, nn.Dense(hidden, dtype), nn.Relu, nn.Dense(out_dim, dtype))
