"""The IDX file format (the format of MNIST and Fashion-MNIST), read and written exactly.

An IDX file is a header followed by the array's elements, all big-endian:

    byte 0, 1    0, 0                      (the magic number starts with two zero bytes)
    byte 2       type code                 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                                           0x0D float32, 0x0E float64
    byte 3       ndim                      number of dimensions
    4 * ndim     dims                      each an unsigned 32-bit big-endian integer
    rest         prod(dims) elements       C order (last index fastest), big-endian

So an MNIST image file begins 00 00 08 03 (uint8, 3 dims) then 60000, 28, 28. Files are often
gzip-compressed; the reader recognises gzip by its first two bytes (1f 8b), not by the file name.

The reader checks every byte count: a file whose length is not exactly the header plus
prod(dims) elements (truncated, or with trailing bytes), with a bad magic number or an unknown type
code, or a gzip stream that is cut short or fails its CRC, raises ``ValueError`` naming the file. It
never returns partial data. Arrays are host NumPy arrays (convert with ``stevq.asarray``).
"""

import gzip
import math
import pathlib
import struct
import zlib

import numpy as np

from ..atomic import atomic_write_bytes

# IDX type code -> NumPy dtype (big-endian, as stored in the file).
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(data):
    """True when ``data`` (bytes) starts with the gzip magic number."""
    return data[:2] == GZIP_MAGIC


def decompress(data, name="<bytes>"):
    """The IDX bytes inside ``data``: gunzipped if ``data`` is gzip, else ``data`` itself.

    A gzip stream that ends early (truncated download) or fails its CRC-32 raises ``ValueError``.
    """
    if not is_gzip(data):
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as err:  # EOFError: cut short; BadGzipFile (OSError): CRC
        raise ValueError(f"{name}: corrupt or truncated gzip data ({err})") from err


def decode_idx(data, name="<bytes>"):
    """Parse uncompressed IDX bytes into a NumPy array of native byte order."""
    if len(data) < 4:
        raise ValueError(f"{name}: not an IDX file: {len(data)} bytes, shorter than the 4-byte magic number")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise ValueError(
            f"{name}: not an IDX file: bad magic number {data[:4].hex()} (an IDX file starts with two zero bytes)"
        )
    if type_code not in IDX_DTYPES:
        raise ValueError(
            f"{name}: unknown IDX type code 0x{type_code:02X} in the magic number; "
            f"expected one of {', '.join(f'0x{c:02X}' for c in IDX_DTYPES)}"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(
            f"{name}: truncated IDX header: {ndim} dimensions need {header_size} bytes, the file has {len(data)}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    dtype = IDX_DTYPES[type_code]
    expected = header_size + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise ValueError(
            f"{name}: IDX file {problem}: header says shape {shape} of {dtype.name}, "
            f"which needs {expected} bytes, the file has {len(data)}"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # a writable copy in native byte order


def encode_idx(array):
    """The IDX bytes (uncompressed) of a host array of a supported dtype."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _TYPE_CODES:
        raise TypeError(
            f"array: IDX cannot store dtype {array.dtype}; expected one of {sorted(d.name for d in _TYPE_CODES)}"
        )
    if array.ndim > 255 or any(n >= 2**32 for n in array.shape):
        raise ValueError(f"array: shape {array.shape} does not fit IDX (at most 255 dimensions, each below 2**32)")
    header = struct.pack(f">HBB{array.ndim}I", 0, _TYPE_CODES[native], array.ndim, *array.shape)
    return header + np.ascontiguousarray(array, dtype=native.newbyteorder(">")).tobytes()


def read_idx(path):
    """Read an IDX file (gzip-compressed or plain) into a host NumPy array.

    Raises ``ValueError`` naming the file if it is corrupt or truncated.
    """
    path = pathlib.Path(path)
    return decode_idx(decompress(path.read_bytes(), str(path)), str(path))


def write_idx(path, array, compress=None):
    """Write ``array`` (host or backend array) to ``path`` as IDX, atomically.

    ``compress``: gzip the file; by default when the name ends in ``.gz``. The gzip header carries
    no time stamp, so equal arrays give equal files (and equal checksums).
    """
    from ..backend import to_numpy

    path = pathlib.Path(path)
    data = encode_idx(to_numpy(array))
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        data = gzip.compress(data, mtime=0)
    return atomic_write_bytes(path, data)
