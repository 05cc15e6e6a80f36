"""Read and write IDX files, the format of the MNIST database.

An IDX file is a 4-byte magic number (two zero bytes, a dtype code, the number of
dimensions), one big-endian uint32 per dimension, then the values in C order, big-endian.
Files may be gzipped; gzip is detected by its magic bytes ``1f 8b``, never by the file name.

Reading is strict: every way a file can be damaged (corrupt gzip, wrong magic, unknown dtype,
truncated or trailing data) raises :class:`~pipeline.errors.DataError` with one line naming the
file and the problem, because a half-read dataset fails much later and much less clearly.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import secrets
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pipeline.errors import DataError

__all__ = ["IDX_DTYPES", "atomic_open", "parse_idx", "read_idx", "write_idx"]

#: IDX dtype code -> big-endian NumPy dtype, as defined by the MNIST database page.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {(dtype.kind, dtype.itemsize): code for code, dtype in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an IDX file (gzipped or raw) into an array.

    Parameters
    ----------
    data : bytes
        The whole file content.
    source : str
        Name used in error messages (usually the file path).

    Returns
    -------
    numpy.ndarray, shape given by the header
        A new, writable array in native byte order with the header's dtype
        (e.g. ``uint8`` of shape ``(n_images, 28, 28)`` for MNIST images).

    Raises
    ------
    DataError
        If the gzip stream is corrupt, the magic number or dtype code is invalid, or the
        data does not have exactly the byte count the header promises.
    """
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{source}: corrupt gzip stream ({exc}); delete it and fetch it again"
            ) from exc
    if len(data) < 4:
        raise DataError(f"{source}: too short for an IDX header ({len(data)} bytes)")
    if data[:2] != b"\x00\x00":
        raise DataError(
            f"{source}: not an IDX file: magic starts with {data[:2].hex(' ')}, expected 00 00"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataError(f"{source}: unknown IDX dtype code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise DataError(f"{source}: IDX header declares 0 dimensions")
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise DataError(
            f"{source}: truncated: header declares {ndim} dimensions "
            f"but the file has only {len(data)} bytes"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=object)) * dtype.itemsize
    found = len(data) - offset
    if found != expected:
        problem = "truncated" if found < expected else "trailing bytes"
        shape = "x".join(map(str, dims))
        raise DataError(
            f"{source}: {problem}: header says {shape} {dtype.name} = {expected} bytes "
            f"of data, file has {found}"
        )
    values = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=offset)
    # astype copies: the result is writable and native-endian (free for single bytes).
    return values.astype(dtype.newbyteorder("=")).reshape(dims)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzipped or raw.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read. Gzip is detected from the content, not from the name.

    Returns
    -------
    numpy.ndarray, shape given by the header
        See :func:`parse_idx`.

    Raises
    ------
    DataError
        If the file cannot be read or is not a valid IDX file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return parse_idx(data, str(path))


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write an array as an IDX file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; its directory must exist.
    array : numpy.ndarray, any shape with 1 to 255 dimensions
        Values of dtype uint8, int8, int16, int32, float32 or float64 (any byte order).
    compress : bool, optional
        Gzip the file. Defaults to whether ``path`` ends in ``.gz``.

    Returns
    -------
    pathlib.Path
        The written path.

    Raises
    ------
    ValueError
        If the dtype has no IDX code or the shape cannot be stored.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _CODES.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise ValueError(
            f"IDX cannot store dtype {array.dtype}; use one of uint8, int8, "
            "int16, int32, float32, float64"
        )
    if not 1 <= array.ndim <= 255 or any(d >= 2**32 for d in array.shape):
        raise ValueError(f"IDX cannot store shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    if path.name.endswith(".gz") if compress is None else compress:
        payload = gzip.compress(payload, compresslevel=6, mtime=0)  # mtime=0: reproducible bytes
    with atomic_open(path) as f:
        f.write(payload)
    return path


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a hidden temporary file next to ``path``; move it into place on success.

    If the ``with`` block raises (including ``KeyboardInterrupt``), the temporary file is
    removed and ``path`` is left untouched, so readers never see a half-written file.

    Parameters
    ----------
    path : str or os.PathLike
        Final destination; its directory must exist.

    Yields
    ------
    BinaryIO
        A binary file object open for writing.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    # O_EXCL: never clobber another writer's temp file; mode 0o666 lets the umask decide.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    done = False
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        done = True
    finally:
        if not done:
            tmp.unlink(missing_ok=True)
