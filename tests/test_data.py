"""stevq.data's MNIST-layout data sets: small generated ones loaded from a directory or the cache
(dtypes, layouts, limits, digests), the download path exercised against a local HTTP server on
127.0.0.1, and the real Fashion-MNIST from Debian. The IDX format is tested in test_data_idx.py, the
synthetic data in test_data_synthetic.py."""

import gzip
import hashlib
import http.server
import os
import pathlib
import socket
import threading

import numpy as np
import pytest

from stevq import data
from stevq.data import idx

SMALL_TRAIN, SMALL_TEST, SIDE = 24, 12, 4


def sha256(raw):
    return hashlib.sha256(raw).hexdigest()


# ---------------------------------------------------------------------------------------------
# Small generated MNIST-layout data sets


@pytest.fixture(scope="module")
def small_dataset():
    """Four small IDX files (train 24, test 12 images of 4 x 4): file name -> (gz bytes, array)."""
    rng = np.random.default_rng(5)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (SMALL_TRAIN, SIDE, SIDE), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, SMALL_TRAIN, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (SMALL_TEST, SIDE, SIDE), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, SMALL_TEST, dtype=np.uint8),
    }
    return {name: (gzip.compress(idx.encode_idx(array), mtime=0), array) for name, array in arrays.items()}


@pytest.fixture(scope="module")
def small_checksums(small_dataset):
    return {name: sha256(packed) for name, (packed, _) in small_dataset.items()}


def write_dataset(directory, dataset, compressed=True):
    directory.mkdir(parents=True, exist_ok=True)
    for name, (packed, _) in dataset.items():
        if compressed:
            (directory / name).write_bytes(packed)
        else:
            (directory / name[:-3]).write_bytes(gzip.decompress(packed))
    return directory


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """STEVQ_DATA pointing at an empty directory, so no real cache is read or written."""
    monkeypatch.setenv("STEVQ_DATA", str(tmp_path / "stevq-data"))
    return tmp_path / "stevq-data"


def test_load_from_directory_all_dtypes_layouts_and_limits(tmp_path, small_dataset, small_checksums, isolated_cache):
    directory = write_dataset(tmp_path / "given", small_dataset)
    raw = {name: array for name, (_, array) in small_dataset.items()}
    loaded = data.load_mnist(directory, checksums=small_checksums, download=False)
    assert loaded.train_images.shape == (SMALL_TRAIN, SIDE, SIDE) and loaded.train_images.dtype == np.float32
    np.testing.assert_array_equal(loaded.train_images, raw["train-images-idx3-ubyte.gz"].astype(np.float32) / 255)
    np.testing.assert_array_equal(loaded.test_labels, raw["t10k-labels-idx1-ubyte.gz"])
    assert loaded.test_labels.dtype == np.int64
    images, labels = loaded.train
    assert images is loaded.train_images and labels is loaded.train_labels

    small = data.load_mnist(
        directory, checksums=small_checksums, download=False, dtype="uint8", layout="flat", train_limit=5, test_limit=3
    )
    np.testing.assert_array_equal(small.train_images, raw["train-images-idx3-ubyte.gz"][:5].reshape(5, -1))
    np.testing.assert_array_equal(small.test_labels, raw["t10k-labels-idx1-ubyte.gz"][:3])
    nchw = data.load_mnist(
        directory, checksums=small_checksums, download=False, dtype="float64", layout="NCHW", test_limit=SMALL_TEST
    )
    assert nchw.test_images.shape == (SMALL_TEST, 1, SIDE, SIDE) and nchw.test_images.dtype == np.float64
    assert not isolated_cache.exists()  # found in the given directory: nothing downloaded or cached


def test_load_arguments_are_validated(tmp_path, small_dataset, small_checksums, isolated_cache):
    directory = write_dataset(tmp_path / "given", small_dataset)
    options = dict(checksums=small_checksums, download=False)
    with pytest.raises(ValueError, match="train_limit: asked for 25 examples, the data set has 24"):
        data.load_mnist(directory, train_limit=SMALL_TRAIN + 1, **options)
    with pytest.raises(ValueError, match="test_limit: expected a value >= 1"):
        data.load_mnist(directory, test_limit=0, **options)
    with pytest.raises(ValueError, match="layout: expected one of"):
        data.load_mnist(directory, layout="NHWC", **options)
    with pytest.raises(ValueError, match="directory: .*does not exist"):
        data.load_mnist(tmp_path / "nowhere", **options)
    with pytest.raises(ValueError, match="checksums: no entry for t10k-labels-idx1-ubyte.gz"):
        data.load_mnist(
            directory, checksums={k: v for k, v in small_checksums.items() if "t10k-l" not in k}, download=False
        )


def test_decompressed_files_pass_by_content_digest_and_bad_digests_are_refused(
    tmp_path, small_dataset, small_checksums, isolated_cache
):
    plain = write_dataset(tmp_path / "plain", small_dataset, compressed=False)
    content_digests = {name: sha256(gzip.decompress(packed)) for name, (packed, _) in small_dataset.items()}
    both = {name: (small_checksums[name], content_digests[name]) for name in data.FILES}
    loaded = data.load_mnist(plain, checksums=both, download=False, dtype="uint8")
    np.testing.assert_array_equal(loaded.train_images, small_dataset["train-images-idx3-ubyte.gz"][1])
    # Only the .gz digest listed: a decompressed copy cannot be checked against it and is refused.
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: SHA-256 mismatch"):
        data.load_mnist(plain, checksums=small_checksums, download=False)
    wrong = dict(small_checksums, **{"t10k-images-idx3-ubyte.gz": "0" * 64})
    gz_dir = write_dataset(tmp_path / "gz", small_dataset)
    with pytest.raises(ValueError, match=f"{gz_dir / 't10k-images-idx3-ubyte.gz'}: SHA-256 mismatch"):
        data.load_mnist(gz_dir, checksums=wrong, download=False)
    assert data.load_mnist(gz_dir, checksums=wrong, download=False, verify=False).test_images.shape[0] == SMALL_TEST


def test_search_order_given_directory_then_cache(tmp_path, small_dataset, small_checksums, isolated_cache):
    write_dataset(isolated_cache / "mnist", small_dataset)
    from_cache = data.load_mnist(checksums=small_checksums, download=False, dtype="uint8")
    np.testing.assert_array_equal(from_cache.train_labels, small_dataset["train-labels-idx1-ubyte.gz"][1])
    other = dict(small_dataset)
    flipped = 255 - small_dataset["train-images-idx3-ubyte.gz"][1]
    other["train-images-idx3-ubyte.gz"] = (gzip.compress(idx.encode_idx(flipped)), flipped)
    given = write_dataset(tmp_path / "given", other)
    from_given = data.load_mnist(given, download=False, dtype="uint8", verify=False)
    np.testing.assert_array_equal(from_given.train_images, flipped)


# ---------------------------------------------------------------------------------------------
# Download path against a local HTTP server


class Mirror:
    """A bounded HTTP server on 127.0.0.1 (ephemeral port) serving ``files`` from a thread.

    ``fail_first[name] = k`` answers the first k requests for ``name`` with 503; ``cut[name] = m``
    announces the full length but sends only m bytes and closes. It shuts itself down after
    ``lifetime`` seconds at the latest.
    """

    def __init__(self, files, lifetime=30.0):
        self.files, self.fail_first, self.cut, self.requests = dict(files), {}, {}, []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 5

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                mirror.requests.append(name)
                if mirror.fail_first.get(name, 0) > 0:
                    mirror.fail_first[name] -= 1
                    self.send_error(503)
                    return
                if name not in mirror.files:
                    self.send_error(404)
                    return
                body = mirror.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: mirror.cut.get(name, len(body))])
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/data/"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.deadline = threading.Timer(lifetime, self.server.shutdown)
        self.deadline.daemon = True

    def __enter__(self):
        self.thread.start()
        self.deadline.start()
        return self

    def __exit__(self, *exc):
        self.deadline.cancel()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_proxy_for_localhost(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def mirror(small_dataset):
    with Mirror({name: packed for name, (packed, _) in small_dataset.items()}) as server:
        yield server


def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


FAST = dict(retries=2, backoff=0.01, timeout=5.0)


def cache_listing(cache):
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_download_checks_caches_atomically_and_reuses_the_cache(mirror, small_dataset, small_checksums, isolated_cache):
    loaded = data.load_mnist(mirrors=[mirror.url], checksums=small_checksums, dtype="uint8", **FAST)
    np.testing.assert_array_equal(loaded.test_images, small_dataset["t10k-images-idx3-ubyte.gz"][1])
    cache = isolated_cache / "mnist"
    assert cache_listing(cache) == sorted(data.FILES)  # no temporary files left behind
    assert all(sha256((cache / name).read_bytes()) == small_checksums[name] for name in data.FILES)
    assert sorted(mirror.requests) == sorted(data.FILES)
    again = data.load_mnist(mirrors=[closed_port_url()], checksums=small_checksums, dtype="uint8", **FAST)
    np.testing.assert_array_equal(again.train_labels, loaded.train_labels)
    assert len(mirror.requests) == 4  # served from the cache


def test_only_missing_files_are_downloaded(mirror, small_dataset, small_checksums, isolated_cache):
    write_dataset(isolated_cache / "mnist", {k: v for k, v in small_dataset.items() if "train" in k})
    data.load_mnist(mirrors=[mirror.url], checksums=small_checksums, **FAST)
    assert sorted(mirror.requests) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_checksum_mismatch_is_rejected_not_cached_and_reported(mirror, small_checksums, isolated_cache):
    wrong = dict(small_checksums, **{"train-labels-idx1-ubyte.gz": "ab" * 32})
    with pytest.raises(data.DataUnavailableError) as error:
        data.load_mnist(mirrors=[mirror.url], checksums=wrong, **FAST)
    message = str(error.value)
    assert message.count("train-labels-idx1-ubyte.gz: SHA-256 mismatch") == FAST["retries"]
    assert "ab" * 32 in message
    assert "train-labels-idx1-ubyte.gz" not in cache_listing(isolated_cache / "mnist")
    assert all(not name.endswith(".part") for name in cache_listing(isolated_cache / "mnist"))


def test_bad_mirror_is_skipped_with_a_warning(small_dataset, small_checksums, isolated_cache):
    tampered = {name: packed for name, (packed, _) in small_dataset.items()}
    tampered["t10k-images-idx3-ubyte.gz"] = gzip.compress(b"not the published file")
    with Mirror(tampered) as bad, Mirror({n: p for n, (p, _) in small_dataset.items()}) as good:
        with pytest.warns(
            UserWarning, match="t10k-images-idx3-ubyte.gz: downloaded after 1 failed or rejected.*SHA-256 mismatch"
        ):
            loaded = data.load_mnist(mirrors=[bad.url, good.url], checksums=small_checksums, dtype="uint8", **FAST)
    np.testing.assert_array_equal(loaded.test_images, small_dataset["t10k-images-idx3-ubyte.gz"][1])
    assert good.requests == ["t10k-images-idx3-ubyte.gz"]


@pytest.mark.parametrize("how", ["cut-transfer", "truncated-file"])
def test_truncated_download_is_rejected(mirror, small_dataset, small_checksums, isolated_cache, how):
    name = "train-images-idx3-ubyte.gz"
    packed = small_dataset[name][0]
    if how == "cut-transfer":  # the server announces the full length and closes early
        mirror.cut[name] = len(packed) // 2
        expected = f"truncated transfer: received {len(packed) // 2} of {len(packed)} bytes"
    else:  # the mirror's copy itself is cut short: caught by the checksum and by gzip
        mirror.files[name] = packed[: len(packed) // 2]
        expected = "SHA-256 mismatch.*and its gzip data is corrupt or truncated"
    with pytest.raises(data.DataUnavailableError, match=expected):
        data.load_mnist(mirrors=[mirror.url], checksums=small_checksums, **FAST)
    assert name not in cache_listing(isolated_cache / "mnist")
    if how == "truncated-file":  # with checks off, gzip itself still refuses the cut stream
        with pytest.raises(data.DataUnavailableError, match="corrupt or truncated gzip"):
            data.load_mnist(mirrors=[mirror.url], verify=False, **FAST)


def test_retries_with_backoff_after_server_errors(mirror, small_checksums, isolated_cache):
    mirror.fail_first["t10k-labels-idx1-ubyte.gz"] = 2
    with pytest.warns(UserWarning, match="t10k-labels-idx1-ubyte.gz: downloaded after 2 failed .*HTTP 503"):
        data.load_mnist(mirrors=[mirror.url], checksums=small_checksums, retries=3, backoff=0.01)
    assert mirror.requests.count("t10k-labels-idx1-ubyte.gz") == 3
    (isolated_cache / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    mirror.fail_first["t10k-labels-idx1-ubyte.gz"] = 2
    with pytest.raises(data.DataUnavailableError) as error:
        data.load_mnist(mirrors=[mirror.url], checksums=small_checksums, retries=2, backoff=0.01)
    assert str(error.value).count("t10k-labels-idx1-ubyte.gz: HTTP 503") == 2


def offline_message_checks(message, cache):
    for name in data.FILES:
        assert f"    {name}\n" in message
    assert f"    {cache}\n" in message
    assert "STEVQ_DATA" in message


def test_offline_error_names_the_four_files_and_where_to_put_them(isolated_cache):
    dead = closed_port_url()
    with pytest.raises(data.DataUnavailableError) as error:
        data.load_mnist(mirrors=[dead], **FAST)
    offline_message_checks(str(error.value), isolated_cache / "mnist")
    assert f"{dead}train-images-idx3-ubyte.gz: " in str(error.value)
    with pytest.raises(FileNotFoundError) as error:  # DataUnavailableError is a FileNotFoundError
        data.load_mnist(download=False, cache_dir=isolated_cache / "elsewhere")
    offline_message_checks(str(error.value), isolated_cache / "elsewhere")
    assert "download=False" in str(error.value)
    assert not isolated_cache.exists()


# ---------------------------------------------------------------------------------------------
# The real Fashion-MNIST shipped by Debian (CI installs dataset-fashion-mnist)


def test_real_fashion_mnist_from_debian(isolated_cache):
    """The Debian copies hold the published content, load in full, and the sample inside the
    package is exactly their images at its recorded positions. Without the Debian package (outside
    CI) the sample is checked by tests/test_sample_data.py alone; in CI its absence fails."""
    debian = pathlib.Path(data.mnist.DEBIAN_FASHION_MNIST)
    searched = str(debian) in data.mnist._system_dirs(data.FASHION_MNIST)  # not with STEVQ_NO_SYSTEM_DATA
    if not searched or not all((debian / name).is_file() for name in data.FILES):
        if searched and os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"Fashion-MNIST not found in {debian} (apt-get install dataset-fashion-mnist)")
        return
    for name in data.FILES:  # the Debian copies hold the published content
        content = gzip.decompress((debian / name).read_bytes())
        assert sha256(content) == data.FASHION_MNIST.checksums[name][1], name
    loaded = data.load_fashion_mnist(dtype="uint8", download=False)  # found through the Debian directory
    assert loaded.train_images.shape == (60000, 28, 28) and loaded.test_images.shape == (10000, 28, 28)
    assert loaded.train_images.dtype == np.uint8 and int(loaded.train_images.max()) == 255
    np.testing.assert_array_equal(np.bincount(loaded.train_labels), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(loaded.test_labels), [1000] * 10)
    sample = data.sample.read(data.FASHION_MNIST.sample)
    for split, images, labels in (("train", *loaded.train), ("test", *loaded.test)):
        np.testing.assert_array_equal(sample[f"{split}_images"], images[sample[f"{split}_index"]])
        np.testing.assert_array_equal(sample[f"{split}_labels"], labels[sample[f"{split}_index"]])
        first = [np.flatnonzero(labels == k)[: len(sample[f"{split}_index"]) // 10] for k in range(10)]
        np.testing.assert_array_equal(sample[f"{split}_index"], np.sort(np.concatenate(first)))
    assert not isolated_cache.exists()
