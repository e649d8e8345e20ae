"""cocotb testbench of cycle_counter: every counter equals the golden count on every cycle."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from tbutil import (
    check_golden_and_csim,
    cycles_enabled,
    load_core,
    n_vectors,
    record,
    reset,
    seed,
    start_clock,
)

from codesign.hw.cores.base import CsimCase
from codesign.hw.cores.cycle_counter import INC_BITS, N_COUNTERS
from codesign.hw.packing import split_lanes


async def _setup(dut) -> None:
    start_clock(dut)
    _drive(dut, 0, 0, np.zeros(N_COUNTERS, np.int64))
    await reset(dut)


def _drive(dut, en: int, clear: int, inc: np.ndarray) -> None:
    dut.cnt_en.value = int(en)
    dut.cnt_clear.value = int(clear)
    dut.cnt_inc.value = int(sum(int(v) << (INC_BITS * i) for i, v in enumerate(inc)))


async def _run_after_edge(dut, case: CsimCase) -> np.ndarray:
    """Drive one vector per cycle at the falling edge; read the counters after the rising edge."""
    m = case.meta
    got = []
    for t in range(len(m["inc"])):
        await FallingEdge(dut.ap_clk)
        _drive(dut, m["en"][t], m["clear"][t], m["inc"][t])
        await RisingEdge(dut.ap_clk)
        await ReadOnly()
        got.append(split_lanes(dut.cnt_values.value.to_unsigned(), 64, N_COUNTERS, False))
    await FallingEdge(dut.ap_clk)
    _drive(dut, 0, 0, np.zeros(N_COUNTERS, np.int64))
    return np.stack(got)


@cocotb.test()
async def counts_increments(dut):
    """Random enable/clear and increments (small and up to the maximum): exact counts every cycle."""
    core = load_core()
    rng = np.random.default_rng(seed())
    dut._log.info("seed %d", seed())
    await _setup(dut)
    for extremes in (False, True):
        case = core.make_case(rng, n_vectors(), extremes=extremes)
        check_golden_and_csim(core, case, (await _run_after_edge(dut, case)).ravel())
        await reset(dut)  # the next case starts from zero


@cocotb.test()
async def reset_mid_count(dut):
    """A reset while counting zeroes the counters."""
    core = load_core()
    rng = np.random.default_rng(seed() + 2)
    await _setup(dut)
    await _run_after_edge(dut, core.make_case(rng, 30))
    await reset(dut)
    await ReadOnly()
    assert dut.cnt_values.value.to_unsigned() == 0, f"counters not zero after reset (seed {seed()})"


@cocotb.test(skip=not cycles_enabled())
async def cycle_model(dut):
    """Each counter enabled with increment 1 for a known number of cycles equals exp_cycles() exactly."""
    core = load_core()
    rng = np.random.default_rng(seed() + 3)
    await _setup(dut)
    target = core.reference_workload()["busy_cycles"]
    inc = np.zeros((target + 64, N_COUNTERS), dtype=np.int64)
    for i in range(N_COUNTERS):  # counter i busy for exactly `target` cycles at random times
        inc[rng.choice(np.arange(len(inc)), size=target, replace=False), i] = 1
    en = np.ones(len(inc), bool)
    case = CsimCase(np.zeros(0), np.zeros(0), np.zeros(0), {"en": en, "clear": ~en, "inc": inc})
    got = await _run_after_edge(dut, case)
    expected = core.exp_cycles(busy_cycles=target)
    assert (got[-1] == expected).all(), f"counters {got[-1]} != busy cycles {target} (seed {seed()})"
    record("cycles", {"workload": {"busy_cycles": target}, "measured": int(got[-1].min()), "expected": expected})
