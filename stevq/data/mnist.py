"""MNIST and Fashion-MNIST: find the four IDX files, or download them, check them, load them.

    data = load_fashion_mnist(train_limit=5000, test_limit=1000)
    data.train_images.shape    # (5000, 28, 28), float32 in [0, 1]
    data.train_labels          # (5000,) int64 in 0..9
    (x, y), (x_test, y_test) = data.train, data.test

Where the files are looked for, in this order (the first copy found of each file is used):

1. ``directory``, when given;
2. the cache directory ``$STEVQ_DATA/<name>``, by default ``~/.cache/stevq/<name>`` where <name>
   is ``mnist`` or ``fashion-mnist`` (``cache_dir=`` replaces the whole path);
3. for Fashion-MNIST, ``/usr/share/datasets/fashion-mnist`` (Debian package dataset-fashion-mnist),
   unless the environment variable ``STEVQ_NO_SYSTEM_DATA`` is set (to 1, yes or true);
4. for Fashion-MNIST, when no ``directory`` is given and what is asked for fits in it
   (``train_limit`` <= 6000, ``test_limit`` <= 2000), the real sample shipped inside the package
   (``stevq.data.sample``; one line on stderr says so; ``sample=False`` turns this off);
5. otherwise each missing file is downloaded from the mirrors into the cache directory, checked
   against the published SHA-256 (see ``stevq.data.fetch``).

Each file may be gzip-compressed as published (``train-images-idx3-ubyte.gz``) or decompressed
(``train-images-idx3-ubyte``). Every file is checked against the SHA-256 table before it is parsed
(``verify=False`` skips that; the IDX structure is always checked), so a corrupt, truncated or
foreign file raises ``ValueError`` naming it and is never loaded.

The arrays are host NumPy arrays; move a batch to the active backend with ``stevq.asarray``.
"""

import os
import pathlib
import sys
import warnings
from typing import NamedTuple

import numpy as np

from .. import validate
from . import sample as embedded
from .fetch import DataUnavailableError, Downloader, checked_content, find
from .idx import decode_idx
from .sources import DEBIAN_FASHION_MNIST, FASHION_MNIST, FASHION_MNIST_CLASSES, FILES, MNIST, MNIST_CLASSES, Source

__all__ = [  # the sources (defined in stevq.data.sources) are this module's names too
    "DEBIAN_FASHION_MNIST",
    "FASHION_MNIST",
    "FASHION_MNIST_CLASSES",
    "FILES",
    "MNIST",
    "MNIST_CLASSES",
    "ImageData",
    "Source",
    "data_home",
    "load_fashion_mnist",
    "load_images",
    "load_mnist",
    "load_sample",
    "locate_files",
    "origin",
]


class ImageData(NamedTuple):
    """Train and test images (N, 28, 28) / (N, 1, 28, 28) / (N, 784) and int64 labels (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    @property
    def train(self):
        return self.train_images, self.train_labels

    @property
    def test(self):
        return self.test_images, self.test_labels


def data_home():
    """The root of stevq's data cache: ``$STEVQ_DATA``, by default ``~/.cache/stevq``."""
    return pathlib.Path(os.environ.get("STEVQ_DATA") or "~/.cache/stevq").expanduser()


def _system_dirs(source):
    """The source's system directories, or none when STEVQ_NO_SYSTEM_DATA is set (tests use it to
    see what a machine without the Debian package sees)."""
    hidden = os.environ.get("STEVQ_NO_SYSTEM_DATA", "").strip().lower() not in ("", "0", "no", "false")
    return () if hidden else source.system_dirs


def _unavailable(source, cache_dir, searched, failures):
    """The error for files that could not be found or downloaded: what to put where."""
    before = [
        f"{source.title} is not available here and could not be downloaded.",
        "Put the four files",
        *(f"    {filename}" for filename in FILES),
        "(gzip-compressed as published, or decompressed without the .gz suffix) into",
        f"    {cache_dir}",
        "or pass their directory as ",
    ]
    lines = [f", or set STEVQ_DATA=D and put them in D/{source.name}."]
    if source.hint:
        lines.append(source.hint)
    lines.append("Searched: " + ", ".join(str(path) for path in searched))
    lines += (
        ["Download attempts:", *(f"    {failure}" for failure in failures)]
        if failures
        else ["Downloading was disabled (download=False)."]
    )
    return DataUnavailableError("\n".join(before), "\n".join(lines))


def locate_files(source, directory=None, cache_dir=None, downloader=None):
    """The paths of the four files of ``source``: found on disk, else fetched into the cache by
    ``downloader`` (a ``fetch.Downloader``; None: nothing is downloaded).

    Raises ``DataUnavailableError`` naming the four files and where to put them when any file is
    missing and cannot be downloaded.
    """
    cache_dir = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else data_home() / source.name
    if directory is not None and not pathlib.Path(directory).expanduser().is_dir():
        raise ValueError(f"directory: {directory} does not exist or is not a directory")
    search = ([directory] if directory is not None else []) + [cache_dir, *_system_dirs(source)]
    paths = {filename: find(filename, search) for filename in FILES}
    missing = [filename for filename, path in paths.items() if path is None]
    if missing and downloader is None:
        raise _unavailable(source, cache_dir, search, [])
    for filename in missing:
        try:
            paths[filename], failed = downloader.fetch(filename, cache_dir)
        except DataUnavailableError as err:
            raise _unavailable(source, cache_dir, search, err.failures) from None
        if failed:
            warnings.warn(
                f"{filename}: downloaded after {len(failed)} failed or rejected attempts: " + "; ".join(failed)
            )
    return paths


def _accepted_digests(source, checksums, verify):
    """The checksum table in force: None (no check), the source's, or the given one (str or tuple)."""
    if not verify:
        return None
    table = source.checksums if checksums is None else checksums
    missing = [filename for filename in FILES if filename not in table]
    if missing:
        raise ValueError(f"checksums: no entry for {', '.join(missing)} (pass verify=False to skip checks)")
    return {
        filename: (table[filename],) if isinstance(table[filename], str) else tuple(table[filename])
        for filename in FILES
    }


def _images(images, limit, dtype, layout):
    """The first ``limit`` images, converted to ``dtype`` (floats scaled to [0, 1]) and ``layout``."""
    images = images[:limit].astype(dtype)  # a copy, so the full array can be freed
    if dtype != "uint8":
        images /= 255
    if layout == "NCHW":
        return images.reshape(images.shape[0], 1, *images.shape[1:])
    return images.reshape(images.shape[0], -1) if layout == "flat" else images


def _limit(limit, name, available, what="the data set"):
    if limit is None:
        return available
    if limit > available:
        raise validate.ArgumentError(name, f"asked for {limit} examples, {what} has {available}")
    return limit


def _fits_sample(source, directory, train_limit, test_limit):
    """True when ``source`` ships a sample, no directory was named and the limits fit in it."""
    if source.sample is None or directory is not None or train_limit is None or test_limit is None:
        return False
    train_size, test_size = embedded.sizes(source.sample)
    return train_limit <= train_size and test_limit <= test_size


def load_sample(source, *, train_limit=None, test_limit=None, dtype="float32", layout="NHW"):
    """The first ``train_limit`` / ``test_limit`` examples of the sample of ``source`` shipped in
    the package (``stevq.data.sample``), as ``ImageData`` with the same conventions as the files."""
    if source.sample is None:
        raise ValueError(f"source: {source.title} has no sample inside the package")
    arrays = embedded.read(source.sample)
    splits = []
    for split, limit_name, limit in (("train", "train_limit", train_limit), ("test", "test_limit", test_limit)):
        labels = arrays[f"{split}_labels"]
        n = _limit(limit, limit_name, len(labels), "the embedded sample")
        splits += [_images(arrays[f"{split}_images"], n, dtype, layout), labels[:n].astype(np.int64)]
    return ImageData(*splits)


def load_images(
    source,
    directory=None,
    *,
    train_limit=None,
    test_limit=None,
    dtype="float32",
    layout="NHW",
    download=True,
    verify=True,
    checksums=None,
    mirrors=None,
    cache_dir=None,
    retries=3,
    backoff=1.0,
    timeout=30.0,
    progress=False,
    sample=True,
):
    """Load a data set of the MNIST layout (four IDX files) as ``ImageData``.

    ``train_limit`` / ``test_limit``: keep the first n examples (the files are already in a mixed
    class order). ``dtype``: "float32" or "float64" (pixels / 255, in [0, 1]) or "uint8" (0..255).
    ``layout``: "NHW" (N, H, W), "NCHW" (N, 1, H, W, for ``nn.Conv``) or "flat" (N, H*W).
    ``download``: fetch missing files (else raise ``DataUnavailableError`` at once).
    ``verify``: check SHA-256 digests against ``checksums`` (default: the source's published table;
    a dict from file name to a digest or tuple of digests, e.g. for a private mirror).
    ``mirrors``: base URLs replacing the source's; ``cache_dir``: the directory downloads go to.
    ``retries``, ``backoff`` (seconds, doubled each round), ``timeout`` (seconds per request),
    ``progress`` (download progress bars) tune the download.
    ``sample``: when the files are not on disk, no ``directory`` was named and the limits fit in the
    sample shipped in the package (Fashion-MNIST: 6000 / 2000), use that sample (saying so in one
    line on stderr) instead of downloading; False: never.
    """
    validate.choice(dtype, "dtype", ("float32", "float64", "uint8"))
    validate.choice(layout, "layout", ("NHW", "NCHW", "flat"))
    for limit, name in ((train_limit, "train_limit"), (test_limit, "test_limit")):
        if limit is not None:
            validate.number(limit, name, low=1, integer=True)
    accepted = _accepted_digests(source, checksums, verify)
    use_sample = sample and _fits_sample(source, directory, train_limit, test_limit)
    downloader = None
    if download and not use_sample:
        downloader = Downloader(
            source.mirrors if mirrors is None else mirrors, accepted, retries, backoff, timeout, progress
        )
    try:
        paths = locate_files(source, directory, cache_dir, downloader)
    except DataUnavailableError:
        if not use_sample:
            raise
        print(
            f"note: {source.title} files not found; using the real sample inside stevq "
            f"({train_limit} training, {test_limit} test images of {embedded.path_of(source.sample).name})",
            file=sys.stderr,
        )
        return load_sample(source, train_limit=train_limit, test_limit=test_limit, dtype=dtype, layout=layout)
    arrays = {}
    for filename, path in paths.items():
        try:
            content = checked_content(path.read_bytes(), None if accepted is None else accepted[filename], str(path))
            arrays[filename] = decode_idx(content, str(path))
        except ValueError as err:
            raise ValueError(
                f"{err}\nReplace or delete {path} (a missing file is downloaded again); "
                "verify=False skips the checksum check, never the format check."
            ) from err
    splits = []
    for split, limit_name, limit in (("train", "train_limit", train_limit), ("t10k", "test_limit", test_limit)):
        images, labels = arrays[f"{split}-images-idx3-ubyte.gz"], arrays[f"{split}-labels-idx1-ubyte.gz"]
        if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"{paths[f'{split}-images-idx3-ubyte.gz']}, {paths[f'{split}-labels-idx1-ubyte.gz']}: "
                f"expected uint8 images (N, H, W) and N labels, got images {images.dtype} "
                f"{images.shape} and labels {labels.dtype} {labels.shape}"
            )
        n = _limit(limit, limit_name, len(labels))
        splits += [_images(images, n, dtype, layout), labels[:n].astype(np.int64)]
    return ImageData(*splits)


def _sha256(path):
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def origin(source, directory=None, *, train_limit=None, test_limit=None, sample=True, cache_dir=None):
    """Which data ``load_images`` with the same arguments reads, found as it finds it (after the
    files were fetched; nothing is downloaded here): ``{"data": name, "files": {file: SHA-256}}``
    for the IDX files on disk, or ``{"data": name, "sample": archive, "sha256": its SHA-256}`` for
    the sample inside the package. A run stores it, so that results are never mixed across data."""
    use_sample = sample and _fits_sample(source, directory, train_limit, test_limit)
    try:
        paths = locate_files(source, directory, cache_dir)  # nothing is downloaded
    except DataUnavailableError:
        if not use_sample:
            raise
        return {"data": source.name, "sample": source.sample, "sha256": _sha256(embedded.path_of(source.sample))}
    return {"data": source.name, "files": {filename: _sha256(path) for filename, path in sorted(paths.items())}}


def load_mnist(directory=None, **options):
    """MNIST (LeCun, Cortes, Burges): 60000 train and 10000 test handwritten digits, 28 x 28.

    Returns ``ImageData`` (host NumPy arrays: float32 images in [0, 1] of shape (N, 28, 28) and
    int64 labels 0..9 by default). ``options`` are those of ``load_images`` (``train_limit``,
    ``test_limit``, ``dtype``, ``layout``, ``download``, ``verify``, ``checksums``, ``mirrors``,
    ``cache_dir``, ``retries``, ``backoff``, ``timeout``, ``progress``).
    """
    return load_images(MNIST, directory, **options)


def load_fashion_mnist(directory=None, **options):
    """Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): 60000 + 10000 clothing images, 28 x 28, 10 classes.

    Same return value and ``options`` as ``load_mnist``; class names in ``FASHION_MNIST_CLASSES``.
    Also found in Debian's ``/usr/share/datasets/fashion-mnist`` (package dataset-fashion-mnist).
    """
    return load_images(FASHION_MNIST, directory, **options)
