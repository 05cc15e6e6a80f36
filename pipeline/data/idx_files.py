"""The official files of MNIST and its drop-in replacements: names, sizes, md5 sums, mirrors.

All three (``mnist``, ``fashion_mnist``, ``kmnist``) publish the same four IDX file names; what
differs is each file's size and md5 sum, and where to fetch it.
"""

from __future__ import annotations

from typing import NamedTuple


class MnistFile(NamedTuple):
    """One official file: its name, size in bytes and md5 (hex) as published."""

    name: str
    size: int
    md5: str


class IdxDataset(NamedTuple):
    """One MNIST-format dataset: its title, official files per part, mirrors in order."""

    title: str
    files: dict[str, tuple[MnistFile, MnistFile]]
    mirrors: tuple[str, ...]


# The four names, per part: (images, labels).
_NAMES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _dataset(title: str, published: dict, mirrors: tuple[str, ...]) -> IdxDataset:
    """``published``: part -> ((images size, md5), (labels size, md5)), in ``_NAMES`` order."""
    files = {
        part: tuple(MnistFile(name, *published[part][i]) for i, name in enumerate(names))
        for part, names in _NAMES.items()
    }
    return IdxDataset(title, files, mirrors)


#: Per dataset and part, the (images, labels) files exactly as published: MNIST's on its
#: original page; Fashion-MNIST's in the README of zalandoresearch/fashion-mnist (sizes as
#: its S3 bucket serves them); Kuzushiji-MNIST's md5 sums as torchvision's KMNIST lists them
#: (rois-codh/kmnist links the files without sums) and sizes as codh.rois.ac.jp serves them.
IDX_DATASETS: dict[str, IdxDataset] = {
    "mnist": _dataset(
        "MNIST",
        {
            "train": (
                (9_912_422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                (28_881, "d53e105ee54ea40749a09fcbcd1e9432"),
            ),
            "test": (
                (1_648_877, "9fb629c4189551a2d022fa330f9573f3"),
                (4_542, "ec29112dd5afa0611ce80d1b7f02629c"),
            ),
        },
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
    "fashion_mnist": _dataset(
        "Fashion-MNIST",
        {
            "train": (
                (26_421_880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                (29_515, "25c81989df183df01b3e8a0aad5dffbe"),
            ),
            "test": (
                (4_422_102, "bef4ecab320f06d8554ea6380940ec79"),
                (5_148, "bb300cfdad3c16e7a12a480ee83cd310"),
            ),
        },
        (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        ),
    ),
    "kmnist": _dataset(
        "Kuzushiji-MNIST",
        {
            "train": (
                (18_165_135, "bdb82020997e1d708af4cf47b453dcf7"),
                (29_497, "e144d726b3acfaa3e44228e80efcd344"),
            ),
            "test": (
                (3_041_136, "5c965bf0a639b31b8f53240b1b52f4d7"),
                (5_120, "7320c461ea6c1c855c0b718fb2a4b134"),
            ),
        },
        ("https://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    ),
}
MNIST_FILES = IDX_DATASETS["mnist"].files
DEFAULT_MIRRORS = IDX_DATASETS["mnist"].mirrors
