"""img2col: the overlay's feature-map buffer and address generator (hardware im2col).

The core takes a feature map as a stream of 64-bit channel words in ``(y, x, cw)`` order
(``CW`` words per pixel; the convolution's ``Cin`` fills whole words) into a circular buffer of
``IFM_DEPTH`` words (word ``i`` in slot ``i mod IFM_DEPTH``), and writes the GEMM rows -- for
every output pixel the ``KH*KW*CW`` words of its window in ``(kh, kw, cw)`` order, a zero word
for padding -- into a double-buffered row memory through a write port (``rows_*``: address
``{half, kb}``). Padding is exact and may be asymmetric (``PAD`` left, ``PAD_TOP`` top; beyond
the image at the bottom/right is padding too).

There is no divider or multiplier: the host computes the address steps
(:func:`img2col_geometry`, also used by the driver's descriptor), and the generator keeps every
address incrementally -- +1 inside a tap row, +``ROW_PITCH`` per tap row, +``X_STEP`` per
window, +``Y_STEP`` per output row.

Flow control (the overlay's receiver and feeder are its neighbours):

* ``s_axis_tready`` is a register: the next word's slot holds no word the current output row
  still needs;
* a row word is issued (stage 1: registered read of the buffer; stage 2: the row write) when
  the words it needs have arrived and its row half is free (``row_full`` from the consumer);
* ``row_set`` marks a half full. For ``KB > 1`` it is raised when the row's last word is
  *issued*, one cycle before that word is written: a consumer reading the row from word 0, one
  word per cycle, from the cycle after ``row_set`` never overtakes the writes. For ``KB = 1``
  it comes with the write.

The HLS view has the same ports and the same one-word-per-cycle schedule (II = 1, incremental
addresses, no ``/`` or ``%``); it polls ``row_full`` and writes the rows through an
``ap_memory`` port.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.hw.budget import IFM_DEPTH, ROW_DEPTH, bram36_for
from codesign.hw.cores.base import Core, CsimCase, Port, clog2
from codesign.hw.packing import pack_words
from codesign.quant.dyadic import qrange

K_MAX = 7  # the descriptor's 4-bit kernel fields; larger kernels take the host path
NIB_MAX = 15


def out_size(size: int, k: int, stride: int, pad_lo: int, pad_hi: int | None = None) -> int:
    """Output extent of a convolution window (``pad_hi`` defaults to ``pad_lo``)."""
    return (size + pad_lo + (pad_lo if pad_hi is None else pad_hi) - k) // stride + 1


@dataclass(frozen=True)
class Img2colGeometry:
    """Host-computed address steps of one hardware-img2col job (descriptor registers)."""

    ifm_words: int  # H * W * CW
    row_pitch: int  # words per image row: W * CW
    x_step: int  # per window: stride * CW
    y_step: int  # per output row: stride * ROW_PITCH
    addr0: int  # word address of the first tap (negative inside the top/left padding)
    floor0: int  # first word the first output row needs (unclamped)


def img2col_geometry(h: int, w: int, cw: int, stride: int, pad_top: int, pad_left: int) -> Img2colGeometry:
    """The address steps the generator adds (no run-time multiply in the hardware)."""
    row_pitch = w * cw
    floor0 = -pad_top * row_pitch
    return Img2colGeometry(h * w * cw, row_pitch, stride * cw, stride * row_pitch, floor0 - pad_left * cw, floor0)


def ifm_fits(h: int, w: int, cw: int, kh: int, stride: int, depth: int = IFM_DEPTH) -> bool:
    """The circular buffer holds the rows one output row's windows span plus the ones it skips."""
    return (kh + stride - 1) * w * cw <= depth


def img2col_golden(image: np.ndarray, kh: int, kw: int, stride: int, pad_top: int, pad_left: int,
                   out_hw: tuple[int, int], bits: int, signed: bool) -> np.ndarray:
    """Packed GEMM-row words ``[OH*OW*KH*KW*CW]`` (uint64 patterns in int64) of an ``[H, W, C]`` image."""
    h, w, c = image.shape
    epw = 64 // bits
    cw = -(-c // epw)
    oh, ow = out_hw
    pad_b = max(0, (oh - 1) * stride + kh - h - pad_top)
    pad_r = max(0, (ow - 1) * stride + kw - w - pad_left)
    padded = np.zeros((pad_top + h + pad_b, pad_left + w + pad_r, cw * epw), dtype=np.int64)
    padded[pad_top:pad_top + h, pad_left:pad_left + w, :c] = image
    words: list[int] = []
    for oy in range(oh):
        for ox in range(ow):
            win = padded[oy * stride:oy * stride + kh, ox * stride:ox * stride + kw]
            words += pack_words(win.ravel(), bits, signed)
    return np.array(words, dtype=np.uint64).view(np.int64)


# C-sim ABI config order (csim_run's cfg): the descriptor values the overlay passes
CFG_FIELDS = ("h", "w", "out_w", "cw", "kh", "kw", "stride", "pad", "pad_top", "m", "kb", "ifm_words",
              "row_pitch", "x_step", "y_step", "addr0", "floor0")


class Img2col(Core):
    """Circular feature-map buffer + incremental address generator writing GEMM rows."""

    name = "img2col"
    summary = "feature-map buffer + address generator: channel words in, GEMM rows into a row buffer"
    hls_top_template = "img2col.cpp.j2"
    hls_header_template = "img2col.h.j2"
    csim_template = "img2col_csim.cpp.j2"
    verilog_template = "img2col.v.j2"

    def params(self) -> dict[str, int]:
        return {"IFM_DEPTH": IFM_DEPTH, "IFM_AW": clog2(IFM_DEPTH), "ROW_DEPTH": ROW_DEPTH, "ROW_AW": clog2(ROW_DEPTH),
                "EPW": self.spec.elems_per_word, "K_MAX": K_MAX}

    def ports(self) -> list[Port]:
        p = self.params()
        cfg16 = ("cfg_h", "cfg_w", "cfg_out_w", "cfg_cw")
        cfg4 = ("cfg_kh", "cfg_kw", "cfg_stride", "cfg_pad", "cfg_pad_top")
        cfg32 = ("cfg_m", "cfg_kb", "cfg_ifm_words", "cfg_row_pitch", "cfg_x_step", "cfg_y_step", "cfg_addr0",
                 "cfg_floor0")
        return [
            Port("ap_clk", "in", 1, "clock"), Port("ap_rst_n", "in", 1, "reset"),
            Port("ap_start", "in", 1, "ctrl", "latch the cfg_* inputs and start a job"),
            Port("ap_done", "out", 1, "ctrl", "the job's last row word is written"),
            Port("ap_idle", "out", 1, "ctrl"), Port("ap_ready", "out", 1, "ctrl"),
            Port("en", "in", 1, "wire", "row words may be issued (the overlay: the job's weights are in)"),
            *[Port(n, "in", 16, "wire") for n in cfg16],
            *[Port(n, "in", 4, "wire") for n in cfg4],
            *[Port(n, "in", 32, "wire", "two's complement" if n in ("cfg_addr0", "cfg_floor0") else "")
              for n in cfg32],
            Port("s_axis_tdata", "in", 64, "axis", "feature-map words in (y, x, cw) order"),
            Port("s_axis_tvalid", "in", 1, "axis"), Port("s_axis_tready", "out", 1, "axis"),
            Port("s_axis_tlast", "in", 1, "axis", "unused: the job length comes from cfg_ifm_words"),
            Port("ifm_last", "out", 1, "wire", "the word offered now is the feature map's last"),
            Port("row_full", "in", 2, "wire", "bit h: the consumer still reads row half h"),
            Port("row_set", "out", 2, "wire", "bit h: row half h is (about to be) complete"),
            Port("rows_address0", "out", p["ROW_AW"] + 1, "wire", "row memory write port (ap_memory): {half, kb}"),
            Port("rows_ce0", "out", 1, "wire"), Port("rows_we0", "out", 1, "wire"), Port("rows_d0", "out", 64, "wire"),
            Port("ifm_rd", "out", 1, "wire", "an in-image buffer read this cycle (activity counter)"),
        ]

    def exp_cycles(self, h: int, w: int, cw: int, kh: int, kw: int, stride: int, pad: int, **_: int) -> int:
        """One row word per cycle once the words it needs are in: the rows' words, plus the
        feature-map words that must arrive before the first row can start (stream at one word
        per cycle), plus the two-stage pipeline."""
        oh, ow = out_size(h, kh, stride, pad), out_size(w, kw, stride, pad)
        lead = max(0, kh - pad) * w * cw  # rows the first window needs (they arrive one word per cycle)
        return oh * ow * kh * kw * cw + max(0, lead - (kw * cw)) + 2

    def reference_workload(self) -> dict[str, int]:
        # A 3x3, stride-1, pad-1 conv over 16x16x(2 words) (the 128-row GEMM tile is 8 output rows).
        return {"h": 16, "w": 16, "cw": 2, "kh": 3, "kw": 3, "stride": 1, "pad": 1}

    def resources(self) -> dict[str, int]:
        return {"lut": 600, "dsp": 0, "bram36": bram36_for(64, IFM_DEPTH)}

    def make_case(self, rng: np.random.Generator, n_vectors: int, extremes: bool = False,
                  geometry: dict[str, int] | None = None) -> CsimCase:
        """A random image and window (fitting the buffer) whose output has about ``n_vectors`` pixels."""
        s = self.spec
        epw = s.elems_per_word
        if geometry is None:
            while True:
                k = int(rng.choice([1, 3, 5, 7]))
                kh, kw = k, int(rng.choice([1, k]))
                stride = int(rng.integers(1, 3))
                pad = int(rng.integers(0, (k - 1) // 2 + 1))
                pad_top = int(rng.integers(0, (kh - 1) // 2 + 1))
                cw = int(rng.integers(1, 4))
                side = int(np.clip(np.sqrt(max(n_vectors, 1)) * stride, max(kh, kw), 24))
                h, w = side, int(rng.integers(max(kw, 2), 2 * side + 1))
                if ifm_fits(h, w, cw, kh, stride) and kh * kw * cw <= ROW_DEPTH:
                    break
        else:
            h, w, kh, kw, stride, pad = (geometry[x] for x in ("h", "w", "kh", "kw", "stride", "pad"))
            pad_top, cw = geometry.get("pad_top", pad), geometry["cw"]
        c = cw * epw
        signed = bool(rng.integers(0, 2))
        lo, hi = qrange(s.bits, signed)
        image = rng.integers(lo, hi + 1, size=(h, w, c))
        if extremes:
            image = np.where(rng.random(image.shape) < 0.5, rng.choice([lo, hi], size=image.shape), image)
        oh, ow = out_size(h, kh, stride, pad_top, pad), out_size(w, kw, stride, pad)
        geo = img2col_geometry(h, w, cw, stride, pad_top, pad)
        cfg = {"h": h, "w": w, "out_w": ow, "cw": cw, "kh": kh, "kw": kw, "stride": stride, "pad": pad,
               "pad_top": pad_top, "m": oh * ow, "kb": kh * kw * cw, "ifm_words": geo.ifm_words,
               "row_pitch": geo.row_pitch, "x_step": geo.x_step, "y_step": geo.y_step, "addr0": geo.addr0,
               "floor0": geo.floor0}
        in_words = np.array(pack_words(image.ravel(), s.bits, signed), dtype=np.uint64).view(np.int64)
        expected = img2col_golden(image, kh, kw, stride, pad_top, pad, (oh, ow), s.bits, signed)
        return CsimCase(np.array([cfg[f] for f in CFG_FIELDS], dtype=np.int64), in_words, expected,
                        {"cfg": cfg, "image": image, "signed": signed})
