"""NumPy kernels shared by float execution and the integer golden model.

All tensors are NHWC. The integer golden model calls these kernels with float64 arrays that
hold integers: a float64 sum of integer products is exact while every partial sum stays
below 2^53, which :func:`exact_int_matmul` checks. That keeps integer convolution on BLAS.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

EXACT_LIMIT = float(2**53)


def pad_nhwc(x: np.ndarray, padding: tuple[int, int, int, int], value: float = 0.0) -> np.ndarray:
    """Pad H and W by ``(top, bottom, left, right)``."""
    t, b, lft, r = padding
    if not (t or b or lft or r):
        return x
    return np.pad(x, ((0, 0), (t, b), (lft, r), (0, 0)), constant_values=value)


def crop_nhwc(x: np.ndarray, cropping: tuple[int, int, int, int]) -> np.ndarray:
    """Remove ``(top, bottom, left, right)`` pixels from H and W."""
    t, b, lft, r = cropping
    return x[:, t : x.shape[1] - b, lft : x.shape[2] - r, :]


def windows(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int]) -> np.ndarray:
    """Strided view ``[N, OH, OW, C, kh, kw]`` of the sliding windows of a padded input."""
    v = sliding_window_view(x, kernel, axis=(1, 2))  # type: ignore[call-overload]  # stub: axis=int only
    return v[:, :: strides[0], :: strides[1]]


def im2col(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int]) -> np.ndarray:
    """Patches ``[N, OH, OW, kh*kw*C]`` with K ordered (kh, kw, c), c fastest (HWIO order).

    One strided slice copy per tap (C stays the contiguous axis), in the dtype of ``x``.
    """
    n, h, w, c = x.shape
    kh, kw = kernel
    sh, sw = strides
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    if kh == kw == 1 and sh == sw == 1:
        return x.reshape(n, oh, ow, c)
    out = np.empty((n, oh, ow, kh, kw, c), x.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, :, i, j, :] = x[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]
    return out.reshape(n, oh, ow, kh * kw * c)


def conv2d(
    x: np.ndarray,
    kernel: np.ndarray,
    strides: tuple[int, int],
    padding: tuple[int, int, int, int],
    groups: int = 1,
) -> np.ndarray:
    """Grouped 2-D convolution (no bias) in the dtype of ``x``; kernel is HWIO."""
    kh, kw, cin_g, cout = kernel.shape
    xp = pad_nhwc(x, padding)
    kernel = kernel.astype(x.dtype, copy=False)
    if groups == 1:
        cols = im2col(xp, (kh, kw), strides)
        n, oh, ow, k = cols.shape
        return (cols.reshape(-1, k) @ kernel.reshape(k, cout)).reshape(n, oh, ow, cout)
    if cin_g == 1:
        return _depthwise(xp, kernel, strides, groups)
    outs = []
    cout_g = cout // groups
    for g in range(groups):
        xg = xp[..., g * cin_g : (g + 1) * cin_g]
        cols = im2col(xg, (kh, kw), strides)
        n, oh, ow, k = cols.shape
        kg = kernel[..., g * cout_g : (g + 1) * cout_g].reshape(k, cout_g)
        outs.append((cols.reshape(-1, k) @ kg).reshape(n, oh, ow, cout_g))
    return np.concatenate(outs, axis=-1)


def _depthwise(xp: np.ndarray, kernel: np.ndarray, strides: tuple[int, int], groups: int) -> np.ndarray:
    """Depthwise conv: one input channel per group, ``cout/groups`` outputs per channel."""
    kh, kw, _, cout = kernel.shape
    mult = cout // groups
    if mult > 1:  # output channel c*m + j reads input channel c
        xp = np.repeat(xp, mult, axis=-1)
    sh, sw = strides
    n, hp, wp, _ = xp.shape
    oh = (hp - kh) // sh + 1
    ow = (wp - kw) // sw + 1
    out = np.zeros((n, oh, ow, cout), dtype=xp.dtype)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
            out += patch * kernel[i, j, 0]
    return out


def pool2d(
    x: np.ndarray, kind: str, pool: tuple[int, int], strides: tuple[int, int], padding: tuple[int, int, int, int]
) -> np.ndarray:
    """Max pooling, or average pooling that excludes padded pixels (Keras semantics)."""
    if kind == "max":
        fill = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
        return windows(pad_nhwc(x, padding, fill), pool, strides).max(axis=(-2, -1))
    total = windows(pad_nhwc(x, padding), pool, strides).sum(axis=(-2, -1))
    return total / pool_counts(x.shape[1:3], pool, strides, padding)


def pool_counts(
    hw: tuple[int, ...], pool: tuple[int, int], strides: tuple[int, int], padding: tuple[int, int, int, int]
) -> np.ndarray:
    """Number of real (non-padded) pixels in each pooling window, shaped ``[1, OH, OW, 1]``."""
    ones = np.ones((1, hw[0], hw[1], 1), dtype=np.float64)
    return windows(pad_nhwc(ones, padding), pool, strides).sum(axis=(-2, -1))


def exact_int_matmul_check(acc: np.ndarray) -> None:
    """Raise if a float64 integer accumulation may have lost exactness (|partial| >= 2^53)."""
    if acc.size and float(np.max(np.abs(acc))) >= EXACT_LIMIT:
        raise OverflowError("integer accumulation exceeded 2^53; float64 emulation is no longer exact")


def hard_sigmoid(x: np.ndarray) -> np.ndarray:
    """``relu6(x + 3) / 6`` (the MobileNetV3 definition, not Keras 2's 0.2x+0.5)."""
    return np.clip(x + 3.0, 0.0, 6.0) * (1.0 / 6.0)


def softmax(x: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis."""
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def activation(x: np.ndarray, kind: str) -> np.ndarray:
    """Float activation by name."""
    if kind == "relu":
        return np.maximum(x, 0)
    if kind == "relu6":
        return np.clip(x, 0, 6)
    if kind == "hsigmoid":
        return hard_sigmoid(x)
    if kind == "hswish":
        return x * hard_sigmoid(x)
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    raise ValueError(f"unknown activation {kind!r}")
