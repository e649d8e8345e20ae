"""Read QKeras quantizers into IR grids (:mod:`codesign.graph.quant_hints`); TF-side, import lazily.

What each quantizer becomes
---------------------------
* kernel ``quantized_bits(b, i, symmetric, keep_negative, alpha)``: the kernel QKeras uses
  (the quantizer applied) and its per-output-channel step ``scale_c * 2^i / 2^(b-keep_negative)``,
  where ``scale_c`` is what the quantizer computed (1, the fixed ``alpha`` or the ``auto`` /
  ``auto_po2`` per-channel factor). ``w_bits = b`` (``b+1``, at most 8, for unsigned kernels).
  The codes of a non-symmetric quantizer may reach ``-2^(b-1)``, which the narrow symmetric
  hardware range saturates to ``-(2^(b-1)-1)``.
* kernel ``quantized_po2(b)``: powers of two on the uniform grid whose step is the smallest
  magnitude of each channel. ``w_bits`` is the width those codes need; when that exceeds 8,
  the channel is put on the 8-bit grid ``max|w_c|/127`` and rounded (not exact).
* activation ``quantized_relu(b, i)``: unsigned ``b``-bit tensor with scale ``2^(i-b)``.
* activation ``quantized_bits(b, i, keep_negative=k)`` (alpha 1/None): ``b``-bit tensor, signed
  when ``k``, scale ``2^(i-b+k)``.
* anything else (power-of-two or sigmoid activations, stochastic rounding, leaky
  ``quantized_relu``, binary/ternary) has no integer grid here and is refused by name.

QKeras rounds with ``tf.round`` (ties to even) where the golden model rounds half up, so an
activation exactly halfway between two codes may differ by one code: the importer tests
measure and bound this.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from codesign.errors import UnsupportedLayerError
from codesign.graph.quant_hints import TensorGrid, WeightGrid

MAX_BITS = 8
INTEGRAL_TOL = 1e-3  # |code - round(code)| allowed when reading codes off a quantized kernel


def is_quantizer(obj: Any) -> bool:
    """True for a QKeras quantizer object (not a plain Keras activation)."""
    return type(obj).__module__.startswith("qkeras") and hasattr(obj, "bits")


def _np(v: Any) -> np.ndarray:
    return np.asarray(v.numpy() if hasattr(v, "numpy") else v, np.float64)


def _per_channel(arr: np.ndarray, kernel_shape: tuple[int, ...], depthwise: bool) -> np.ndarray:
    """Broadcast a quantizer factor to the kernel and take one value per IR output channel."""
    full = np.broadcast_to(arr, kernel_shape)
    channels = full.reshape(*kernel_shape[:-2], -1) if depthwise else full
    return channels.reshape(-1, channels.shape[-1])[0]


def _refuse(layer: str, quantizer: Any, why: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(f"layer {layer!r} uses QKeras quantizer {quantizer}, {why}.")


def weight_grid(layer: str, quantizer: Any, kernel: np.ndarray, depthwise: bool = False) -> tuple[np.ndarray, WeightGrid]:
    """(quantized kernel as QKeras computes it, its grid); ``depthwise`` kernels are ``[kh, kw, cin, m]``."""
    name = type(quantizer).__name__
    if getattr(quantizer, "use_stochastic_rounding", False):
        raise _refuse(layer, quantizer, "which rounds stochastically; only deterministic quantizers import")
    q = _np(quantizer(kernel.astype(np.float32)))
    flat = q.reshape(*q.shape[:-2], -1) if depthwise else q
    flat = flat.reshape(-1, flat.shape[-1])
    if name == "quantized_bits":
        unsigned_bits = int(quantizer.bits) - int(bool(quantizer.keep_negative))
        factor = _np(quantizer.scale if quantizer.scale is not None else 1.0)
        step = _per_channel(factor, q.shape, depthwise) * 2.0 ** float(_np(quantizer.integer)) / 2.0**unsigned_bits
        bits = int(quantizer.bits) if quantizer.keep_negative else min(int(quantizer.bits) + 1, MAX_BITS)
    elif name == "quantized_po2":
        mags = np.where(flat != 0, np.abs(flat), np.inf)
        step = np.where(np.isfinite(mags.min(axis=0)), mags.min(axis=0), 1.0)
        need = int(np.ceil(np.log2(np.max(np.abs(flat) / step) + 1))) + 1
        bits = max(2, need)
        if bits > MAX_BITS:  # the power-of-two range does not fit the hardware's 8-bit codes
            bits = MAX_BITS
            peak = np.abs(flat).max(axis=0)
            step = np.where(peak > 0, peak / (2 ** (MAX_BITS - 1) - 1), 1.0)
            return q.astype(np.float32), WeightGrid(bits, step, str(quantizer))
    else:
        raise _refuse(layer, quantizer, "which has no integer weight grid; kernels may use quantized_bits or quantized_po2")
    step = np.where(step > 0, step, 1.0)
    codes = flat / step
    if np.max(np.abs(codes - np.round(codes)), initial=0.0) > INTEGRAL_TOL:
        raise _refuse(layer, quantizer, "whose output is not on the grid it declares (importer cannot read its step)")
    return q.astype(np.float32), WeightGrid(bits, step.astype(np.float64), str(quantizer))


def tensor_grid(layer: str, quantizer: Any) -> TensorGrid | None:
    """The grid an activation quantizer puts its output on (None for a non-QKeras activation)."""
    if not is_quantizer(quantizer):
        return None
    name = type(quantizer).__name__
    if getattr(quantizer, "use_stochastic_rounding", False):
        raise _refuse(layer, quantizer, "which rounds stochastically; only deterministic quantizers import")
    bits = int(quantizer.bits)
    integer = float(_np(quantizer.integer)) if hasattr(quantizer, "integer") else 0.0
    if name == "quantized_relu":
        if quantizer.use_sigmoid or quantizer.negative_slope:
            raise _refuse(layer, quantizer, "a sigmoid/leaky variant; only quantized_relu(bits, integer) imports")
        return TensorGrid(bits, False, 2.0 ** (integer - bits), str(quantizer))
    if name == "quantized_bits":
        if quantizer.alpha not in (None, 1, 1.0):
            raise _refuse(layer, quantizer, "an activation quantizer with alpha; only alpha=None/1 imports")
        signed = bool(quantizer.keep_negative)
        return TensorGrid(bits, signed, 2.0 ** (integer - bits + int(signed)), str(quantizer))
    raise _refuse(layer, quantizer, "which has no uniform integer grid; activations may use quantized_relu "
                  "or quantized_bits")


__all__ = ["is_quantizer", "tensor_grid", "weight_grid"]
