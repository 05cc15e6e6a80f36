"""IDX reading and writing: exact round trips, the byte layout, and every way a file can be bad."""

import gzip

import numpy as np
import pytest

from pipeline.data.idx import atomic_open, parse_idx, read_idx, write_idx
from pipeline.errors import DataError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def _header(code: int, dims: tuple[int, ...]) -> bytes:
    """The IDX magic number and big-endian dimensions."""
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def _random(dtype, shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


def _assert_one_line_error(path, *words) -> str:
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert "\n" not in message
    assert path.name in message
    for word in words:
        assert word in message
    return message


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["a-idx3-ubyte.gz", "a-idx3-ubyte"])
def test_round_trip_is_exact(tmp_path, dtype, name):
    array = _random(dtype, (3, 4, 5))
    path = write_idx(tmp_path / name, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype)
    assert back.dtype.isnative
    assert back.flags.writeable
    np.testing.assert_array_equal(back, array)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temp file left behind


def test_layout_is_big_endian_with_header(tmp_path):
    array = np.array([[1, 258, -2]], dtype=np.int16)
    write_idx(tmp_path / "x", array)
    expected = _header(0x0B, (1, 3)) + bytes([0x00, 0x01, 0x01, 0x02, 0xFF, 0xFE])
    assert (tmp_path / "x").read_bytes() == expected


def test_compression_follows_suffix_unless_forced(tmp_path):
    array = _random(np.uint8, (2, 3))
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b", array)
    write_idx(tmp_path / "c.gz", array, compress=False)
    write_idx(tmp_path / "d", array, compress=True)
    assert (tmp_path / "a.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "b").read_bytes()[:2] == b"\x00\x00"
    # Gzip is detected from the content: misleading names still read back correctly.
    assert (tmp_path / "c.gz").read_bytes()[:2] == b"\x00\x00"
    assert (tmp_path / "d").read_bytes()[:2] == b"\x1f\x8b"
    for name in "a.gz", "b", "c.gz", "d":
        np.testing.assert_array_equal(read_idx(tmp_path / name), array)


def test_gzipped_output_is_reproducible(tmp_path):
    array = _random(np.uint8, (4, 4))
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_write_rejects_unstorable_dtype_and_keeps_old_file(tmp_path):
    path = write_idx(tmp_path / "x", np.arange(3, dtype=np.uint8))
    before = path.read_bytes()
    with pytest.raises(ValueError, match="int64"):
        write_idx(path, np.arange(3, dtype=np.int64))
    with pytest.raises(ValueError, match="shape"):
        write_idx(path, np.uint8(3))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


def test_atomic_open_leaves_nothing_on_failure(tmp_path):
    path = tmp_path / "kept"
    path.write_bytes(b"old")
    for target in path, tmp_path / "new":
        with pytest.raises(KeyboardInterrupt), atomic_open(target) as f:
            f.write(b"half of it")
            raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]


def test_parse_idx_names_its_source():
    with pytest.raises(DataError, match="^labels-in-memory: too short"):
        parse_idx(b"\x00", "labels-in-memory")


@pytest.mark.parametrize("compressed", [False, True])
def test_truncated_data(tmp_path, compressed):
    payload = _header(0x08, (10, 28, 28)) + bytes(123)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(payload) if compressed else payload)
    message = _assert_one_line_error(path, "truncated", "10x28x28", "7840 bytes", "has 123")
    assert message.startswith(str(path))


def test_trailing_bytes(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(_header(0x0C, (2,)) + bytes(8 + 3))
    _assert_one_line_error(path, "trailing bytes", "2 int32 = 8 bytes", "has 11")


def test_truncated_header(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(_header(0x08, (5, 5, 5))[:10])
    _assert_one_line_error(path, "truncated", "3 dimensions")


@pytest.mark.parametrize("content", [b"", b"\x00\x00\x08"])
def test_too_short_for_header(tmp_path, content):
    path = tmp_path / "empty"
    path.write_bytes(content)
    _assert_one_line_error(path, "too short")


def test_wrong_magic(tmp_path):
    path = tmp_path / "notidx"
    path.write_bytes(b"PK" + _header(0x08, (1,))[2:] + b"\x07")
    _assert_one_line_error(path, "not an IDX file", "50 4b")


def test_unknown_dtype_code(tmp_path):
    path = tmp_path / "odd"
    path.write_bytes(_header(0x0A, (1,)) + b"\x07")
    _assert_one_line_error(path, "unknown IDX dtype code 0x0A")


def test_zero_dimensions(tmp_path):
    path = tmp_path / "scalar"
    path.write_bytes(bytes([0, 0, 0x08, 0, 7]))
    _assert_one_line_error(path, "0 dimensions")


def test_corrupt_gzip_stream(tmp_path):
    good = gzip.compress(_header(0x08, (50,)) + bytes(range(50)))
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    cases = {
        "flipped.gz": bytes(flipped),
        "cut.gz": good[: len(good) - 12],
        "magic-only": b"\x1f\x8b",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        _assert_one_line_error(tmp_path / name, "corrupt gzip")


def test_missing_file(tmp_path):
    _assert_one_line_error(tmp_path / "nope.gz", "cannot read")
