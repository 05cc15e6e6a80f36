"""MNIST loading and downloading, on tiny IDX files made here and served from local mirrors."""

import hashlib
import http.server
import socket
from pathlib import Path

import numpy as np
import pytest

from pipeline.data.idx import write_idx
from pipeline.data.mnist import MNIST_FILES, download, load_mnist
from pipeline.errors import ConfigError, DataError

REAL_MNIST = Path(__file__).parents[1] / "../shared/data/mnist"
SIZES = {"train": 7, "test": 4}
TEST_IMAGES, TEST_LABELS = (f.name for f in MNIST_FILES["test"])


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_mnist(directory: Path, *, gz: bool = True, seed: int = 0) -> dict:
    """Write tiny MNIST-shaped train/test files; return their arrays and md5 sums."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays, checksums = {}, {}
    for part, n in SIZES.items():
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[0, 0, :2] = (0, 255)  # the extremes must map to exactly 0.0 and 1.0
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        arrays[part] = images, labels
        for file, values in zip(MNIST_FILES[part], (images, labels), strict=True):
            path = write_idx(directory / (file.name if gz else file.name[:-3]), values)
            checksums[file.name] = _md5(path)
    return {"arrays": arrays, "checksums": checksums}


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def served(tmp_path):
    """Tiny MNIST files in a folder, and their md5 sums."""
    return make_mnist(tmp_path / "served") | {"dir": tmp_path / "served"}


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.mark.parametrize("gz", [True, False])
def test_load_matches_the_files(tmp_path, gz):
    made = make_mnist(tmp_path, gz=gz)
    data = load_mnist(tmp_path, checksums=made["checksums"])
    assert list(data) == ["train", "test"]
    for part, (images, labels) in made["arrays"].items():
        X, y = data[part]
        assert X.dtype == np.float32 and X.shape == (SIZES[part], 784)
        assert y.dtype == np.int64 and y.shape == (SIZES[part],)
        np.testing.assert_array_equal(X, images.reshape(len(images), -1) / np.float32(255))
        np.testing.assert_array_equal(y, labels)
    assert data["train"][0][0, :2].tolist() == [0.0, 1.0]


def test_parts_select_and_order(tmp_path):
    made = make_mnist(tmp_path)
    assert list(load_mnist(tmp_path, ("test", "train"), checksums=made["checksums"])) == [
        "test",
        "train",
    ]
    only = load_mnist(tmp_path, "test", checksums=made["checksums"])
    assert list(only) == ["test"] and len(only["test"][1]) == SIZES["test"]


@pytest.mark.parametrize("parts", [("train", "valid"), (), "all"])
def test_unknown_part_is_a_config_error(tmp_path, parts):
    with pytest.raises(ConfigError, match=r"data\.parts .*train and test"):
        load_mnist(tmp_path, parts)


def test_missing_files_say_where_and_what_to_do(tmp_path):
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path / "empty", "test")
    message = str(info.value)
    assert TEST_IMAGES in message and TEST_LABELS in message
    assert str((tmp_path / "empty").resolve()) in message
    assert "data.download=true" in message and "\n" not in message


def test_md5_mismatch_is_refused_unless_verify_is_off(tmp_path):
    make_mnist(tmp_path)  # tiny files cannot match the published sums
    with pytest.raises(DataError, match=r"md5 mismatch .*delete it and download again"):
        load_mnist(tmp_path, "test")
    assert load_mnist(tmp_path, "test", verify=False)["test"][0].shape == (SIZES["test"], 784)


def _write_test_part(directory, images, labels):
    write_idx(directory / TEST_IMAGES, images)
    write_idx(directory / TEST_LABELS, labels)


@pytest.mark.parametrize(
    ("images", "labels", "bad_file", "words"),
    [
        (np.zeros((3, 28, 28), np.uint8), np.zeros(2, np.uint8), TEST_IMAGES, "3 images but"),
        (
            np.zeros((2, 28, 28), np.uint8),
            np.array([3, 10], np.uint8),
            TEST_LABELS,
            "0..9, found [10]",
        ),
        (np.zeros((2, 27, 28), np.uint8), np.zeros(2, np.uint8), TEST_IMAGES, "(2, 27, 28)"),
        (np.zeros((2, 784), np.uint8), np.zeros(2, np.uint8), TEST_IMAGES, "(n, 28, 28)"),
        (np.zeros((2, 28, 28), np.float32), np.zeros(2, np.uint8), TEST_IMAGES, "float32"),
        (np.zeros((2, 28, 28), np.uint8), np.zeros((2, 1), np.uint8), TEST_LABELS, "1-D"),
    ],
)
def test_invalid_contents_name_the_file(tmp_path, images, labels, bad_file, words):
    _write_test_part(tmp_path, images, labels)
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path, "test", verify=False)
    message = str(info.value)
    assert bad_file in message
    assert words in message and "\n" not in message


def test_download_over_http_creates_the_dir(tmp_path, served, http_mirror):
    target = tmp_path / "new" / "data"
    path = download(
        TEST_LABELS, target, [http_mirror(served["dir"])], checksums=served["checksums"]
    )
    assert path == target / TEST_LABELS
    assert path.read_bytes() == (served["dir"] / TEST_LABELS).read_bytes()
    assert _files(target) == [TEST_LABELS]


def test_load_with_download_from_a_file_mirror(tmp_path, served):
    target = tmp_path / "data"
    mirror = served["dir"].as_uri()  # no trailing slash: base URLs work either way
    data = load_mnist(target, download=True, mirrors=[mirror], checksums=served["checksums"])
    np.testing.assert_array_equal(data["test"][1], served["arrays"]["test"][1])
    assert _files(target) == sorted(served["checksums"])


def test_corrupted_mirror_is_refused_and_next_used(tmp_path, served, http_mirror):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / TEST_LABELS).write_bytes(b"\x1f\x8b not the right bytes")
    empty = tmp_path / "empty"  # answers 404
    empty.mkdir()
    mirrors = [http_mirror(bad), http_mirror(empty), http_mirror(served["dir"])]
    target = tmp_path / "data"
    download(TEST_LABELS, target, mirrors, checksums=served["checksums"])
    assert _md5(target / TEST_LABELS) == served["checksums"][TEST_LABELS]
    assert _files(target) == [TEST_LABELS]


def test_corrupted_only_mirror_keeps_nothing(tmp_path, served, http_mirror):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / TEST_LABELS).write_bytes(b"wrong")
    target = tmp_path / "data"
    with pytest.raises(DataError, match=r"any of 1 mirror.*md5 mismatch"):
        download(TEST_LABELS, target, [http_mirror(bad)], checksums=served["checksums"])
    assert _files(target) == []


def test_official_size_is_checked_before_md5(tmp_path, http_mirror):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / TEST_LABELS).write_bytes(b"short")
    with pytest.raises(DataError, match="got 5 bytes, expected 4542"):
        download(TEST_LABELS, tmp_path / "data", [http_mirror(bad)])
    assert _files(tmp_path / "data") == []


class _CutHandler(http.server.BaseHTTPRequestHandler):
    """Promises 1000 bytes, sends 10, then hangs up: an interrupted download."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" + bytes(8))
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format, *args):
        pass


def test_interrupted_download_leaves_no_file(tmp_path, served, http_mirror):
    target = tmp_path / "data"
    with pytest.raises(DataError, match="could not fetch.*transfer interrupted after 10 of 1000"):
        download(
            TEST_LABELS, target, [http_mirror(None, _CutHandler)], checksums=served["checksums"]
        )
    assert _files(target) == []


def test_unreachable_mirror_says_no_network(tmp_path):
    target = tmp_path / "data"
    with pytest.raises(DataError) as info:
        load_mnist(target, "test", download=True, mirrors=[_closed_port_url()], timeout=5)
    message = str(info.value)
    assert "could not fetch t10k-images-idx3-ubyte.gz from any of 1 mirror" in message
    assert "no network" in message and str(target.resolve()) in message
    assert "\n" not in message
    assert _files(target) == []


@pytest.mark.parametrize("mirrors", [[], ["ftp://example.org/"], ["/just/a/path"]])
def test_bad_mirror_list_is_a_config_error(tmp_path, mirrors):
    with pytest.raises(ConfigError, match=r"data\.mirrors"):
        download(TEST_LABELS, tmp_path, mirrors)


def test_unknown_file_name_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no md5 known"):
        download("cifar.tar.gz", tmp_path)


@pytest.mark.slow
def test_real_mnist_test_set():
    if not (REAL_MNIST / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST test set not found in {REAL_MNIST.resolve()}")
    X, y = load_mnist(REAL_MNIST, "test")["test"]
    assert X.shape == (10000, 784) and X.dtype == np.float32
    assert X.min() == 0.0 and X.max() == 1.0
    counts = np.bincount(y, minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert counts.sum() == 10000 and len(counts) == 10
