"""Images for ``codesign.deploy``: a dataset's test split, a folder of PNG/JPEG, or an ``.npz``.

Every source gives float NHWC images in the model's input range plus optional labels, and is
checked against the model's input shape and range with a message that names both. PNG/JPEG
files are read with Pillow (imported only for a folder), converted to the model's channel
count and scaled from 0..255 to the model's input range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codesign.errors import DatasetError, ShapeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
RANGE_SLACK = 1e-6


def _folder(path: Path, shape: tuple[int, ...], rng: tuple[float, float]) -> np.ndarray:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f"--images {path} holds no .png/.jpg/.jpeg files.")
    try:
        from PIL import Image
    except ImportError:
        raise DatasetError("reading a folder of PNG/JPEG images needs Pillow (pip install pillow); "
                           "or pass an .npz with x [N, H, W, C].") from None
    h, w, c = shape
    mode = {1: "L", 3: "RGB"}.get(c)
    if mode is None:
        raise ShapeError(f"the model takes {c}-channel images; PNG/JPEG folders give 1 or 3 channels. Use an .npz.")
    out = []
    for f in files:
        try:
            with Image.open(f) as im:
                a = np.asarray(im.convert(mode), np.float64)
        except OSError as err:
            raise DatasetError(f"--images: {f} is not a readable image ({err}).") from None
        a = a[..., None] if a.ndim == 2 else a
        if a.shape != (h, w, c):
            raise ShapeError(f"--images: {f.name} is {a.shape[1]}x{a.shape[0]} pixels ({a.shape[2]} channels) but "
                             f"the model takes {w}x{h} with {c} channel(s), i.e. x of shape [N, {h}, {w}, {c}].")
        out.append(rng[0] + a / 255.0 * (rng[1] - rng[0]))
    return np.stack(out)


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` (and ``y`` when present) of an .npz file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z:
                raise DatasetError(f"{path} must hold an array named 'x' [N, H, W, C] (it has "
                                   f"{sorted(z.files)}).")
            x = np.asarray(z["x"])
            y = np.asarray(z["y"]).astype(np.int64).reshape(-1) if "y" in z else None
    except (OSError, ValueError) as err:
        raise DatasetError(f"cannot read --images {path}: {err}") from None
    if y is not None and len(y) != len(x):
        raise DatasetError(f"--images {path}: {len(x)} images but {len(y)} labels in 'y'.")
    return x, y


def check_images(x: np.ndarray, shape: tuple[int, ...], rng: tuple[float, float] | None, source: str) -> np.ndarray:
    """Shape [N, *shape] and values inside ``rng`` (the model's input range), else a clear error."""
    want = f"[N, {', '.join(map(str, shape))}]"
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
        raise ShapeError(f"{source} has images of shape {list(x.shape)}; the model takes {want}.")
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise DatasetError(f"{source} has non-numeric or non-finite pixel values.")
    if rng is not None and x.size:
        lo, hi = float(x.min()), float(x.max())
        if lo < rng[0] - RANGE_SLACK or hi > rng[1] + RANGE_SLACK:
            hint = " (0..255 pixels? divide by 255)" if hi > 1.5 and rng[1] <= 1.0 else ""
            raise DatasetError(f"{source} has pixel values in [{lo:g}, {hi:g}] but the model takes {want} in "
                               f"[{rng[0]:g}, {rng[1]:g}]{hint}.")
    return np.asarray(x, np.float64)


def input_range(text: str | None, model: str, graph: object | None) -> tuple[float, float] | None:
    """The model's input range: ``--input-range LO,HI``, else the zoo's, else a Rescaling layer's, else None."""
    if text is not None:
        try:
            lo, hi = (float(v) for v in text.split(","))
        except ValueError:
            lo = hi = float("nan")
        if not lo < hi:
            raise DatasetError(f"--input-range must be LO,HI with LO < HI (e.g. 0,1), got {text!r}.")
        return lo, hi
    from codesign.models import ZOO

    if model in ZOO and ZOO[model].input_range:
        return ZOO[model].input_range
    if graph is not None:
        from codesign.input_range import from_preprocessing

        found = from_preprocessing(graph)  # type: ignore[arg-type]
        return found[0] if found else None
    return None


def load_images(data: str | None, images: str | None, shape: tuple[int, ...], rng: tuple[float, float] | None,
                n: int) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The first ``n`` images (and labels when known) from ``--data`` or ``--images``; and a label."""
    if images is not None:
        p = Path(images)
        if p.is_dir():
            x, y = _folder(p, shape, rng or (0.0, 1.0)), None
        elif p.suffix == ".npz" and p.is_file():
            x, y = read_npz(p)
        else:
            raise DatasetError(f"--images {p} must be a folder of PNG/JPEG files or an existing .npz file.")
        source = f"--images {p}"
    else:
        from codesign.datasets import load_dataset

        x, y = load_dataset(data or "fashion-mnist", "test")
        source = f"--data {data or 'fashion-mnist'} (test split)"
    x = check_images(np.asarray(x)[:n], shape, rng, source)
    return x, (None if y is None else y[:n]), source


__all__ = ["check_images", "input_range", "load_images", "read_npz"]
