"""Build the Fashion-MNIST sample shipped inside the package (``fashion_mnist_sample.npz``).

    python -m stevq.data.make_sample [--data-dir DIR]     # default: the usual search (cache, Debian)

The sample is class-balanced and made of real images: for each of the ten classes, the first
``PER_CLASS_TRAIN`` (600) images of that class in the official training file and the first
``PER_CLASS_TEST`` (200) in the official test file, kept in file order (so the classes stay mixed
and "the first n" is a sensible subset): 6000 training and 2000 test images, uint8. That covers
every quick mode and the lectures in quick mode. The official files are checked against the
published SHA-256 table before use, and their content digests are recorded in the archive
(``sources``), beside the positions of the chosen images in the files (``train_index``,
``test_index``), so the sample can be checked against any copy of the official files.

The library never imports this module; it only reads the archive (``stevq.data.sample``).
Fashion-MNIST is (c) 2017 Zalando SE, MIT licence (``FASHION_MNIST_LICENSE.txt`` beside the archive).
"""

import argparse
import io
import json
import pathlib

import numpy as np

from ..atomic import atomic_write_bytes
from .fetch import sha256_hex
from .idx import decompress
from .mnist import _accepted_digests, load_fashion_mnist, locate_files
from .sources import FASHION_MNIST

PER_CLASS_TRAIN, PER_CLASS_TEST = 600, 200
ARCHIVE = pathlib.Path(__file__).resolve().parent / "fashion_mnist_sample.npz"


def first_per_class(labels, per_class):
    """Positions of the first ``per_class`` examples of every class, in file order."""
    chosen = np.concatenate([np.flatnonzero(labels == k)[:per_class] for k in np.unique(labels)])
    if len(chosen) != per_class * len(np.unique(labels)):
        raise ValueError(f"a class has fewer than {per_class} examples")
    return np.sort(chosen)


def build(directory=None):
    """The sample's arrays (a dict for ``np.savez_compressed``) from the official files."""
    paths = locate_files(FASHION_MNIST, directory)  # the official files on disk, never downloaded
    accepted = _accepted_digests(FASHION_MNIST, None, True)
    sources = {}
    for name, path in paths.items():
        content_digest = sha256_hex(decompress(path.read_bytes(), str(path)))
        if content_digest not in accepted[name] and sha256_hex(path.read_bytes()) not in accepted[name]:
            raise ValueError(f"{path}: not the official {name} (SHA-256 of its content {content_digest})")
        sources[name] = content_digest
    full = load_fashion_mnist(directory, dtype="uint8", download=False, sample=False)
    train_index = first_per_class(full.train_labels, PER_CLASS_TRAIN)
    test_index = first_per_class(full.test_labels, PER_CLASS_TEST)
    return {
        "train_images": full.train_images[train_index],
        "train_labels": full.train_labels[train_index].astype(np.uint8),
        "test_images": full.test_images[test_index],
        "test_labels": full.test_labels[test_index].astype(np.uint8),
        "train_index": train_index.astype(np.int32),
        "test_index": test_index.astype(np.int32),
        "sources": np.array(
            json.dumps(
                {
                    "files": sources,
                    "note": "SHA-256 of the IDX content of each official file the sample was taken from",
                },
                sort_keys=True,
            )
        ),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m stevq.data.make_sample", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="directory holding the four official Fashion-MNIST IDX files")
    parser.add_argument("--out", default=str(ARCHIVE), help=f"the archive to write (default {ARCHIVE})")
    args = parser.parse_args(argv)
    arrays = build(args.data_dir)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path = atomic_write_bytes(args.out, buffer.getvalue())
    print(
        f"{path}: {len(arrays['train_labels'])} training and {len(arrays['test_labels'])} test images, "
        f"{path.stat().st_size / 2**20:.2f} MiB, SHA-256 {sha256_hex(path.read_bytes())}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
