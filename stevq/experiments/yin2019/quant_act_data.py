"""The data of the quant-act experiment: Fashion-MNIST or MNIST (``images.load``: the files, or in
quick mode without them the sample inside stevq), or for tests without data a synthetic stand-in
drawn from the seed, one random 28 x 28 template per class plus noise (``data="synthetic"``)."""

import numpy as np

from stevq.experiments import images as image_data
from stevq.experiments import training
from stevq.experiments.protocol import generated


def _synthetic(rng, count, classes=10):
    """Random stand-in for an image data set: one random 28 x 28 template per class plus noise."""
    templates = rng.uniform(0.0, 1.0, (classes, 1, 28, 28))
    labels = rng.integers(0, classes, count)
    images = np.clip(templates[labels] + 0.3 * rng.standard_normal((count, 1, 28, 28)), 0.0, 1.0)
    return images, labels


def load_data(config):
    """(train_images, train_labels, test_images, test_labels) as host arrays: images N x 1 x 28 x 28
    in [0, 1], labels int64. Real data comes from ``stevq.data`` (found on disk or downloaded; in quick
    mode without the files, Fashion-MNIST comes from the sample inside the package)."""
    if config.data == "synthetic":
        images, labels = _synthetic(np.random.default_rng(config.seed + 1000), config.train_size + config.test_size)
        cut = config.train_size
        return images[:cut], labels[:cut], images[cut:], labels[cut:]
    return tuple(image_data.load(config))


def datasets(config):
    """(train_set, test_set) of ``config`` on the active backend."""
    train_x, train_y, test_x, test_y = load_data(config)
    return training.Data(train_x, train_y, config.dtype), training.Data(test_x, test_y, config.dtype)


def data_origin(config):
    """The IDX files (their SHA-256) or the embedded sample that ``load_data`` reads; synthetic
    data is drawn from the seed."""
    return generated(config) if config.data == "synthetic" else image_data.origin(config)
