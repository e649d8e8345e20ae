"""Packing of narrow integers into 64-bit words."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.hw.packing import join_lanes, pack64, pack_words, split_lanes, unpack64, unpack_words
from codesign.quant.dyadic import qrange

pytestmark = pytest.mark.unit


def test_known_layout() -> None:
    # element 0 in the LSBs, two's complement, unused top bits zero
    assert pack_words(np.array([1, -1]), 4, True) == [0xF1]
    assert pack_words(np.array([3, 2, 1]), 2, False) == [0b011011]
    words = pack_words(np.arange(22) % 4, 3, False)  # 21 per word, the 22nd spills over
    assert len(words) == 2 and words[0] >> 63 == 0 and words[1] == 21 % 4


@pytest.mark.parametrize("bits", range(2, 9))
@pytest.mark.parametrize("signed", [True, False])
def test_roundtrip_and_vector_form_agree(bits: int, signed: bool) -> None:
    rng = np.random.default_rng(bits)
    lo, hi = qrange(bits, signed)
    vals = rng.integers(lo, hi + 1, size=301)
    words = pack_words(vals, bits, signed)
    assert len(words) == -(-301 // (64 // bits))
    assert all(0 <= w < 2**64 for w in words)
    assert np.array_equal(np.array(words, dtype=np.uint64), pack64(vals, bits, signed))
    assert np.array_equal(unpack_words(words, bits, signed, 301), vals)
    assert np.array_equal(unpack64(pack64(vals, bits, signed), bits, signed, 301), vals)
    # independent oracle: bit string concatenation
    per = 64 // bits
    for i, w in enumerate(words[:3]):
        chunk = vals[i * per:(i + 1) * per]
        text = "".join(format(int(v) & ((1 << bits) - 1), f"0{bits}b") for v in chunk[::-1])
        assert w == int(text, 2)


def test_out_of_range_rejected() -> None:
    with pytest.raises(ValueError):
        pack_words(np.array([8]), 4, True)
    with pytest.raises(ValueError):
        pack64(np.array([-1]), 4, False)


def test_lanes_roundtrip() -> None:
    vals = np.array([-(2**31), 2**31 - 1, 0, -1])
    assert np.array_equal(split_lanes(join_lanes(vals, 32), 32, 4, True), vals)
