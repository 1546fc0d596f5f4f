"""Data for the experiments: IDX files, MNIST and Fashion-MNIST, synthetic Gaussians.

- ``idx``: read and write the IDX format (``read_idx``, ``write_idx``), gzip or plain, with every
  byte count checked.
- ``fetch``: find files on disk, check SHA-256 digests, download with retries into the cache.
- ``sources``: ``MNIST`` and ``FASHION_MNIST``, where each comes from (mirrors, published SHA-256).
- ``mnist``: ``load_mnist()`` and ``load_fashion_mnist()`` returning ``ImageData`` (host arrays).
- ``sample``: the real Fashion-MNIST sample shipped in the package (6000 + 2000 images), used when
  the files are absent and what is asked for fits in it (quick modes, lectures in quick mode).
- ``synthetic``: ``gaussian`` and ``gaussian_clusters`` for the toy experiments.
- ``batches``: ``minibatch_indices``, endless shuffled mini-batches from a seeded generator (epoch by
  epoch), and ``fresh_shuffle_indices`` (each batch from a fresh shuffle).

Everything here works on the host (NumPy); ``stevq.asarray`` moves arrays to the active backend.
"""

from .batches import fresh_shuffle_indices, minibatch_indices
from .fetch import DataUnavailableError
from .idx import read_idx, write_idx
from .mnist import ImageData, data_home, load_fashion_mnist, load_images, load_mnist, load_sample, origin
from .sources import FASHION_MNIST, FASHION_MNIST_CLASSES, FILES, MNIST, MNIST_CLASSES, Source
from .synthetic import gaussian, gaussian_clusters

__all__ = [
    "DataUnavailableError",
    "FASHION_MNIST",
    "FASHION_MNIST_CLASSES",
    "FILES",
    "ImageData",
    "MNIST",
    "fresh_shuffle_indices",
    "MNIST_CLASSES",
    "Source",
    "data_home",
    "gaussian",
    "gaussian_clusters",
    "load_fashion_mnist",
    "load_images",
    "load_mnist",
    "load_sample",
    "origin",
    "minibatch_indices",
    "read_idx",
    "write_idx",
]
