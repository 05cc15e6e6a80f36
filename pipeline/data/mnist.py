"""MNIST and its drop-in replacements as four official IDX files each: where they live, how
to fetch them, how to load them.

``IDX_DATASETS`` (:mod:`pipeline.data.idx_files`) holds, per dataset, the official files and
mirrors. ``load_mnist`` turns the IDX files in a data directory into the project's arrays
(X float32 ``(n_samples, 784)`` in [0, 1], y int64 ``(n_samples,)`` in 0..9), checking each
gzipped file against its published md5 first. With ``download=True`` missing files are fetched
by ``download``, which tries each mirror in turn and only ever moves a complete, verified file
into place, so an interrupted or corrupted transfer leaves nothing that looks valid.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from pipeline.data.idx import atomic_open, parse_idx
from pipeline.data.idx_files import (
    DEFAULT_MIRRORS,
    IDX_DATASETS,
    MNIST_FILES,
    IdxDataset,
    MnistFile,
)
from pipeline.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_MIRRORS",
    "IDX_DATASETS",
    "MNIST_FILES",
    "IdxDataset",
    "MnistFile",
    "download",
    "load_mnist",
]


_SCHEMES = ("http://", "https://", "file://")
_CHUNK = 1 << 16


def load_mnist(
    data_dir: str | os.PathLike,
    parts: Iterable[str] | str = ("train", "test"),
    *,
    download: bool = False,
    mirrors: Iterable[str] | None = None,
    verify: bool = True,
    timeout: float = 30.0,
    checksums: Mapping[str, str] | None = None,
    dataset: str = "mnist",
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load parts of MNIST (or of ``dataset``) from the IDX files in ``data_dir``, downloading
    missing ones if asked.

    Each file is looked for under its official name (``*.gz``) and its un-gzipped name.

    Parameters
    ----------
    data_dir : str or os.PathLike
        Directory holding (or to receive) the files.
    parts : iterable of {"train", "test"} or str
        Which parts to load, in the order they are returned.
    download, mirrors, timeout
        Fetch missing files from these base URLs (see :func:`download`); ``mirrors=None``
        means the dataset's own (``IDX_DATASETS``).
    verify : bool
        Check each gzipped file's md5 (un-gzipped files have no published sum).
    checksums : mapping of str to str, optional
        File name -> md5, overriding the published sums (e.g. for test fixtures).
    dataset : {"mnist", "fashion_mnist", "kmnist"}
        Which dataset of ``IDX_DATASETS`` the files belong to (their names are the same).

    Returns
    -------
    dict of str to (X, y)
        ``X`` float32 ``(n_samples, 784)`` with pixels scaled into [0, 1];
        ``y`` int64 ``(n_samples,)`` with classes 0..9.

    Raises
    ------
    ConfigError
        If a part name is unknown or a mirror is not a usable URL.
    DataError
        If a file is missing (and ``download`` is off), cannot be fetched, fails its md5,
        or does not hold MNIST-shaped images with matching labels.
    """
    data_dir = Path(data_dir)
    source = _source(dataset)
    parts = _check_parts(parts)
    names = [f.name for part in parts for f in source.files[part]]
    paths = {name: _find(data_dir, name) for name in names}
    missing = [name for name, path in paths.items() if path is None]
    if missing and not download:
        raise DataError(
            f"{source.title} file(s) {', '.join(missing)} not found in {data_dir.resolve()} "
            "(also looked for the names without .gz); set data.download=true or put the files "
            f"there by hand (from {source.mirrors[0]})"
        )
    for name in missing:
        paths[name] = _fetch(
            name, data_dir, mirrors, timeout=timeout, checksums=checksums, dataset=dataset
        )
    md5s = _md5s(source, checksums) if verify else {}
    out = {}
    for part in parts:
        image_path, label_path = (paths[f.name] for f in source.files[part])
        images, labels = _read(image_path, md5s), _read(label_path, md5s)
        out[part] = _to_arrays(images, labels, image_path, label_path)
    return out


def download(
    name: str,
    data_dir: str | os.PathLike,
    mirrors: Iterable[str] | None = None,
    *,
    timeout: float = 30.0,
    checksums: Mapping[str, str] | None = None,
    dataset: str = "mnist",
) -> Path:
    """Fetch one file into ``data_dir``, trying each mirror until one gives verified bytes.

    The file is streamed into a hidden temporary file in ``data_dir`` (created if needed);
    its byte count and md5 are checked before it is moved into place as ``data_dir / name``,
    which is returned. A mismatch is refused and the next mirror tried. Whatever goes
    wrong, no partial file is left behind.

    Parameters
    ----------
    name : str
        File name, e.g. ``"t10k-labels-idx1-ubyte.gz"``; must have a known md5.
    data_dir : str or os.PathLike
        Destination directory.
    mirrors : iterable of str, optional
        Base URLs (http://, https:// or file://), tried in order; ``name`` is appended.
        None: the dataset's own mirrors.
    timeout : float
        Seconds to wait on a stalled connection, per mirror.
    checksums : mapping of str to str, optional
        File name -> md5, overriding the published sums (the published sizes then
        no longer apply).

    Raises
    ------
    ConfigError
        If no md5 is known for ``name`` or a mirror is not a usable URL.
    DataError
        If ``data_dir`` cannot be created or no mirror delivered the right bytes.
    """
    source = _source(dataset)
    md5s = _md5s(source, checksums)
    if name not in md5s:
        raise ConfigError(f"no md5 known for {name!r}; known files: {', '.join(md5s)}")
    md5 = md5s[name].lower()
    official = {f.name: f for files in source.files.values() for f in files}.get(name)
    # The published size only applies to the published bytes, not to an overridden checksum.
    size = official.size if official is not None and official.md5 == md5 else None
    mirrors = source.mirrors if mirrors is None else mirrors
    mirrors = (mirrors,) if isinstance(mirrors, str) else tuple(mirrors)
    if not mirrors or not all(str(m).lower().startswith(_SCHEMES) for m in mirrors):
        raise ConfigError(
            "data.mirrors must be a non-empty list of base URLs starting with "
            f"{', '.join(_SCHEMES)}, got {list(mirrors)}"
        )
    data_dir = Path(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create data directory {data_dir}: {exc}") from exc
    target = data_dir / name
    last_error = ""
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        try:
            _fetch_verified(url, target, md5, size, timeout)
            return target
        except (OSError, http.client.HTTPException, ValueError, _Refused) as exc:
            last_error = f"{url}: {' '.join(str(exc).split()) or type(exc).__name__}"
    raise DataError(
        f"could not fetch {name} from any of {len(mirrors)} mirror(s) (last error: "
        f"{last_error}); there may be no network: download the {source.title} files elsewhere "
        f"(e.g. from {mirrors[0]}) and put them in {data_dir.resolve()} by hand"
    )


_fetch = download  # load_mnist's ``download`` flag shadows the function inside its body


class _Refused(Exception):
    """A mirror answered, but with the wrong bytes."""


def _fetch_verified(url: str, target: Path, md5: str, size: int | None, timeout: float) -> None:
    """Stream ``url`` into ``target`` atomically, raising if size or md5 are wrong."""
    with urllib.request.urlopen(url, timeout=timeout) as response, atomic_open(target) as f:
        digest = hashlib.md5(usedforsecurity=False)
        n_bytes = 0
        while chunk := response.read(_CHUNK):
            n_bytes += len(chunk)
            if size is not None and n_bytes > size:
                raise _Refused(f"more than the expected {size} bytes")
            digest.update(chunk)
            f.write(chunk)
        promised = response.headers.get("Content-Length")
        if promised is not None and promised.isdigit() and int(promised) != n_bytes:
            raise _Refused(f"transfer interrupted after {n_bytes} of {promised} bytes")
        if size is not None and n_bytes != size:
            raise _Refused(f"got {n_bytes} bytes, expected {size}")
        if digest.hexdigest() != md5:
            raise _Refused(f"md5 mismatch (expected {md5}, got {digest.hexdigest()})")


def _check_parts(parts: Iterable[str] | str) -> tuple[str, ...]:
    """Validate part names; a single string means one part. Duplicates are dropped."""
    parts = (parts,) if isinstance(parts, str) else tuple(dict.fromkeys(parts))
    if not parts or any(part not in ("train", "test") for part in parts):
        raise ConfigError(
            f"data.parts must be a non-empty list of train and test, got {list(parts)}"
        )
    return parts


def _source(dataset: str) -> IdxDataset:
    if dataset not in IDX_DATASETS:
        raise ConfigError(f"data.name: {dataset!r} is not one of {', '.join(IDX_DATASETS)}")
    return IDX_DATASETS[dataset]


def _md5s(source: IdxDataset, checksums: Mapping[str, str] | None) -> dict[str, str]:
    """Published md5 per file name of ``source``, updated by ``checksums``."""
    published = {f.name: f.md5 for files in source.files.values() for f in files}
    return published | dict(checksums or {})


def _find(data_dir: Path, name: str) -> Path | None:
    """The gzipped file if present, else the un-gzipped one, else None."""
    candidates = (data_dir / name, data_dir / name.removesuffix(".gz"))
    return next((path for path in candidates if path.is_file()), None)


def _read(path: Path, md5s: Mapping[str, str]) -> np.ndarray:
    """Read an IDX file, checking the md5 of a gzipped file named in ``md5s``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    expected = md5s.get(path.name)
    if expected is not None:
        actual = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if actual != expected.lower():
            raise DataError(
                f"{path}: md5 mismatch (expected {expected}, got {actual}); the file is "
                "corrupt or not the official one: delete it and download again"
            )
    return parse_idx(data, str(path))


def _to_arrays(
    images: np.ndarray, labels: np.ndarray, image_path: Path, label_path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Check MNIST shapes and ranges; return X float32 (n, 784) in [0, 1] and y int64 (n,)."""
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DataError(
            f"{image_path}: expected uint8 images of shape (n, 28, 28), "
            f"got {images.dtype} of shape {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(
            f"{label_path}: expected 1-D uint8 labels, got {labels.dtype} of shape {labels.shape}"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{image_path} has {len(images)} images but {label_path} has {len(labels)} "
            "labels; the files do not belong together"
        )
    if labels.size and labels.max() > 9:
        bad = np.unique(labels[labels > 9])
        raise DataError(f"{label_path}: labels must be in 0..9, found {bad.tolist()}")
    # Divide in float32 (no float64 intermediate): exact, so 255 maps to 1.0 exactly.
    X = np.divide(images.reshape(len(images), -1), np.float32(255), dtype=np.float32)
    return X, labels.astype(np.int64)
