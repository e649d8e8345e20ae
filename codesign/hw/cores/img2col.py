"""img2col: a line buffer that turns an NHWC image into GEMM rows (K x K window, stride, pad).

The core moves 64-bit words, each holding ``64/bits`` channels of one pixel (a pixel is
``CW = ceil(C / (64/bits))`` words; channels are zero-padded to whole words, and the weights
are padded the same way). Input words arrive in (y, x, cw) order. For every output pixel it
emits ``KH*KW*CW`` words in (kh, kw, cw) order -- the lead's K ordering (kh, kw, cin) -- with
zero words for padding. A ``ROWS``-row circular line buffer (row ``y`` in slot ``y mod ROWS``)
holds the rows the current output row needs; input rows are read on demand and the rows no
output needs are drained at the end.

Schedule (both HLS and RTL): read phase and emit phase alternate per output row, one word per
cycle each, so ``cycles = H*W*CW + OH*OW*KH*KW*CW + OH + 1`` (one turn-around per row, one
to finish).
"""

from __future__ import annotations

import numpy as np

from codesign.hw.budget import bram36_for
from codesign.hw.cores.base import Core, CsimCase, Port, clog2
from codesign.hw.packing import pack_words
from codesign.quant.dyadic import qrange

ROWS = 8  # line-buffer rows (power of two >= the largest kernel)
K_MAX = 7
W_MAX = 64  # widest image row the line buffer holds
C_MAX = 64  # most channels per pixel


def out_size(size: int, k: int, stride: int, pad: int) -> int:
    """Output extent of a convolution window."""
    return (size + 2 * pad - k) // stride + 1


def img2col_golden(image: np.ndarray, kh: int, kw: int, stride: int, pad: int, bits: int, signed: bool) -> np.ndarray:
    """Packed words of the GEMM rows: [OH*OW*KH*KW*CW] as uint64 bit patterns (in int64)."""
    h, w, c = image.shape
    epw = 64 // bits
    cw = -(-c // epw)
    padded = np.zeros((h + 2 * pad, w + 2 * pad, cw * epw), dtype=np.int64)
    padded[pad:pad + h, pad:pad + w, :c] = image
    oh, ow = out_size(h, kh, stride, pad), out_size(w, kw, stride, pad)
    words = []
    for oy in range(oh):
        for ox in range(ow):
            for i in range(kh):
                for j in range(kw):
                    px = padded[oy * stride + i, ox * stride + j]
                    words += pack_words(px, bits, signed)
    return np.array(words, dtype=np.uint64).view(np.int64)


class Img2col(Core):
    """Line-buffer img2col feeding the activation bank."""

    name = "img2col"
    summary = "line buffer: K x K window, stride, zero padding, NHWC words in, GEMM rows out"
    hls_top_template = "img2col.cpp.j2"
    hls_header_template = "img2col.h.j2"
    csim_template = "img2col_csim.cpp.j2"
    verilog_template = "img2col.v.j2"

    def params(self) -> dict[str, int]:
        s = self.spec
        cw_max = -(-C_MAX // s.elems_per_word)
        return {"BITS": s.bits, "EPW": s.elems_per_word, "ROWS": ROWS, "W_MAX": W_MAX, "CW_MAX": cw_max,
                "K_MAX": K_MAX, "X_W": clog2(W_MAX), "CW_W": max(1, clog2(cw_max)), "ROW_W": clog2(ROWS)}

    def ports(self) -> list[Port]:
        return [
            Port("ap_clk", "in", 1, "clock"), Port("ap_rst_n", "in", 1, "reset"),
            Port("ap_start", "in", 1, "ctrl"), Port("ap_done", "out", 1, "ctrl"), Port("ap_idle", "out", 1, "ctrl"),
            Port("cfg_h", "in", 8, "ctrl"), Port("cfg_w", "in", 8, "ctrl"), Port("cfg_cw", "in", 8, "ctrl",
                                                                               "words per pixel"),
            Port("cfg_kh", "in", 4, "ctrl"), Port("cfg_kw", "in", 4, "ctrl"), Port("cfg_stride", "in", 4, "ctrl"),
            Port("cfg_pad", "in", 4, "ctrl"),
            Port("s_axis_tdata", "in", 64, "axis", "pixel words in (y, x, cw) order"),
            Port("s_axis_tvalid", "in", 1, "axis"), Port("s_axis_tready", "out", 1, "axis"),
            Port("m_axis_tdata", "out", 64, "axis", "GEMM-row words in (oy, ox, kh, kw, cw) order"),
            Port("m_axis_tvalid", "out", 1, "axis"), Port("m_axis_tready", "in", 1, "axis"),
            Port("m_axis_tlast", "out", 1, "axis", "last word of an output pixel"),
            Port("stat_busy_cycles", "out", 64, "wire"),
        ]

    def exp_cycles(self, h: int, w: int, cw: int, kh: int, kw: int, stride: int, pad: int, **_: int) -> int:
        """Read and emit one word per cycle, one turn-around cycle per output row and one to finish."""
        oh, ow = out_size(h, kh, stride, pad), out_size(w, kw, stride, pad)
        return h * w * cw + oh * ow * kh * kw * cw + oh + 1

    def reference_workload(self) -> dict[str, int]:
        # A 3x3, stride-1, pad-1 conv over 16x16x32 (the 128-row GEMM tile is 8 such output rows).
        return {"h": 16, "w": 16, "cw": -(-32 // self.spec.elems_per_word), "kh": 3, "kw": 3, "stride": 1, "pad": 1}

    def resources(self) -> dict[str, int]:
        p = self.params()
        return {"lut": 400, "dsp": 0, "bram36": bram36_for(64, ROWS * W_MAX * p["CW_MAX"])}

    def make_case(self, rng: np.random.Generator, n_vectors: int, extremes: bool = False,
                  geometry: dict[str, int] | None = None) -> CsimCase:
        """A random image and window whose output has about ``n_vectors`` pixels."""
        s = self.spec
        if geometry is None:
            k = int(rng.choice([1, 3, 5]))
            kh, kw = k, int(rng.choice([1, k]))
            stride = int(rng.integers(1, 3))
            pad = int(rng.integers(0, (k - 1) // 2 + 1))
            side = int(np.clip(np.sqrt(n_vectors) * stride, max(kh, kw), 20))
            h, w = side, int(np.clip(-(-n_vectors // max(1, out_size(side, kh, stride, pad))) * stride, kw, W_MAX))
            c = int(rng.integers(1, 2 * s.elems_per_word + 1))
        else:
            h, w, kh, kw, stride, pad = (geometry[x] for x in ("h", "w", "kh", "kw", "stride", "pad"))
            c = geometry["cw"] * s.elems_per_word
        signed = bool(rng.integers(0, 2))
        lo, hi = qrange(s.bits, signed)
        image = rng.integers(lo, hi + 1, size=(h, w, c))
        if extremes:
            image = np.where(rng.random(image.shape) < 0.5, rng.choice([lo, hi], size=image.shape), image)
        cw = -(-c // s.elems_per_word)
        padded = np.zeros((h, w, cw * s.elems_per_word), dtype=np.int64)
        padded[:, :, :c] = image
        in_words = np.array(pack_words(padded.ravel(), s.bits, signed), dtype=np.uint64).view(np.int64)
        expected = img2col_golden(image, kh, kw, stride, pad, s.bits, signed)
        cfg = np.array([h, w, cw, kh, kw, stride, pad], dtype=np.int64)
        geo = {"h": h, "w": w, "cw": cw, "kh": kh, "kw": kw, "stride": stride, "pad": pad}
        return CsimCase(cfg, in_words, expected, {"geometry": geo, "image": image, "signed": signed})
