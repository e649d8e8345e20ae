"""Input gradients of convolutions, and the tap/padding helpers the pooling backward shares.

Split from :mod:`codesign.graph.grad` (the tape and the per-layer backward table): these are
the array kernels, which distillation spends most of its time in.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def taps(kernel: tuple[int, int], strides: tuple[int, int], out_hw: tuple[int, ...]) -> Iterator[tuple[int, tuple[slice, ...]]]:
    """``(tap index, slice of the padded input)`` for every kernel tap (a strided view)."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, strides, out_hw
    for i in range(kh):
        for j in range(kw):
            yield i * kw + j, (slice(None), slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw))



def crop(gp: np.ndarray, padding: tuple[int, int, int, int]) -> np.ndarray:
    """Inverse of zero padding for gradients: drop the padded border."""
    t, b, lft, r = padding
    return gp[:, t : gp.shape[1] - b, lft : gp.shape[2] - r, :]


def padded_shape(shape: tuple[int, ...], padding: tuple[int, int, int, int]) -> tuple[int, ...]:
    n, h, w, c = shape
    t, b, lft, r = padding
    return (n, h + t + b, w + lft + r, c)


def conv2d_input_grad(
    dy: np.ndarray, kernel: np.ndarray, in_shape: tuple[int, ...],
    strides: tuple[int, int], padding: tuple[int, int, int, int], groups: int = 1,
) -> np.ndarray:
    """dL/dx of a grouped conv (HWIO kernel) given dL/dy: col2im by one strided add per tap."""
    kernel = kernel.astype(dy.dtype, copy=False)
    kh, kw, cin_g, cout = kernel.shape
    n, oh, ow, _ = dy.shape
    if groups > 1 and cin_g == 1:
        return _depthwise_input_grad(dy, kernel, in_shape, strides, padding, groups)
    if (kh, kw, groups) == (1, 1, 1) and tuple(strides) == (1, 1) and not any(padding):
        return (dy.reshape(-1, cout) @ kernel[0, 0].T).reshape(in_shape)  # pointwise: one GEMM, no scatter
    gp = np.zeros(padded_shape(in_shape, padding), dtype=dy.dtype)
    cout_g = cout // groups
    for g in range(groups):
        dyg = dy[..., g * cout_g : (g + 1) * cout_g].reshape(-1, cout_g)
        kg = kernel[..., g * cout_g : (g + 1) * cout_g]
        cs = slice(g * cin_g, (g + 1) * cin_g) if groups > 1 else slice(None)
        # One GEMM gives every tap's patch gradient (kh*kw small GEMMs are slower, a stem's
        # single input channel makes them matrix-vector products); col2im adds them per tap.
        cols = (dyg @ kg.reshape(-1, cout_g).T).reshape(n, oh, ow, kh * kw, cin_g)
        for t, sl in taps((kh, kw), strides, (oh, ow)):
            idx = (*sl, cs)  # a named tuple index: mypy misreads `gp[(*sl, cs)]` as 3.11-only syntax
            gp[idx] += cols[:, :, :, t, :]
    return crop(gp, padding)


def _depthwise_input_grad(
    dy: np.ndarray, kernel: np.ndarray, in_shape: tuple[int, ...],
    strides: tuple[int, int], padding: tuple[int, int, int, int], groups: int,
) -> np.ndarray:
    """Depthwise backward: per-channel scaled strided adds; channel multipliers summed back."""
    kh, kw, _, cout = kernel.shape
    mult = cout // groups
    _, oh, ow, _ = dy.shape
    ph = padded_shape(in_shape, padding)
    gp = np.zeros((*ph[:3], cout), dtype=dy.dtype)  # gradient of the channel-repeated input
    for t, sl in taps((kh, kw), strides, (oh, ow)):
        gp[sl] += dy * kernel[t // kw, t % kw, 0]
    if mult > 1:  # output channel c*m + j read input channel c
        gp = gp.reshape(*ph[:3], groups, mult).sum(axis=-1)
    return crop(gp, padding)


__all__ = ["conv2d_input_grad", "crop", "padded_shape", "taps"]
