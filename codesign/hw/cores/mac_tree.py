"""mac_tree: ``lanes`` x ``tree`` multipliers, a pipelined adder tree and int32 accumulators.

Each input beat carries ``tree`` activations (one bus word) and ``lanes x tree`` weights; lane
``l`` adds ``sum_t a[t] * w[l][t]`` to its accumulator. The beat flagged ``last`` closes a
dot product: the ``lanes`` accumulators are emitted as one output beat and restart at zero.
Activations are signed or unsigned (``act_signed``, a run-time input); weights are signed
and the full range is accepted, so the product of the two most negative codes is exact.

Accumulator bound: ``|a*w| <= 2^(2b-1)`` (unsigned ``a``) so int32 never overflows for
``beats * tree <= (2^31-1) / 2^(2b-1)`` products, i.e. K <= 65,536 at 8 bit; beyond that the
accumulator wraps (two's complement) in golden, C-sim and RTL alike.
"""

from __future__ import annotations

import numpy as np

from codesign.hw.budget import dsp_products_per_slice
from codesign.hw.cores.base import Core, CsimCase, Port, clog2
from codesign.hw.resources import mac_tree as mac_tree_resources
from codesign.quant.dyadic import qrange


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32 (the accumulator register)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def mac_tree_golden(act: np.ndarray, wgt: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Golden MAC tree.

    ``act``: [n_beats, tree] activation codes; ``wgt``: [n_beats, lanes, tree] weight codes;
    ``beats``: beats of each dot product (sum == n_beats). Returns [n_groups, lanes] int32.
    """
    act = np.asarray(act, np.int64)
    wgt = np.asarray(wgt, np.int64)
    per_beat = np.einsum("bt,blt->bl", act, wgt)
    ends = np.cumsum(beats)
    starts = ends - np.asarray(beats)
    return np.stack([wrap_int32(per_beat[s:e].sum(axis=0)) for s, e in zip(starts, ends)])


class MacTree(Core):
    """The multiply-accumulate tree of one GEMM engine."""

    name = "mac_tree"
    summary = "lanes x tree multipliers, pipelined adder tree, signed/unsigned activations, int32 accumulators"
    hls_top_template = "mac_tree.cpp.j2"
    hls_header_template = "mac_tree.h.j2"
    csim_template = "mac_tree_csim.cpp.j2"
    verilog_template = "mac_tree.v.j2"

    @property
    def levels(self) -> int:
        """Adder-tree levels (registered)."""
        return clog2(self.spec.tree)

    @property
    def uses_dsp(self) -> bool:
        """Products on DSP slices (operand-packed) rather than fabric multipliers."""
        return self.spec.mult == "dsp"

    @property
    def pack(self) -> int:
        """Products per DSP slice (1 for fabric multipliers)."""
        return dsp_products_per_slice(self.spec.bits, self.spec.device_profile) if self.uses_dsp else 1

    @property
    def product_stages(self) -> int:
        """Register stages of a product: the DSP's M and P registers, or one fabric register."""
        return 2 if self.uses_dsp else 1

    @property
    def latency(self) -> int:
        """Cycles from an accepted input beat to its output beat: operand register, product
        stages, registered tree levels, offset correction, accumulator."""
        return 1 + self.product_stages + self.levels + 1 + 1

    def params(self) -> dict[str, int]:
        s = self.spec
        return {
            "BITS": s.bits, "LANES": s.lanes, "TREE": s.tree, "LEVELS": self.levels, "ACC_BITS": s.acc_bits,
            "PROD_W": 2 * s.bits + 1, "SUM_W": 2 * s.bits + 2 + self.levels,
            "USUM_W": 2 * s.bits + self.levels, "ACT_W": s.tree * s.bits, "WGT_W": s.lanes * s.tree * s.bits,
            "MULT_DSP": int(self.uses_dsp), "PACK": self.pack, "FIELD": 2 * s.bits,
            "PROD_STAGES": self.product_stages, "LATENCY": self.latency,
        }

    def ports(self) -> list[Port]:
        p = self.params()
        return [
            Port("ap_clk", "in", 1, "clock"),
            Port("ap_rst_n", "in", 1, "reset", "active-low synchronous reset"),
            Port("act_signed", "in", 1, "ctrl", "activations are signed (else unsigned)"),
            Port("s_axis_tdata", "in", p["ACT_W"] + p["WGT_W"], "axis",
                 "activations in [ACT_W-1:0] (element t at t*BITS), weight (l,t) at ACT_W+(l*TREE+t)*BITS"),
            Port("s_axis_tvalid", "in", 1, "axis"),
            Port("s_axis_tready", "out", 1, "axis"),
            Port("s_axis_tlast", "in", 1, "axis", "closes a dot product"),
            Port("m_axis_tdata", "out", self.spec.lanes * self.spec.acc_bits, "axis", "lane l at [l*32 +: 32]"),
            Port("m_axis_tvalid", "out", 1, "axis"),
            Port("m_axis_tready", "in", 1, "axis"),
            Port("m_axis_tlast", "out", 1, "axis"),
            Port("stat_busy_cycles", "out", 64, "wire", "cycles with a beat accepted or in flight"),
        ]

    def hls_input_map(self) -> dict[str, str]:
        """What the HLS view's wrapper feeds the HLS core for the twin's inputs, where they differ.

        The twin's ``OFFSET_IN = 1`` takes operands with their sign bits already flipped (the
        overlay's operand register does it); the HLS core always takes two's-complement codes,
        so the wrapper flips the bits back: every weight, and the activations when signed.
        """
        sign = "{1'b1, {(BITS-1){1'b0}}}"
        flip = f"{{ {{(LANES*TREE){{{sign}}}}}, (act_signed ? {{TREE{{{sign}}}}} : {{ACT_W{{1'b0}}}}) }}"
        return {"s_axis_tdata": f"s_axis_tdata ^ ((OFFSET_IN != 0) ? {flip} : {{(ACT_W+WGT_W){{1'b0}}}})"}

    def exp_cycles(self, beats: int, **_: int) -> int:
        """Busy cycles of ``beats`` back-to-back beats: one per beat plus the pipeline latency."""
        return beats + self.latency

    def reference_workload(self) -> dict[str, int]:
        s = self.spec
        # A 128x128x128 tile: M * ceil(N/lanes) dot products of ceil(K/tree) beats each.
        vectors = s.tile_m * -(-s.tile_n // s.lanes)
        per_vector = -(-s.tile_k // s.tree)
        return {"beats": vectors * per_vector, "vectors": vectors, "beats_per_vector": per_vector}

    def resources(self) -> dict[str, int]:
        """Estimated resources (calibrated on synthesis: :mod:`codesign.hw.resources`)."""
        s = self.spec
        est = mac_tree_resources(s.bits, s.lanes, s.mult, s.device_profile)
        return {"lanes": s.lanes, "multipliers": s.lanes * s.tree, "products_per_dsp": self.pack,
                "dsp": int(est.dsp), "lut": round(est.lut), "ff": round(est.ff), "bram36": 0}

    def make_case(self, rng: np.random.Generator, n_vectors: int, extremes: bool = False,
                  act_signed: bool = True, beats_per_vector: int = 0) -> CsimCase:
        """``n_vectors`` dot products of 1..4 beats (or exactly ``beats_per_vector``);
        ``extremes`` biases half the operands to the range ends."""
        s = self.spec
        if beats_per_vector:
            beats = np.full(n_vectors, beats_per_vector, dtype=np.int64)
        else:
            beats = rng.integers(1, 5, size=n_vectors)
        n_beats = int(beats.sum())
        a_lo, a_hi = qrange(s.bits, act_signed)
        w_lo, w_hi = qrange(s.bits, True)
        act = rng.integers(a_lo, a_hi + 1, size=(n_beats, s.tree))
        wgt = rng.integers(w_lo, w_hi + 1, size=(n_beats, s.lanes, s.tree))
        if extremes:  # most-negative x most-negative and the other corners, often
            act = np.where(rng.random(act.shape) < 0.5, rng.choice([a_lo, a_hi], size=act.shape), act)
            wgt = np.where(rng.random(wgt.shape) < 0.5, rng.choice([w_lo, w_hi], size=wgt.shape), wgt)
            act[0], wgt[0] = a_lo, w_lo  # one whole beat of most-negative x most-negative
        expected = mac_tree_golden(act, wgt, beats)
        cfg = np.array([int(act_signed), n_vectors, n_beats], dtype=np.int64)
        inputs = np.concatenate([beats, np.concatenate([act, wgt.reshape(n_beats, -1)], axis=1).ravel()])
        return CsimCase(cfg, inputs.astype(np.int64), expected.ravel(),
                        {"act": act, "wgt": wgt, "beats": beats, "act_signed": act_signed})
