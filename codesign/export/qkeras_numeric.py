"""The constants of a QKeras export: dyadic values, half-up tie nudges, quantizers, stored kernels."""

from __future__ import annotations

from typing import Any

import numpy as np
from qkeras import quantized_bits, quantized_relu

from codesign.quant.ops.gemm import Conv, GemmOp
from codesign.quant.qir import QNode, QTensor


def constant_error(beta: Any, bias: Any, mult: Any, shift: Any, offset: Any) -> float:
    """Largest ``|beta - (bias*M + offset + tie_nudge)|`` of a float64 requant offset, computed exactly.

    ``bias * M`` carries the mantissa bits of both factors; past 53 bits float64 (and the C++
    double literal hls4ml writes) rounds it, which a rounding boundary can turn into 1 LSB.
    """
    from fractions import Fraction

    arrays = np.broadcast_arrays(np.asarray(beta, np.float64), np.asarray(bias, np.int64), np.asarray(mult, np.int64),
                                 np.asarray(shift, np.int64), np.asarray(offset, np.int64))
    worst = Fraction(0)
    for b, bi, mu, sh, off in zip(*(a.ravel() for a in arrays)):
        f = int(lattice_bits(int(mu), int(sh)))
        want = Fraction(int(bi) * int(mu), 1 << int(sh)) + int(off) + (Fraction(1, 1 << (f + 1)) if f else 0)
        worst = max(worst, abs(Fraction(float(b)) - want))
    return float(worst)


def dyadic_value(mult: Any, shift: Any) -> np.ndarray:
    """The real number(s) ``mult * 2^-shift`` in float64."""
    return np.asarray(mult, np.float64) * np.exp2(-np.asarray(shift, np.float64))


def lattice_bits(mult: Any, shift: Any) -> np.ndarray:
    """Fractional bits ``F`` of ``mult * 2^-shift`` in lowest terms (0 for a zero multiplier)."""
    m = np.atleast_1d(np.asarray(mult, np.int64))
    s = np.broadcast_to(np.asarray(shift, np.int64), m.shape)
    out = np.zeros(m.shape, np.int64)
    for i, (mi, si) in enumerate(zip(m.ravel(), s.ravel())):
        mi = int(mi)
        tz = (mi & -mi).bit_length() - 1 if mi else 0
        out.flat[i] = max(int(si) - tz, 0) if mi else 0
    return out.reshape(np.shape(mult)) if np.ndim(mult) else out[0]


def tie_nudge(mult: Any, shift: Any) -> np.ndarray:
    """``2^-(F+1)``: added before a QKeras rounding so that ties round half up, as the golden model.

    An integer times ``M = mult * 2^-shift`` lies on the lattice ``2^-F``. Half a lattice step
    moves exact ``.5`` ties above the boundary (``tf.round`` rounds ties to even) and moves
    no other lattice point across one; for small ``F`` (where ties actually occur, e.g.
    ``M = 1/128``) float32 holds the value and the nudge exactly. An integer multiplier
    (``F = 0``) makes no ties, and half a step would create them: its nudge is 0.
    """
    f = np.asarray(lattice_bits(mult, shift), np.float64)
    return np.where(f > 0, np.exp2(-(f + 1.0)), 0.0)


def grid_quantizer(t: QTensor, relu: bool = False) -> Any:
    """QKeras quantizer rounding code-valued inputs onto the integer range of ``t``.

    ``quantized_bits(b, b-1)`` computes ``clip(round(x), -2^(b-1), 2^(b-1)-1)``;
    ``quantized_bits(b, b, keep_negative=False)`` and ``quantized_relu(b, b)`` compute
    ``clip(round(x), 0, 2^b-1)``.
    """
    if t.signed:
        return quantized_bits(t.bits, t.bits - 1, keep_negative=True)
    if relu:
        return quantized_relu(t.bits, t.bits)
    return quantized_bits(t.bits, t.bits, keep_negative=False)


def weight_quantizer(w_bits: int, alpha: np.ndarray) -> Any:
    """Narrow-range ``quantized_bits`` whose output is ``alpha * code / 2^(w_bits-1)``."""
    # a (nested) list rather than an array: it survives the .h5 JSON config round trip
    return quantized_bits(w_bits, 0, symmetric=1, keep_negative=True, alpha=np.asarray(alpha, np.float64).tolist())


def gemm_multiplier(node: QNode) -> np.ndarray:
    """Per-output-channel requant multiplier ``M_c = s_x * w_scale_c / s_y`` (dyadic value)."""
    return dyadic_value(node.params["mult"], node.params["shift"])


def is_depthwise(op: GemmOp) -> bool:
    """A grouped conv with one input channel per group (Keras ``DepthwiseConv2D``)."""
    return isinstance(op, Conv) and op.groups > 1 and op.weight.shape[2] == 1


def stored_kernel(node: QNode) -> tuple[np.ndarray, np.ndarray]:
    """``(kernel, alpha)`` as the Keras layer stores them, in Keras kernel layout.

    Depthwise kernels go from IR ``[kh, kw, 1, cin*m]`` to Keras ``[kh, kw, cin, m]`` with
    the same channel order (IR output channel ``c*m + j`` is Keras ``(c, j)``).
    """
    op = node.op
    if not isinstance(op, GemmOp):
        raise TypeError(f"node {node.name!r} of kind {node.kind} has no kernel")
    codes = np.asarray(op.weight, np.float64)
    m = 2.0 ** (op.w_bits - 1)
    alpha = dyadic_value(op.mult, op.shift) * m
    if isinstance(op, Conv) and is_depthwise(op):
        kh, kw, _one, cout = codes.shape
        mult = cout // op.groups
        codes = codes.reshape(kh, kw, op.groups, mult)
        alpha = alpha.reshape(op.groups, mult)
    return codes / m, alpha


__all__ = ["constant_error", "dyadic_value", "gemm_multiplier", "grid_quantizer", "is_depthwise", "lattice_bits",
           "stored_kernel", "tie_nudge", "weight_quantizer"]
