"""The integer arithmetic of codesign: ranges, dyadic requantization and post-processing.

This module *defines* the semantics that the NumPy golden model, the HLS C++ cores and the
Verilog cores must reproduce bit for bit. Keep it small, explicit and free of floats at run
time (floats appear only when parameters are derived at quantization time).

Conventions
-----------
* Activations: per-tensor scale, zero-point 0. Signed range ``[-2^(b-1), 2^(b-1)-1]``,
  unsigned range ``[0, 2^b-1]``.
* Weights: per-output-channel scale, symmetric *narrow* range ``[-(2^(b-1)-1), 2^(b-1)-1]``
  (so that ``-w`` is always representable). The hardware MAC still accepts the full range.
* Accumulators and biases are int32. ``acc + bias`` saturates to int32.
* A real multiplier ``m > 0`` is stored as ``(M, shift)`` with ``M`` an int32 in
  ``[2^30, 2^31)`` and ``m ~= M * 2^-shift``; ``0 <= shift <= 62``.
* Requantization: ``(x * M + 2^(shift-1)) >> shift`` computed in int64 with an arithmetic
  shift, i.e. round-half-up (towards +inf at exact halves). ``shift == 0`` adds nothing.
  ``|x| < 2^31`` and ``M < 2^31`` keep the product and rounding term inside int64.
* Activation (after requant, at the output scale ``s``):
  - ``NONE``: identity; ``RELU``: ``max(q, 0)``; ``RELU6``: ``clamp(q, 0, six)``
    with ``six = round(6/s)``;
  - ``HSWISH``: ``qc = clamp(q, -2^15, 2^15-1)``, ``r = clamp(qc + three, 0, six)``,
    ``y = requant(qc * r, M_hs, S_hs)`` where ``M_hs * 2^-S_hs ~= 1/six`` and
    ``six == 2*three``. The pre-clamp to int16 changes nothing after saturation as long as
    ``three <= 2^15`` (values beyond are either 0 or saturate), and bounds ``qc * r`` to 2^30.
  Then the result saturates to the output range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from codesign.errors import BitWidthError

MIN_BITS = 2
MAX_BITS = 8
INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
MULT_BITS = 31  # M in [2^30, 2^31)
MAX_SHIFT = 62
HSWISH_CLAMP = 1 << 15


class Act(IntEnum):
    """Activation codes shared by the golden model, HLS, Verilog and the register map."""

    NONE = 0
    RELU = 1
    RELU6 = 2
    HSWISH = 3


def check_bits(bits: int, what: str = "bits") -> int:
    """Return ``bits`` if it is an int in 2..8, else raise a BitWidthError."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise BitWidthError(f"{what} must be an integer in {MIN_BITS}..{MAX_BITS}, got {bits!r}.")
    if not MIN_BITS <= int(bits) <= MAX_BITS:
        raise BitWidthError(f"{what}={bits} is outside the supported range {MIN_BITS}..{MAX_BITS}.")
    return int(bits)


def parse_bits_list(text: str) -> list[int]:
    """Parse a list such as ``"4,8"`` into sorted unique bit-widths, validating each."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p for p in parts):
        raise BitWidthError(f"malformed bit list {text!r}: expected comma-separated integers such as 4,8.")
    out = []
    for p in parts:
        try:
            value = int(p)
        except ValueError:
            raise BitWidthError(f"malformed bit list {text!r}: {p!r} is not an integer.") from None
        out.append(check_bits(value))
    return sorted(set(out))


def qrange(bits: int, signed: bool, narrow: bool = False) -> tuple[int, int]:
    """Integer range of a ``bits``-wide value; ``narrow`` drops the most negative code."""
    if signed:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return (lo + 1 if narrow else lo), hi
    return 0, (1 << bits) - 1


def code_dtype(bits: int, signed: bool = True) -> type[np.signedinteger]:
    """The narrowest NumPy signed integer type that holds every ``bits``-wide code.

    Stored weight codes use it: ResNet-18's 8-bit codes take 12 MB as int8 instead of 94 MB
    as int64, which matters on a 512 MB board; every consumer widens them before arithmetic.
    """
    lo, hi = qrange(bits, signed)
    return next(t for t in (np.int8, np.int16, np.int32, np.int64)
                if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max)


def round_half_up(x: np.ndarray | float) -> np.ndarray:
    """Float rounding with the same tie rule as the integer shifter (towards +inf)."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def quantize(x: np.ndarray, scale: float | np.ndarray, bits: int, signed: bool, narrow: bool = False) -> np.ndarray:
    """Quantize real values to int64 codes: ``clamp(round_half_up(x / scale))``."""
    lo, hi = qrange(bits, signed, narrow)
    return np.clip(round_half_up(np.asarray(x, np.float64) / scale), lo, hi).astype(np.int64)


@dataclass(frozen=True)
class Dyadic:
    """A positive real multiplier ``M * 2^-shift`` with an int32 mantissa."""

    mult: int
    shift: int

    @property
    def value(self) -> float:
        """The real number this dyadic represents."""
        return self.mult * 2.0 ** (-self.shift)


def quantize_multiplier(real: float) -> Dyadic:
    """Represent ``real >= 0`` as ``M * 2^-shift`` with ``M`` in ``[2^30, 2^31)``.

    Tiny multipliers saturate at ``shift = 62`` (losing mantissa bits); multipliers of
    ``2^31`` or more cannot be represented and raise ``ValueError``.
    """
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"multiplier must be finite and >= 0, got {real}")
    if real == 0.0:
        return Dyadic(0, 0)
    mant, exp = math.frexp(real)  # real = mant * 2^exp, mant in [0.5, 1)
    mult = round(mant * (1 << MULT_BITS))
    shift = MULT_BITS - exp
    if mult == (1 << MULT_BITS):  # rounding overflowed the mantissa
        mult //= 2
        shift -= 1
    if shift < 0:
        raise ValueError(f"multiplier {real} too large for an int32 mantissa with shift >= 0")
    if shift > MAX_SHIFT:
        mult = round(real * 2.0**MAX_SHIFT)
        shift = MAX_SHIFT
    return Dyadic(mult, shift)


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of :func:`quantize_multiplier`; returns int64 arrays ``(mult, shift)``."""
    pairs = [quantize_multiplier(float(r)) for r in np.ravel(reals)]
    mult = np.array([p.mult for p in pairs], dtype=np.int64).reshape(np.shape(reals))
    shift = np.array([p.shift for p in pairs], dtype=np.int64).reshape(np.shape(reals))
    return mult, shift


def saturate(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Clamp integer values to ``[lo, hi]`` (int64 result)."""
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def requantize(x: np.ndarray, mult: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """``(x * M + 2^(shift-1)) >> shift`` in int64; ``mult``/``shift`` broadcast (per channel)."""
    x = np.asarray(x, dtype=np.int64)
    mult = np.asarray(mult, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    prod = x * mult
    rnd = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)
    return np.right_shift(prod + rnd, shift)


@dataclass(frozen=True)
class ActParams:
    """Integer constants of the fused activation, derived from the output scale."""

    act: Act = Act.NONE
    six: int = 0
    three: int = 0
    hs_mult: int = 0
    hs_shift: int = 0

    @classmethod
    def for_scale(cls, act: Act, out_scale: float) -> ActParams:
        """Derive the integer activation constants for an output scale."""
        act = Act(act)
        if act in (Act.NONE, Act.RELU):
            return cls(act)
        three = int(round_half_up(3.0 / out_scale))
        if three > HSWISH_CLAMP:
            raise ValueError(f"output scale {out_scale} too small for integer ReLU6/h-swish constants")
        six = 2 * three
        if act == Act.RELU6:
            return cls(act, six=six, three=three)
        d = quantize_multiplier(1.0 / six)
        return cls(act, six=six, three=three, hs_mult=d.mult, hs_shift=d.shift)


def apply_activation(q: np.ndarray, p: ActParams) -> np.ndarray:
    """Apply the integer activation to requantized values ``q`` (before output saturation)."""
    q = np.asarray(q, dtype=np.int64)
    if p.act == Act.NONE:
        return q
    if p.act == Act.RELU:
        return np.maximum(q, 0)
    if p.act == Act.RELU6:
        return np.clip(q, 0, p.six)
    qc = np.clip(q, -HSWISH_CLAMP, HSWISH_CLAMP - 1)
    r = np.clip(qc + p.three, 0, p.six)
    return requantize(qc * r, p.hs_mult, p.hs_shift)


def postprocess(
    acc: np.ndarray,
    bias: np.ndarray,
    mult: np.ndarray,
    shift: np.ndarray,
    act: ActParams,
    out_bits: int,
    out_signed: bool,
) -> np.ndarray:
    """Bias + dyadic requant + activation + clamp: the golden post-process stage.

    ``acc`` is int32-valued with channels on the last axis; ``bias``, ``mult`` and ``shift``
    are per channel. Returns int64 codes in the output range.
    """
    s = saturate(np.asarray(acc, np.int64) + np.asarray(bias, np.int64), INT32_MIN, INT32_MAX)
    q = requantize(s, mult, shift)
    y = apply_activation(q, act)
    lo, hi = qrange(out_bits, out_signed)
    return saturate(y, lo, hi)
