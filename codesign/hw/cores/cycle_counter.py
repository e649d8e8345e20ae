"""cycle_counter: one 64-bit counter per overlay stage, with start/stop/clear.

Counter ``i`` increments on every cycle where the counters run (between ``start`` and ``stop``)
and stage ``i`` reports busy. ``clear`` zeroes every counter and wins over counting in the same
cycle; ``start`` and ``stop`` take effect from the next cycle. The stage order is
:data:`codesign.hw.regmap.STAGES` (the CYC_* registers). RTL only: counters are not an HLS job.
"""

from __future__ import annotations

import numpy as np

from codesign.hw.cores.base import Core, CsimCase, Port
from codesign.hw.regmap import STAGES

N_STAGES = len(STAGES)
COUNTER_BITS = 64


def cycle_counter_golden(start: np.ndarray, stop: np.ndarray, clear: np.ndarray, busy: np.ndarray) -> np.ndarray:
    """Counter values after each cycle, [n_cycles, N_STAGES], for per-cycle control/busy inputs."""
    running = False
    counts = np.zeros(busy.shape[1], dtype=np.uint64)
    out = np.zeros(busy.shape, dtype=np.uint64)
    for t in range(len(busy)):
        if clear[t]:
            counts[:] = 0
        elif running:
            counts += busy[t].astype(np.uint64)
        if start[t]:
            running = True
        elif stop[t]:
            running = False
        out[t] = counts
    return out


class CycleCounter(Core):
    """Per-stage 64-bit cycle counters (BISMO-style instrumentation)."""

    name = "cycle_counter"
    summary = "64-bit per-stage cycle counters with start/stop/clear"
    verilog_template = "cycle_counter.v.j2"
    is_hls = False

    def params(self) -> dict[str, int]:
        return {"N_STAGES": N_STAGES, "COUNTER_BITS": COUNTER_BITS}

    def ports(self) -> list[Port]:
        return [
            Port("ap_clk", "in", 1, "clock"),
            Port("ap_rst_n", "in", 1, "reset"),
            Port("cnt_start", "in", 1, "ctrl", "start counting from the next cycle"),
            Port("cnt_stop", "in", 1, "ctrl", "stop counting from the next cycle"),
            Port("cnt_clear", "in", 1, "ctrl", "zero every counter (wins over counting)"),
            Port("stage_busy", "in", N_STAGES, "wire", "bit i: stage i busy this cycle (order of STAGES)"),
            Port("cnt_values", "out", N_STAGES * COUNTER_BITS, "wire", "counter i at [i*64 +: 64]"),
        ]

    def exp_cycles(self, busy_cycles: int, **_: int) -> int:
        """A counter reads exactly the cycles its stage was busy while running."""
        return busy_cycles

    def reference_workload(self) -> dict[str, int]:
        return {"busy_cycles": 4096}

    def resources(self) -> dict[str, int]:
        return {"lut": N_STAGES * COUNTER_BITS // 2 + 16, "dsp": 0, "bram36": 0}

    def make_case(self, rng: np.random.Generator, n_vectors: int, extremes: bool = False) -> CsimCase:
        """``n_vectors`` cycles of random control pulses and busy bits."""
        p_ctrl = 0.1 if extremes else 0.03
        start = rng.random(n_vectors) < p_ctrl
        stop = rng.random(n_vectors) < p_ctrl
        clear = rng.random(n_vectors) < p_ctrl / 2
        start[0] = True
        busy = rng.random((n_vectors, N_STAGES)) < 0.6
        expected = cycle_counter_golden(start, stop, clear, busy)
        meta = {"start": start, "stop": stop, "clear": clear, "busy": busy}
        return CsimCase(np.zeros(0, np.int64), np.zeros(0, np.int64), expected.astype(np.int64).ravel(), meta)
