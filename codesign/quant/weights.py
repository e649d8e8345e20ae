"""Per-output-channel weight quantization (max/MSE clip, round-to-nearest or GPTQ)."""

from __future__ import annotations

import numpy as np

from codesign.graph.quant_hints import WeightGrid
from codesign.quant.dyadic import qrange, quantize
from codesign.quant.gptq import LayerGram, gptq_codes

WEIGHT_CLIPS = ("max", "mse")
MSE_CLIP_RATIOS = np.linspace(0.5, 1.0, 26)


def quantize_weights(w: np.ndarray, bits: int, clip: str = "max", gram: LayerGram | None = None,
                     groups: int = 1, grid: WeightGrid | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric narrow-range per-output-channel quantization (channels on the last axis).

    ``clip="max"`` sets ``scale = max|w| / qmax``. ``clip="mse"`` searches, per channel, the
    clipping ratio r in [0.5, 1] of ``max|w|`` that minimises the squared quantization error
    ``||w - q(w)||^2`` (outliers clipped, the rest resolved finer); it matters at <= 4 bits.
    With ``gram`` (the layer's input Gram matrix per group) and ``bits < 8`` the codes on that
    grid are chosen by GPTQ error compensation (:mod:`codesign.quant.gptq`) instead of
    round-to-nearest; 8-bit layers always round to nearest. A ``grid`` the source model fixed
    (QKeras) gives the scales instead: its weights already lie on it, so the codes are exact
    (a non-symmetric quantizer's ``-2^(b-1)`` saturates to the narrow range).
    """
    _lo, hi = qrange(bits, True, narrow=True)
    if grid is not None:
        s = np.where(grid.scale > 0, grid.scale, 1.0)
        return quantize(w, s, bits, True, narrow=True), s
    flat = w.astype(np.float64).reshape(-1, w.shape[-1])
    wmax = np.abs(flat).max(axis=0)
    if clip == "mse":
        best_err = np.full(flat.shape[1], np.inf)
        best = wmax.copy()
        for r in MSE_CLIP_RATIOS:
            s = np.where(wmax > 0, r * wmax / hi, 1.0)
            err = ((quantize(flat, s, bits, True, narrow=True) * s - flat) ** 2).sum(axis=0)
            better = err < best_err
            best_err = np.where(better, err, best_err)
            best = np.where(better, r * wmax, best)
        wmax = best
    elif clip != "max":
        raise ValueError(f"weight clip must be one of {WEIGHT_CLIPS}, got {clip!r}")
    s = np.where(wmax > 0, wmax / hi, 1.0)
    if gram is not None and bits < 8:
        return gptq_codes(w, s, bits, gram, groups), s
    return quantize(w, s, bits, True, narrow=True), s


__all__ = ["MSE_CLIP_RATIOS", "WEIGHT_CLIPS", "quantize_weights"]
