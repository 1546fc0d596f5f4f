"""Finding data files on disk, checking their SHA-256, and downloading the missing ones.

A file is looked for, in order, in each search directory under its published name (``NAME.gz``)
and decompressed (``NAME``); the first one found is used. If none is found it is downloaded from
the first mirror that serves a copy with an accepted checksum, with retries and exponential
backoff, into the cache directory through a temporary file and an atomic rename: a copy that is
truncated or whose checksum does not match is never moved into the cache, and every failed attempt
is reported.

Checksums. ``accepted`` is a tuple of SHA-256 hex digests; a file passes when the digest of its
bytes as stored, or of its decompressed IDX content, is one of them. Listing both the digest of the
published ``.gz`` and the digest of the IDX content inside it accepts the published archive, the
decompressed file, and a re-compressed copy of the same content (Debian's Fashion-MNIST package
ships such a copy: its ``.gz`` bytes differ from the published ones, its content does not).
"""

import dataclasses
import hashlib
import pathlib
import time
import urllib.error
import urllib.request
from http.client import HTTPException

from ..atomic import atomic_write_bytes
from .idx import decompress

MAX_DOWNLOAD_BYTES = 128 * 2**20  # a bound, so that a misbehaving server cannot fill the disk
_CHUNK = 2**20


class DataUnavailableError(FileNotFoundError):
    """A data file is neither on disk nor downloadable; the message says where to put it. Where it
    also says how to name a directory, the text is ``message`` + that way + ``after_directory``:
    the Python API's ``load_...(directory=...)`` in the message, the caller's own with ``advice``
    (the command line: ``--data-dir DIR``)."""

    DIRECTORY = "load_...(directory=...)"

    def __init__(self, message, after_directory=None):
        self.before, self.after = message, after_directory
        super().__init__(self.advice(self.DIRECTORY))

    def advice(self, directory):
        """The message, naming ``directory`` as the way to pass the data's directory."""
        return self.before if self.after is None else self.before + directory + self.after


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def checked_content(data, accepted, name):
    """The IDX bytes inside ``data`` after the checksum check (``accepted`` None: no check).

    Raises ``ValueError`` naming ``name`` for a digest not in ``accepted`` or corrupt gzip data.
    """
    if isinstance(accepted, str):
        accepted = (accepted,)
    stored_digest = sha256_hex(data)
    if accepted is None or stored_digest in accepted:
        return decompress(data, name)
    mismatch = f"{name}: SHA-256 mismatch: expected one of {', '.join(accepted)}; the file's is {stored_digest}"
    try:
        content = decompress(data, name)
    except ValueError as err:
        raise ValueError(f"{mismatch}, and its gzip data is corrupt or truncated ({err.__cause__})") from err
    if content is not data:
        content_digest = sha256_hex(content)
        if content_digest in accepted:
            return content
        mismatch += f" (of its decompressed content: {content_digest})"
    raise ValueError(mismatch)


def candidates(filename, directories):
    """The paths where ``filename`` (a ``.gz`` name) may be, in search order."""
    plain = filename[:-3] if filename.endswith(".gz") else filename
    return [pathlib.Path(d).expanduser() / name for d in directories for name in dict.fromkeys((filename, plain))]


def find(filename, directories):
    """The first existing candidate path of ``filename`` in ``directories``, or None."""
    return next((path for path in candidates(filename, directories) if path.is_file()), None)


def fetch_url(url, timeout, max_bytes=MAX_DOWNLOAD_BYTES, progress=False):
    """The body of ``url``; raises ``OSError`` for a transfer shorter than its Content-Length."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None else None
        if length is not None and length > max_bytes:
            raise OSError(f"refusing {length} bytes (more than {max_bytes})")
        from tqdm.auto import tqdm

        chunks, received = [], 0
        with tqdm(
            total=length, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], leave=False, disable=not progress
        ) as bar:
            while chunk := response.read(_CHUNK):
                chunks.append(chunk)
                received += len(chunk)
                bar.update(len(chunk))
                if received > max_bytes:
                    raise OSError(f"refusing more than {max_bytes} bytes")
    if length is not None and received != length:
        raise OSError(f"truncated transfer: received {received} of {length} bytes")
    return b"".join(chunks)


def _describe(error, url):
    """A one-line reason for a failed attempt."""
    if isinstance(error, urllib.error.HTTPError):
        error.close()
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    if isinstance(error, HTTPException):
        return f"{type(error).__name__}: {error}"
    return str(error).removeprefix(f"{url}: ")


def download(filename, mirrors, destination_dir, accepted, retries=3, backoff=1.0, timeout=30.0, progress=False):
    """Download ``filename`` into ``destination_dir`` from the first mirror giving a good copy.

    Each of ``retries`` rounds tries every mirror (base URL + "/" + filename) in order; rounds are
    separated by ``backoff * 2**(round - 1)`` seconds. A copy is good when its checksum is in
    ``accepted`` (or, with ``accepted`` None, when it decompresses). Returns ``(path, failures)``,
    or raises ``DataUnavailableError`` whose ``failures`` attribute lists "url: reason" for every
    attempt. Nothing is written unless a good copy arrived.
    """
    failures = []
    for attempt in range(retries):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        for base in mirrors:
            url = base.rstrip("/") + "/" + filename
            try:
                data = fetch_url(url, timeout, progress=progress)
                checked_content(data, accepted, url)
            except (OSError, HTTPException, ValueError) as err:  # URLError and HTTPError are OSErrors
                failures.append(f"{url}: {_describe(err, url)}")
                continue
            return atomic_write_bytes(pathlib.Path(destination_dir) / filename, data), failures
    error = DataUnavailableError(f"{filename}: no mirror gave a good copy")
    error.failures = failures
    raise error


@dataclasses.dataclass(frozen=True)
class Downloader:
    """How a missing file is downloaded (``download``): from ``mirrors`` (base URLs, in order), a copy
    checked against ``accepted`` ({file name: tuple of SHA-256 digests}; None: any copy that
    decompresses), in ``retries`` rounds ``backoff`` seconds apart (doubled each round), ``timeout``
    seconds per request, with progress bars when ``progress``."""

    mirrors: tuple
    accepted: dict | None = None
    retries: int = 3
    backoff: float = 1.0
    timeout: float = 30.0
    progress: bool = False

    def fetch(self, filename, destination_dir):
        """``download`` of ``filename`` into ``destination_dir``: ``(path, failures)``."""
        accepted = None if self.accepted is None else self.accepted[filename]
        return download(
            filename, self.mirrors, destination_dir, accepted, self.retries, self.backoff, self.timeout, self.progress
        )
