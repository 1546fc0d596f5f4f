"""stevq.data's IDX files: round trips checked against bytes written by hand from the format
description, gzip detected by content, and corrupt, cut or damaged files refused naming the file."""

import gzip

import numpy as np
import pytest

import stevq
from stevq import data


def hand_built_idx(array, type_code):
    """IDX bytes written out by hand from the format description (independent of the encoder)."""
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes(order="C")


IDX_CASES = [("uint8", 0x08), ("int8", 0x09), ("int16", 0x0B), ("int32", 0x0C), ("float32", 0x0D), ("float64", 0x0E)]


@pytest.mark.parametrize("dtype,type_code", IDX_CASES)
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2)])
@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_round_trip_matches_hand_built_bytes(tmp_path, rng, dtype, type_code, shape, suffix):
    info = np.iinfo(dtype) if dtype[0] in "ui" else None
    if info is not None:
        array = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    else:
        array = (rng.standard_normal(shape) * 1e3).astype(dtype)
    path = data.write_idx(tmp_path / f"a{suffix}", array)
    stored = path.read_bytes()
    assert stored[:2] == (b"\x1f\x8b" if suffix else b"\x00\x00")
    assert (gzip.decompress(stored) if suffix else stored) == hand_built_idx(array, type_code)
    back = data.read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == shape
    np.testing.assert_array_equal(back, array)
    back[...] = 0  # the result is a writable array of its own


def test_idx_reads_hand_built_mnist_header_and_detects_gzip_by_content(tmp_path):
    labels = bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([7, 2, 9])
    (tmp_path / "labels-no-suffix").write_bytes(gzip.compress(labels))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "labels-no-suffix"), [7, 2, 9])
    data.write_idx(tmp_path / "plain", np.array([1, 2], np.uint8), compress=True)
    assert gzip.decompress((tmp_path / "plain").read_bytes()) == bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2])


def test_idx_write_is_deterministic_and_accepts_backend_arrays(tmp_path, backend):
    host = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    first = data.write_idx(tmp_path / "x.gz", stevq.asarray(host)).read_bytes()
    second = data.write_idx(tmp_path / "y.gz", host).read_bytes()
    assert first == second
    np.testing.assert_array_equal(data.read_idx(tmp_path / "x.gz"), host)


def test_idx_write_refuses_unsupported_dtypes(tmp_path):
    with pytest.raises(TypeError, match="array: IDX cannot store dtype uint16"):
        data.write_idx(tmp_path / "x", np.zeros(3, np.uint16))
    assert not (tmp_path / "x").exists()


GOOD = bytes([0, 0, 8, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(range(6))
CORRUPT = {
    "truncated": (GOOD[:-1], "truncated.*needs 18 bytes, the file has 17"),
    "trailing": (GOOD + b"\x00", "trailing bytes"),
    "bad-magic": (b"\x01" + GOOD[1:], "bad magic number"),
    "unknown-type": (GOOD[:2] + b"\x0a" + GOOD[3:], "unknown IDX type code 0x0A"),
    "short-header": (GOOD[:9], "truncated IDX header"),
    "empty": (b"", "shorter than the 4-byte magic"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
@pytest.mark.parametrize("compressed", [False, True])
def test_idx_corrupt_files_raise_naming_the_file(tmp_path, case, compressed):
    content, message = CORRUPT[case]
    path = tmp_path / f"{case}.idx"
    path.write_bytes(gzip.compress(content) if compressed else content)
    with pytest.raises(ValueError, match=message) as error:
        data.read_idx(path)
    assert str(path) in str(error.value)


def test_idx_cut_or_damaged_gzip_raises_naming_the_file(tmp_path):
    packed = gzip.compress(GOOD)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(packed[:-6])
    with pytest.raises(ValueError, match=f"{cut}: corrupt or truncated gzip"):
        data.read_idx(cut)
    damaged = tmp_path / "crc.gz"
    damaged.write_bytes(packed[:-8] + bytes([packed[-8] ^ 0xFF]) + packed[-7:])  # flip the stored CRC-32
    with pytest.raises(ValueError, match=f"{damaged}: corrupt or truncated gzip"):
        data.read_idx(damaged)
