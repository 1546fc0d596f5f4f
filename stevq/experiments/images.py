"""The image data of the MNIST-scale experiments, read as their Configs say: ``config.data``
("fashion-mnist" or "mnist") from ``config.data_dir`` (or where ``stevq.data`` looks), the first
``config.train_size`` training and ``config.test_size`` test examples as N x 1 x 28 x 28 images in
[0, 1] of ``config.dtype``, with int64 labels; in quick mode, without the files, Fashion-MNIST's
sample inside stevq. ``origin(config)`` is what ``load(config)`` reads, stored with every run.
``ImageConfig`` is the first fields of such a Config: the data set and the directory of its files."""

import dataclasses

from stevq import data
from stevq.experiments.settings import BaseConfig, setting


@dataclasses.dataclass(frozen=True)
class ImageConfig(BaseConfig):
    """The first fields of an MNIST-scale experiment's Config (which subclasses this one)."""

    data: str = setting("fashion-mnist", '"fashion-mnist" or "mnist"')
    data_dir: str | None = setting(None, "extra directory to look for the IDX files in")


def load(config):
    """The ``stevq.data.ImageData`` of ``config``."""
    loader = data.load_fashion_mnist if config.data == "fashion-mnist" else data.load_mnist
    return loader(
        config.data_dir,
        train_limit=config.train_size,
        test_limit=config.test_size,
        dtype=config.dtype,
        layout="NCHW",
        sample=config.quick,
    )


def origin(config):
    """The IDX files (their SHA-256) or the embedded sample that ``load(config)`` reads."""
    source = data.FASHION_MNIST if config.data == "fashion-mnist" else data.MNIST
    return data.origin(
        source, config.data_dir, train_limit=config.train_size, test_limit=config.test_size, sample=config.quick
    )
