"""cycle_counter: the overlay's bank of 64-bit counters (stage cycles and activity counts).

Counter ``i`` adds ``inc[i]`` on every cycle where ``cnt_en`` is high; ``cnt_clear`` (or reset)
zeroes every counter and wins over counting in the same cycle. The overlay drives one counter
per 64-bit register of :data:`codesign.hw.regmap.REGMAP` (the ``CYC_*`` stage counters add
0/1, the activity counters ``CNT_*`` add a per-cycle amount, e.g. the multiplies issued), in
register order, and reads ``cnt_values`` in its AXI-lite read mux. The outputs are the counter
registers, so a value is visible the cycle after the edge that produced it.

The HLS view is a free-running (``ap_ctrl_none``) function pipelined at II = 1: one call per
clock cycle, returning the registered values and then updating them, which is the RTL's
register semantics.
"""

from __future__ import annotations

import numpy as np

from codesign.hw.cores.base import Core, CsimCase, Port
from codesign.hw.regmap import REGMAP

N_COUNTERS = sum(1 for r in REGMAP if r.width == 64)
COUNTER_BITS = 64
INC_BITS = 16  # widest per-cycle increment: an engine's multiplies (lanes * tree) < 2**16


def cycle_counter_golden(en: np.ndarray, clear: np.ndarray, inc: np.ndarray) -> np.ndarray:
    """Counter values after each cycle's edge, ``[n_cycles, n_counters]``, for per-cycle inputs."""
    counts = np.zeros(inc.shape[1], dtype=np.uint64)
    out = np.zeros(inc.shape, dtype=np.uint64)
    for t in range(len(inc)):
        if clear[t]:
            counts[:] = 0
        elif en[t]:
            counts += inc[t].astype(np.uint64)
        out[t] = counts
    return out


class CycleCounter(Core):
    """Per-stage cycle and activity counters (BISMO-style instrumentation)."""

    name = "cycle_counter"
    summary = "64-bit cycle/activity counters: enable, clear, per-counter increments"
    hls_top_template = "cycle_counter.cpp.j2"
    hls_header_template = "cycle_counter.h.j2"
    csim_template = "cycle_counter_csim.cpp.j2"
    verilog_template = "cycle_counter.v.j2"

    def params(self) -> dict[str, int]:
        return {"N_COUNTERS": N_COUNTERS, "COUNTER_BITS": COUNTER_BITS, "INC_BITS": INC_BITS}

    def ports(self) -> list[Port]:
        return [
            Port("ap_clk", "in", 1, "clock"),
            Port("ap_rst_n", "in", 1, "reset"),
            Port("cnt_en", "in", 1, "wire", "count this cycle"),
            Port("cnt_clear", "in", 1, "wire", "zero every counter (wins over counting)"),
            Port("cnt_inc", "in", N_COUNTERS * INC_BITS, "wire", "counter i adds [i*INC_BITS +: INC_BITS]"),
            Port("cnt_values", "out", N_COUNTERS * COUNTER_BITS, "wire", "counter i at [i*64 +: 64]"),
        ]

    def exp_cycles(self, busy_cycles: int, **_: int) -> int:
        """A 0/1 counter reads exactly the cycles its stage was busy while enabled."""
        return busy_cycles

    def reference_workload(self) -> dict[str, int]:
        return {"busy_cycles": 4096}

    def resources(self) -> dict[str, int]:
        return {"lut": N_COUNTERS * COUNTER_BITS // 2 + 16, "dsp": 0, "bram36": 0}

    def make_case(self, rng: np.random.Generator, n_vectors: int, extremes: bool = False) -> CsimCase:
        """``n_vectors`` cycles of random enable/clear and increments (0/1 or up to the maximum).

        C-sim ABI: ``cfg = [n_cycles]``; ``inputs`` per cycle ``[en, clear, inc_0 .. inc_{N-1}]``;
        output per cycle the ``N`` counter values after that cycle's edge.
        """
        p_clear = 0.05 if extremes else 0.02
        en = rng.random(n_vectors) < 0.8
        clear = rng.random(n_vectors) < p_clear
        hi = 2**INC_BITS if extremes else 3
        inc = rng.integers(0, hi, size=(n_vectors, N_COUNTERS))
        if extremes:
            inc[rng.random(inc.shape) < 0.3] = 2**INC_BITS - 1
        expected = cycle_counter_golden(en, clear, inc)
        inputs = np.concatenate([en[:, None], clear[:, None], inc], axis=1).astype(np.int64).ravel()
        meta = {"en": en, "clear": clear, "inc": inc}
        return CsimCase(np.array([n_vectors], np.int64), inputs, expected.view(np.int64).ravel(), meta)
