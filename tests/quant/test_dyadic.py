"""The integer arithmetic contract, checked against exact rational arithmetic (Fractions)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from codesign.errors import BitWidthError
from codesign.quant.dyadic import (
    HSWISH_CLAMP,
    Act,
    ActParams,
    check_bits,
    code_dtype,
    parse_bits_list,
    postprocess,
    qrange,
    quantize,
    quantize_multiplier,
    requantize,
)

pytestmark = pytest.mark.unit


def frac_round_half_up(x: Fraction) -> int:
    """floor(x + 1/2) on an exact rational."""
    return math.floor(x + Fraction(1, 2))


def test_qrange_all_widths() -> None:
    for b in range(2, 9):
        assert qrange(b, True) == (-(2 ** (b - 1)), 2 ** (b - 1) - 1)
        assert qrange(b, True, narrow=True) == (-(2 ** (b - 1)) + 1, 2 ** (b - 1) - 1)
        assert qrange(b, False) == (0, 2**b - 1)


@pytest.mark.parametrize("real", [1e-9, 3.3e-5, 0.0123, 0.5, 0.999999, 1.0, 1.5, 123.456, 2.0**20])
def test_quantize_multiplier_precision(real: float) -> None:
    d = quantize_multiplier(real)
    if d.shift < 62:
        assert 2**30 <= d.mult < 2**31
    assert 0 <= d.shift <= 62
    assert abs(d.value - real) / real <= 2.0**-30


def test_requantize_matches_exact_rounding() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(-(2**31), 2**31, size=4000, dtype=np.int64)
    x[:4] = [-(2**31), 2**31 - 1, 0, -1]
    reals = rng.uniform(1e-6, 4.0, size=4000)
    for i in range(len(x)):
        d = quantize_multiplier(float(reals[i]))
        got = int(requantize(x[i], d.mult, d.shift))
        want = frac_round_half_up(Fraction(int(x[i]) * d.mult, 2**d.shift))
        assert got == want, (x[i], d)


def test_requantize_ties_round_up() -> None:
    # x * M / 2^s exactly halfway: -2.5 -> -2, 2.5 -> 3, -0.5 -> 0
    assert requantize(np.array([-5, 5, -1]), 1 << 30, 31).tolist() == [-2, 3, 0]


def test_requantize_per_channel_broadcast() -> None:
    x = np.arange(-8, 8).reshape(2, 2, 4)
    mult = np.array([1 << 30, 1 << 29, 3 << 28, 1 << 30])
    shift = np.array([31, 31, 32, 30])
    got = requantize(x, mult, shift)
    for idx in np.ndindex(x.shape):
        c = idx[-1]
        assert got[idx] == frac_round_half_up(Fraction(int(x[idx]) * int(mult[c]), 2 ** int(shift[c])))


def _ref_postprocess(acc: int, bias: int, m: int, s: int, p: ActParams, bits: int, signed: bool) -> int:
    """Scalar reference written from the docstring of dyadic.py, in Python ints."""
    v = max(-(2**31), min(2**31 - 1, acc + bias))
    q = frac_round_half_up(Fraction(v * m, 2**s))
    if p.act == Act.RELU:
        q = max(q, 0)
    elif p.act == Act.RELU6:
        q = min(max(q, 0), p.six)
    elif p.act == Act.HSWISH:
        qc = min(max(q, -HSWISH_CLAMP), HSWISH_CLAMP - 1)
        r = min(max(qc + p.three, 0), p.six)
        q = frac_round_half_up(Fraction(qc * r * p.hs_mult, 2**p.hs_shift))
    lo, hi = qrange(bits, signed)
    return min(max(q, lo), hi)


@pytest.mark.parametrize("act", list(Act))
@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
def test_postprocess_matches_scalar_reference(act: Act, bits: int) -> None:
    rng = np.random.default_rng(bits * 10 + int(act))
    n, ch = 64, 8
    acc = rng.integers(-(2**20), 2**20, size=(n, ch))
    acc[0, 0], acc[1, 0] = -(2**31), 2**31 - 1  # extremes saturate through acc + bias
    bias = rng.integers(-(2**16), 2**16, size=ch)
    bias[0] = -(2**31)
    out_scale = 0.05
    reals = rng.uniform(1e-5, 2e-3, size=ch)
    pairs = [quantize_multiplier(r) for r in reals]
    mult = np.array([p.mult for p in pairs])
    shift = np.array([p.shift for p in pairs])
    p = ActParams.for_scale(act, out_scale)
    signed = act in (Act.NONE, Act.HSWISH)
    got = postprocess(acc, bias, mult, shift, p, bits, signed)
    for i in range(n):
        for c in range(ch):
            want = _ref_postprocess(int(acc[i, c]), int(bias[c]), int(mult[c]), int(shift[c]), p, bits, signed)
            assert got[i, c] == want


def test_hswish_constants_track_the_real_function() -> None:
    s = 0.02
    p = ActParams.for_scale(Act.HSWISH, s)
    q = np.arange(-400, 400)
    y = postprocess(q, 0, 1 << 30, 30, p, 8, True)  # identity requant
    real = q * s * np.clip(q * s + 3, 0, 6) / 6
    want = np.clip(np.floor(real / s + 0.5), -128, 127)
    assert np.abs(y - want).max() <= 1


def test_quantize_rounds_and_clamps() -> None:
    x = np.array([-10.0, -0.25, 0.25, 0.75, 10.0])
    assert quantize(x, 0.5, 4, True).tolist() == [-8, 0, 1, 2, 7]
    assert quantize(x, 0.5, 4, True, narrow=True).tolist() == [-7, 0, 1, 2, 7]
    assert quantize(x, 0.5, 4, False).tolist() == [0, 0, 1, 2, 15]


@pytest.mark.parametrize("bad", [1, 9, 0, -3, 2.5, "4", True])
def test_check_bits_rejects(bad: object) -> None:
    with pytest.raises(BitWidthError):
        check_bits(bad)  # type: ignore[arg-type]


def test_parse_bits_list() -> None:
    assert parse_bits_list("8,4, 4") == [4, 8]
    for bad in ("", "4,,8", "4;8", "a,4", "1,4", "4,9"):
        with pytest.raises(BitWidthError):
            parse_bits_list(bad)


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("bits", range(2, 9))
def test_code_dtype_is_the_narrowest_that_holds_the_range(bits: int, signed: bool) -> None:
    lo, hi = qrange(bits, signed)
    codes = np.arange(lo, hi + 1)
    t = code_dtype(bits, signed)
    assert np.array_equal(codes.astype(t), codes)
    narrower = {np.int16: np.int8, np.int32: np.int16, np.int64: np.int32}.get(t)
    assert narrower is None or not np.array_equal(codes.astype(narrower), codes)
