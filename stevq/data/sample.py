"""The small sample of real Fashion-MNIST shipped inside the package.

``fashion_mnist_sample.npz`` (beside this module) holds 6000 training and 2000 test images, uint8,
class-balanced (600 and 200 per class): for each class the first images of that class in the
official files, in file order. ``python -m stevq.data.make_sample`` rebuilds it from the official
files and records their SHA-256 (``sources``) and the positions of the chosen images
(``train_index``, ``test_index``). Fashion-MNIST: (c) 2017 Zalando SE, MIT licence
(``FASHION_MNIST_LICENSE.txt``).

``load_fashion_mnist`` uses the sample when the four official files are not on this machine and
what was asked for fits in it (``train_limit`` <= 6000 and ``test_limit`` <= 2000): the quick modes
and the lectures in quick mode then run anywhere, without data files or network.
"""

import functools
import json
import pathlib

import numpy as np

DIRECTORY = pathlib.Path(__file__).resolve().parent


def path_of(name):
    """The path of the embedded archive ``name`` (e.g. "fashion_mnist_sample.npz")."""
    return DIRECTORY / name


@functools.lru_cache(maxsize=2)
def read(name):
    """{"train_images", "train_labels", "test_images", "test_labels"} (uint8 host arrays, read-only)
    and "sources" (dict: the SHA-256 of the official files the sample was taken from)."""
    path = path_of(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the embedded sample is missing from this installation of stevq "
            "(rebuild it with: python -m stevq.data.make_sample)"
        )
    with np.load(path, allow_pickle=False) as archive:
        arrays = {
            key: archive[key]
            for key in ("train_images", "train_labels", "test_images", "test_labels", "train_index", "test_index")
        }
        arrays["sources"] = json.loads(str(archive["sources"]))["files"]
    for key, value in arrays.items():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return arrays


def sizes(name):
    """(training examples, test examples) in the embedded archive ``name``."""
    arrays = read(name)
    return len(arrays["train_labels"]), len(arrays["test_labels"])
