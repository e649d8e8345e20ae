"""postproc: bias + dyadic requant + ReLU/ReLU6/h-swish + clamp, ``post_lanes`` per cycle.

The arithmetic is :func:`codesign.quant.dyadic.postprocess`, verbatim: ``acc + bias``
saturates to int32, ``(s*M + 2^(shift-1)) >> shift`` rounds half up, the activation codes are
:class:`codesign.quant.dyadic.Act`, and the result is clamped to the run-time output format
(``out_bits`` 2..8, signed or unsigned). Per-channel ``bias/mult/shift`` live in a parameter
memory written through a narrow port (the overlay's PP_* register window); each input beat
carries ``post_lanes`` accumulators of consecutive channels starting at ``tuser``.
"""

from __future__ import annotations

import numpy as np

from codesign.hw.cores.base import Core, CsimCase, Port, clog2
from codesign.hw.resources import postproc as postproc_resources
from codesign.quant.dyadic import (
    HSWISH_CLAMP,
    INT32_MAX,
    INT32_MIN,
    MAX_BITS,
    Act,
    ActParams,
    postprocess,
    quantize_multipliers,
)

MAX_CHANNELS = 1024  # parameter memory depth (output channels of one layer)
OUT_LANE_BITS = MAX_BITS  # every output lane is 8 bits wide; out_bits is a run-time choice
PIPELINE_STAGES = 22  # parameter read, saturate, requant (7), activation (3), h-swish product (2), h-swish requant (7), clamp
REQUANT_BITS = 18  # requantized values are saturated to 18 bits (changes no result: see postproc.v.j2)


def postproc_golden(acc: np.ndarray, ch_base: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray,
                    act: ActParams, out_bits: int, out_signed: bool) -> np.ndarray:
    """Golden post-process of beats ``acc`` [n, lanes] whose lane ``p`` is channel ``ch_base+p``."""
    acc = np.asarray(acc, np.int64)
    ch = np.asarray(ch_base, np.int64)[:, None] + np.arange(acc.shape[1])[None, :]
    return postprocess(acc, bias[ch], mult[ch], shift[ch], act, out_bits, out_signed)


class Postproc(Core):
    """The post-process unit shared by the GEMM engines."""

    name = "postproc"
    summary = "bias + dyadic requant (round-half-up) + ReLU/ReLU6/h-swish + clamp"
    hls_top_template = "postproc.cpp.j2"
    hls_header_template = "postproc.h.j2"
    csim_template = "postproc_csim.cpp.j2"
    verilog_template = "postproc.v.j2"

    def params(self) -> dict[str, int]:
        s = self.spec
        return {
            "LANES": s.post_lanes, "ACC_BITS": s.acc_bits, "OUT_W": OUT_LANE_BITS, "DEPTH": MAX_CHANNELS,
            "CH_W": clog2(MAX_CHANNELS), "LATENCY": PIPELINE_STAGES, "DEFAULT_OUT_BITS": s.bits,
            "Q_W": REQUANT_BITS, "HS_CLAMP": HSWISH_CLAMP,
        }

    def ports(self) -> list[Port]:
        p = self.params()
        return [
            Port("ap_clk", "in", 1, "clock"),
            Port("ap_rst_n", "in", 1, "reset", "active-low synchronous reset"),
            Port("cfg_act", "in", 2, "ctrl", "activation code (Act)"),
            Port("cfg_six", "in", 32, "ctrl"), Port("cfg_three", "in", 32, "ctrl"),
            Port("cfg_hs_mult", "in", 32, "ctrl"), Port("cfg_hs_shift", "in", 6, "ctrl"),
            Port("cfg_out_bits", "in", 4, "ctrl", "output bits 2..8"),
            Port("cfg_out_signed", "in", 1, "ctrl"),
            Port("prm_we", "in", 1, "ctrl", "write one channel's bias/mult/shift"),
            Port("prm_addr", "in", p["CH_W"], "ctrl"), Port("prm_bias", "in", 32, "ctrl"),
            Port("prm_mult", "in", 32, "ctrl"), Port("prm_shift", "in", 6, "ctrl"),
            Port("s_axis_tdata", "in", p["LANES"] * 32, "axis", "lane p: int32 accumulator of channel tuser+p"),
            Port("s_axis_tuser", "in", p["CH_W"], "axis", "channel of lane 0"),
            Port("s_axis_tvalid", "in", 1, "axis"), Port("s_axis_tready", "out", 1, "axis"),
            Port("s_axis_tlast", "in", 1, "axis"),
            Port("m_axis_tdata", "out", p["LANES"] * OUT_LANE_BITS, "axis", "lane p: output code, sign/zero-extended"),
            Port("m_axis_tvalid", "out", 1, "axis"), Port("m_axis_tready", "in", 1, "axis"),
            Port("m_axis_tlast", "out", 1, "axis"),
            Port("stat_busy_cycles", "out", 64, "wire", "cycles with a beat accepted or in flight"),
        ]

    def exp_cycles(self, beats: int, **_: int) -> int:
        """One beat per cycle plus the pipeline latency."""
        return beats + PIPELINE_STAGES

    def reference_workload(self) -> dict[str, int]:
        s = self.spec
        return {"beats": s.tile_m * -(-s.tile_n // s.post_lanes)}

    def resources(self) -> dict[str, int]:
        """Estimated resources (calibrated on synthesis: :mod:`codesign.hw.resources`)."""
        est = postproc_resources(self.spec.post_lanes)
        return {"lanes": self.spec.post_lanes, "dsp": round(est.dsp), "lut": round(est.lut), "ff": round(est.ff),
                "bram36": round(est.bram36)}

    def make_case(self, rng: np.random.Generator, n_vectors: int, extremes: bool = False,
                  act: Act | None = None, out_signed: bool | None = None) -> CsimCase:
        """``n_vectors`` beats over a random channel count; extremes saturate on purpose."""
        lanes = self.spec.post_lanes
        n_ch = lanes * int(rng.integers(1, 17))
        # Multipliers that map the +-2^20 accumulators onto roughly the output range, so that
        # rounding, not only saturation, is exercised.
        reals = np.exp2(rng.uniform(-24.0, -14.0, size=n_ch))
        if extremes:  # a few channels with huge multipliers (shift 0..2): the requant saturates
            big = rng.random(n_ch) < 0.2
            reals[big] = rng.uniform(2.0**28, 2.0**30.9, size=int(big.sum()))
        mult, shift = quantize_multipliers(reals)
        bias = rng.integers(-(1 << 20), 1 << 20, size=n_ch)
        acc = rng.integers(-(1 << 20), 1 << 20, size=(n_vectors, lanes))
        if extremes:
            bias = np.where(rng.random(n_ch) < 0.2, rng.choice([INT32_MIN, INT32_MAX], size=n_ch), bias)
            acc = np.where(rng.random(acc.shape) < 0.3, rng.choice([INT32_MIN, INT32_MAX, -1, 0], size=acc.shape), acc)
        act = Act(int(rng.integers(0, 4))) if act is None else Act(act)
        out_scale = float(np.exp(rng.uniform(np.log(0.05), np.log(1.0))))
        ap = ActParams.for_scale(act, out_scale)
        out_bits = self.spec.bits
        out_signed = bool(rng.integers(0, 2)) if out_signed is None else out_signed
        ch_base = rng.integers(0, n_ch // lanes, size=n_vectors) * lanes
        expected = postproc_golden(acc, ch_base, bias, mult, shift, ap, out_bits, out_signed)
        cfg = np.array([int(ap.act), ap.six, ap.three, ap.hs_mult, ap.hs_shift, out_bits, int(out_signed), n_ch,
                        n_vectors], dtype=np.int64)
        inputs = np.concatenate([bias, mult, shift, np.concatenate([ch_base[:, None], acc], axis=1).ravel()])
        meta = {"acc": acc, "ch_base": ch_base, "bias": bias, "mult": mult, "shift": shift, "act": ap,
                "out_bits": out_bits, "out_signed": out_signed}
        return CsimCase(cfg, inputs.astype(np.int64), expected.ravel(), meta)
