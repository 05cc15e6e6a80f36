"""Fashion-MNIST and Kuzushiji-MNIST on MNIST's IDX machinery: the checksum table, downloads
from a local server (small crafted files), a corrupted download refused, the offline message."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli

from pipeline.data.datasets import DATASET_OPTIONS, load_dataset
from pipeline.data.idx import write_idx
from pipeline.data.mnist import IDX_DATASETS, download, load_mnist
from pipeline.errors import DataError

NAMES = ("fashion_mnist", "kmnist")
SIZES = {"train": 6, "test": 4}


def _files(name: str) -> list:
    return [f for part in ("train", "test") for f in IDX_DATASETS[name].files[part]]


def test_checksum_table_has_the_published_files():
    # The md5 sums as published (Fashion-MNIST's README; torchvision's KMNIST resources).
    published = {
        "fashion_mnist": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        "kmnist": {
            "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
            "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
        },
    }
    mnist_names = [f.name for f in _files("mnist")]
    for name in ("mnist", *NAMES):
        source, files = IDX_DATASETS[name], _files(name)
        assert [f.name for f in files] == mnist_names  # the same four names everywhere
        assert all(len(f.md5) == 32 and int(f.md5, 16) >= 0 and f.size > 0 for f in files)
        assert source.mirrors and all(m.endswith("/") for m in source.mirrors)
        md5s = {f.name: f.md5 for f in files}
        for file_name, md5 in published.get(name, {}).items():
            assert md5s[file_name] == md5
    # Same names, different bytes: every dataset has its own sums.
    sums = [{f.md5 for f in _files(name)} for name in ("mnist", *NAMES)]
    assert not (sums[0] & sums[1] or sums[0] & sums[2] or sums[1] & sums[2])
    assert DATASET_OPTIONS["fashion_mnist"] == DATASET_OPTIONS["kmnist"] == DATASET_OPTIONS["mnist"]


def _make(directory: Path, name: str, seed: int = 0) -> dict:
    """Tiny files under the official names of ``name``; their arrays and md5 sums."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays, checksums = {}, {}
    for part, n in SIZES.items():
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        arrays[part] = images, labels
        for file, values in zip(IDX_DATASETS[name].files[part], (images, labels), strict=True):
            path = write_idx(directory / file.name, values)
            checksums[file.name] = hashlib.md5(path.read_bytes()).hexdigest()
    return {"arrays": arrays, "checksums": checksums}


@pytest.mark.parametrize("name", NAMES)
def test_download_from_a_local_server_then_load(tmp_path, name, http_mirror):
    made = _make(tmp_path / "served", name)
    target = tmp_path / "data"
    data = load_mnist(
        target,
        download=True,
        mirrors=[http_mirror(tmp_path / "served")],
        checksums=made["checksums"],
        dataset=name,
    )
    for part, (images, labels) in made["arrays"].items():
        X, y = data[part]
        np.testing.assert_array_equal(X, images.reshape(len(images), -1) / np.float32(255))
        np.testing.assert_array_equal(y, labels)
    assert sorted(p.name for p in target.iterdir()) == sorted(made["checksums"])


@pytest.mark.parametrize("name", NAMES)
def test_corrupted_download_is_refused_and_leaves_nothing(tmp_path, name, http_mirror):
    made = _make(tmp_path / "served", name)
    label_file = IDX_DATASETS[name].files["test"][1].name
    (tmp_path / "served" / label_file).write_bytes(b"\x1f\x8b not the file")
    with pytest.raises(DataError, match="md5 mismatch") as info:
        download(
            label_file,
            tmp_path / "data",
            [http_mirror(tmp_path / "served")],
            checksums=made["checksums"],
            dataset=name,
        )
    assert "\n" not in str(info.value)
    assert list((tmp_path / "data").iterdir()) == []


@pytest.mark.parametrize("name", NAMES)
def test_published_size_is_checked_per_dataset(tmp_path, name, http_mirror):
    label_file = IDX_DATASETS[name].files["test"][1]
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / label_file.name).write_bytes(b"short")
    with pytest.raises(DataError, match=f"got 5 bytes, expected {label_file.size}"):
        mirror = http_mirror(tmp_path / "served")
        download(label_file.name, tmp_path / "data", [mirror], dataset=name)


@pytest.mark.parametrize("name", NAMES)
def test_mnist_files_are_refused_as_this_dataset(tmp_path, name):
    # A folder of files under the right names but with another dataset's bytes: the md5 of
    # the tiny files matches neither published sum, and the message names the file.
    _make(tmp_path, "mnist")
    with pytest.raises(DataError, match="md5 mismatch"):
        load_dataset(name, dir=str(tmp_path), parts=["test"], download=False)


@pytest.mark.parametrize("name", NAMES)
def test_loaded_as_a_dataset_with_its_own_name(tmp_path, name):
    _make(tmp_path, name)
    data = load_dataset(name, dir=str(tmp_path), parts=["train", "test"], verify=False,
                        keep_official_split=True)  # fmt: skip
    assert data.name == name and data.image_shape == (28, 28)
    assert data.X.shape == (10, 784) and data.fixed_test.sum() == SIZES["test"]


@pytest.mark.parametrize("name", NAMES)
def test_offline_message_names_the_dataset_and_what_to_do(tmp_path, name):
    with pytest.raises(DataError) as info:
        load_dataset(name, dir=str(tmp_path / "empty"), parts=["test"], download=False)
    message = str(info.value)
    assert IDX_DATASETS[name].title in message and "data.download=true" in message
    assert IDX_DATASETS[name].mirrors[0] in message and "\n" not in message


@pytest.mark.slow
def test_cli_offline_fails_in_one_line(tmp_path):
    """``python -m pipeline data=fashion_mnist data.download=false data.dir=EMPTY``."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli(tmp_path, "data=fashion_mnist", "data.download=false", f"data.dir={empty}")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Fashion-MNIST file(s)" in lines[0] and "data.download=true" in lines[0]
