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

import dataclasses
import os
import pathlib
import sys
import warnings
from typing import NamedTuple

import numpy as np

from .. import validate
from . import sample as embedded
from .fetch import DataUnavailableError, checked_content, download, find
from .idx import decode_idx

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
MNIST_CLASSES = tuple(str(digit) for digit in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a data set of the four MNIST-layout files comes from and how its files are checked.

    ``checksums`` maps each file name to the accepted SHA-256 digests (of the stored bytes or of the
    decompressed IDX content); ``system_dirs`` are searched after the cache; ``hint`` is added to
    the message when the data cannot be found; ``sample`` names the small sample shipped in the
    package (``stevq.data.sample``), if there is one.
    """

    name: str
    title: str
    mirrors: tuple
    checksums: dict
    system_dirs: tuple = ()
    hint: str = ""
    sample: str | None = None


# Published SHA-256 of each file: first of the .gz archive as served by the mirrors, then of the
# IDX content inside it. Where they come from (checked while writing this module):
# - MNIST: all eight digests appear, identical, in several independent public projects that pin
#   these files (some list the .gz and the content digest side by side, with the .gz sizes
#   9912422, 28881, 1648877 and 4542 bytes given on Yann LeCun's page). No copy of MNIST was at
#   hand to recompute them, so they are confirmed by agreement between sources only.
# - Fashion-MNIST: the .gz digests appear, identical, in several independent projects, some next to
#   the MD5s of the Fashion-MNIST README (which Debian ships in /usr/share/doc/dataset-fashion-mnist).
#   The content digests were recomputed here from the Debian package dataset-fashion-mnist
#   (0.0~git20200523.55506a9-1) and equal those published by other projects from the official
#   archives. Debian re-compressed the archives (their .gz bytes and MD5s differ, their content
#   does not), which is why the content digests are accepted too.
MNIST = Source(
    name="mnist",
    title="MNIST",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    checksums={
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    },
)

FASHION_MNIST = Source(
    name="fashion-mnist",
    title="Fashion-MNIST",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    checksums={
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    },
    system_dirs=(DEBIAN_FASHION_MNIST,),
    sample="fashion_mnist_sample.npz",
    hint="On Debian or Ubuntu, `apt-get install dataset-fashion-mnist` installs them in "
    f"{DEBIAN_FASHION_MNIST}, which is searched too.",
)


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


def locate_files(
    source,
    directory=None,
    cache_dir=None,
    download_missing=True,
    checksums=None,
    mirrors=None,
    retries=3,
    backoff=1.0,
    timeout=30.0,
    progress=False,
):
    """The paths of the four files of ``source``: found on disk, else downloaded into the cache.

    Raises ``DataUnavailableError`` naming the four files and where to put them when any file is
    missing and cannot be downloaded.
    """
    cache_dir = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else data_home() / source.name
    if directory is not None and not pathlib.Path(directory).expanduser().is_dir():
        raise ValueError(f"directory: {directory} does not exist or is not a directory")
    search = ([directory] if directory is not None else []) + [cache_dir, *_system_dirs(source)]
    paths = {filename: find(filename, search) for filename in FILES}
    missing = [filename for filename, path in paths.items() if path is None]
    if missing and not download_missing:
        raise _unavailable(source, cache_dir, search, [])
    for filename in missing:
        accepted = None if checksums is None else checksums[filename]
        try:
            paths[filename], failed = download(
                filename,
                source.mirrors if mirrors is None else mirrors,
                cache_dir,
                accepted,
                retries,
                backoff,
                timeout,
                progress,
            )
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
    try:
        paths = locate_files(
            source,
            directory,
            cache_dir,
            download and not use_sample,
            accepted,
            mirrors,
            retries,
            backoff,
            timeout,
            progress,
        )
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
        paths = locate_files(source, directory, cache_dir, download_missing=False)
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
