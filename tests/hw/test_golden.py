"""Golden functions against brute-force oracles written independently here."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.hw.cores.mac_tree import mac_tree_golden
from codesign.hw.cores.postproc import postproc_golden
from codesign.quant.dyadic import Act, ActParams

pytestmark = pytest.mark.unit


def test_mac_tree_matches_loops() -> None:
    rng = np.random.default_rng(0)
    beats = np.array([1, 3, 2])
    act = rng.integers(-8, 8, size=(6, 5))
    wgt = rng.integers(-8, 8, size=(6, 3, 5))
    got = mac_tree_golden(act, wgt, beats)
    start = 0
    for g, nb in enumerate(beats):
        for lane in range(3):
            ref = sum(int(act[b, t]) * int(wgt[b, lane, t]) for b in range(start, start + nb) for t in range(5))
            assert got[g, lane] == ref
        start += nb


def test_mac_tree_most_negative_squared() -> None:
    act = np.full((1, 8), -128)
    wgt = np.full((1, 2, 8), -128)
    assert (mac_tree_golden(act, wgt, np.array([1])) == 8 * 16384).all()


def test_postproc_matches_scalar_oracle() -> None:
    """Round-half-up requant and clamps, computed with Python ints one element at a time."""
    rng = np.random.default_rng(1)
    acc = rng.integers(-(1 << 20), 1 << 20, size=(50, 4))
    acc[0] = [2**31 - 1, -(2**31), 0, 5]
    bias = rng.integers(-1000, 1000, size=8)
    bias[0] = 2**31 - 1
    mult = rng.integers(2**30, 2**31, size=8)
    shift = rng.integers(20, 40, size=8)
    ch = rng.integers(0, 2, size=50) * 4
    act_p = ActParams.for_scale(Act.RELU6, 0.1)
    got = postproc_golden(acc, ch, bias, mult, shift, act_p, 4, False)
    for i in range(50):
        for p in range(4):
            c = ch[i] + p
            s = max(-(2**31), min(2**31 - 1, int(acc[i, p]) + int(bias[c])))
            prod = s * int(mult[c]) + (1 << (int(shift[c]) - 1))
            q = prod >> int(shift[c])  # Python >> is floor: round half up overall
            y = min(max(q, 0), act_p.six)
            assert got[i, p] == min(max(y, 0), 15)
