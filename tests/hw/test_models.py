"""Golden functions of the data-movement cores and the engine-level performance claims."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.hw.cores.bram_bank import bram_bank_golden
from codesign.hw.cores.img2col import img2col_golden, out_size
from codesign.hw.cores.tiled_matmul import TiledMatmul, tiled_matmul_golden
from codesign.hw.packing import unpack_words
from codesign.hw.spec import make_spec

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("pad_top,pad", [(1, 1), (0, 1), (1, 0), (2, 1)])
def test_img2col_matches_direct_convolution(pad_top: int, pad: int) -> None:
    """GEMM of img2col rows with HWIO weights == a direct loop convolution (independent oracle),
    symmetric and asymmetric padding."""
    rng = np.random.default_rng(0)
    bits, h, w, c, k, stride, cout = 8, 7, 6, 5, 3, 2, 4
    image = rng.integers(-128, 128, size=(h, w, c))
    weights = rng.integers(-127, 128, size=(k, k, c, cout))  # HWIO
    epw = 64 // bits
    cw = -(-c // epw)
    oh, ow = out_size(h, k, stride, pad_top, 1), out_size(w, k, stride, pad)
    words = img2col_golden(image, k, k, stride, pad_top, pad, (oh, ow), bits, True)
    rows = unpack_words(words.view(np.uint64), bits, True, len(words) * epw).reshape(oh * ow, k, k, cw * epw)[..., :c]
    gemm = rows.reshape(oh * ow, -1) @ weights.reshape(-1, cout)  # K ordered (kh, kw, cin)
    direct = np.zeros((oh, ow, cout), dtype=np.int64)
    for oy in range(oh):
        for ox in range(ow):
            for i in range(k):
                for j in range(k):
                    y, x = oy * stride - pad_top + i, ox * stride - pad + j
                    if 0 <= y < h and 0 <= x < w:
                        direct[oy, ox] += image[y, x] @ weights[i, j]
    assert np.array_equal(gemm.reshape(oh, ow, cout), direct)


def test_tiled_matmul_beat_order() -> None:
    a = np.arange(6).reshape(3, 2)
    b = np.arange(10).reshape(2, 5)
    out = tiled_matmul_golden(a, b, lanes=4)  # 2 lane blocks x 3 rows
    c = a @ b
    assert out.shape == (6, 4)
    assert np.array_equal(out[1], c[1, :4]) and np.array_equal(out[3 + 2, :1], c[2, 4:]) and (out[3:, 1:] == 0).all()


def test_bram_bank_read_first_per_bank() -> None:
    ops = [
        [0b01, 5, 0x0102, 0, 0],  # bank 0 only
        [0b11, 5, 2**64 - 1, 1, 5],  # read sees the old words (read-first), then both banks written
        [0b00, 0, 0, 1, 5],
    ]
    out = bram_bank_golden(ops, 2, 8)
    assert out.tolist() == [[0x0102, 0], [-1, -1]]


@pytest.mark.parametrize("cin,cout", [(32, 64), (64, 128), (128, 128)])
def test_3x3_conv_tiles_reach_85_percent(cin: int, cout: int) -> None:
    """A 3x3 conv (K = 9*Cin split into <= 128 tiles) keeps the MAC tree >= 85 % busy."""
    for bits in (2, 3, 4, 5, 6, 8):
        core = TiledMatmul(make_spec("tiled_matmul", bits))
        k_total = 9 * cin
        macs = cycles = 0
        for n0 in range(0, cout, 128):
            for k0 in range(0, k_total, 128):
                n, k = min(128, cout - n0), min(128, k_total - k0)
                macs += 128 * n * k
                cycles += core.exp_cycles(m=128, n=n, k=k)
        util = macs / (core.spec.lanes * core.spec.tree * cycles)
        assert util >= 0.85, (bits, cin, cout, util)


def test_4bit_clearly_faster_than_8bit() -> None:
    c4 = TiledMatmul(make_spec("tiled_matmul", 4)).exp_cycles(m=128, n=128, k=128)
    c8 = TiledMatmul(make_spec("tiled_matmul", 8)).exp_cycles(m=128, n=128, k=128)
    assert c8 >= 1.9 * c4
