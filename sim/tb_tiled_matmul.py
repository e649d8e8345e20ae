"""cocotb testbench of tiled_matmul (+ its mac_tree): RTL == golden (A @ B) == C-sim."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge
from tbutil import (
    check_golden_and_csim,
    collect_axis,
    cycles_enabled,
    load_core,
    n_vectors,
    record,
    reset,
    seed,
    start_clock,
)

from codesign.hw.packing import split_lanes


async def _load_banks(dut, core, case) -> None:
    a_words, b_words = core.bank_words(case.meta["a"], case.meta["b"])
    for addr, word in a_words.items():
        await FallingEdge(dut.ap_clk)
        dut.a_we.value, dut.a_addr.value, dut.a_data.value = 1, addr, word
    for addr, word in b_words.items():
        await FallingEdge(dut.ap_clk)
        dut.a_we.value = 0
        dut.b_we.value, dut.b_addr.value, dut.b_data.value = 1, addr, word
    await FallingEdge(dut.ap_clk)
    dut.a_we.value = dut.b_we.value = 0


async def _start(dut, core, case) -> None:
    s = core.spec
    m = case.meta
    dut.cfg_m.value = m["m"]
    dut.cfg_nb.value = -(-m["n"] // s.lanes)
    dut.cfg_kb.value = -(-m["k"] // s.tree)
    dut.act_signed.value = int(m["act_signed"])
    dut.ap_start.value = 1
    await FallingEdge(dut.ap_clk)
    dut.ap_start.value = 0


async def _run(dut, core, case, rng, stall_p: float) -> np.ndarray:
    await _load_banks(dut, core, case)
    await _start(dut, core, case)
    n_out = len(case.expected) // core.spec.lanes
    out = await collect_axis(dut, "m_axis", n_out, rng, stall_p)
    for _ in range(10):
        await ReadOnly()
        if int(dut.ap_idle.value):
            break
        await RisingEdge(dut.ap_clk)
    assert int(dut.ap_idle.value), f"not idle after the last output (seed {seed()})"
    return np.stack([split_lanes(o["tdata"], 32, core.spec.lanes, True) for o in out]).ravel()


async def _setup(dut) -> None:
    start_clock(dut)
    dut.ap_start.value = 0
    dut.a_we.value = dut.b_we.value = 0
    dut.m_axis_tready.value = 0
    dut.act_signed.value = 1
    await reset(dut)


@cocotb.test()
async def random_tiles_with_backpressure(dut):
    """Seeded random tiles (shapes, signed/unsigned, corner values) under output back-pressure."""
    core = load_core()
    rng = np.random.default_rng(seed())
    dut._log.info("seed %d", seed())
    await _setup(dut)
    n = n_vectors()
    for signed, extremes in ((True, True), (False, False)):
        case = core.make_case(rng, n // 2, extremes=extremes, act_signed=signed)
        await FallingEdge(dut.ap_clk)
        check_golden_and_csim(core, case, await _run(dut, core, case, rng, stall_p=0.3))


@cocotb.test()
async def reset_mid_tile(dut):
    """A reset in the middle of a tile; the next tile is exact."""
    core = load_core()
    rng = np.random.default_rng(seed() + 2)
    await _setup(dut)
    first = core.make_case(rng, 40)
    await FallingEdge(dut.ap_clk)
    await _load_banks(dut, core, first)
    await _start(dut, core, first)
    dut.m_axis_tready.value = 1
    await ClockCycles(dut.ap_clk, 7)
    await FallingEdge(dut.ap_clk)
    await reset(dut)
    await ReadOnly()
    assert int(dut.ap_idle.value) == 1 and int(dut.m_axis_tvalid.value) == 0, f"busy after reset (seed {seed()})"
    case = core.make_case(rng, 30, extremes=True)
    await FallingEdge(dut.ap_clk)
    check_golden_and_csim(core, case, await _run(dut, core, case, rng, stall_p=0.2))


@cocotb.test(skip=not cycles_enabled())
async def cycle_model(dut):
    """A 128x128x128 tile: busy cycles counted by the RTL equal exp_cycles() within 5 %."""
    core = load_core()
    rng = np.random.default_rng(seed() + 3)
    await _setup(dut)
    w = core.reference_workload()
    case = core.make_case(rng, 0, shape=(w["m"], w["n"], w["k"]))
    await FallingEdge(dut.ap_clk)
    check_golden_and_csim(core, case, await _run(dut, core, case, rng, stall_p=0.0))  # ends in the ReadOnly phase
    measured = dut.stat_busy_cycles.value.to_unsigned()
    expected = core.exp_cycles(**w)
    record("cycles", {"workload": w, "measured": measured, "expected": expected,
                      "beats": dut.stat_beats.value.to_unsigned(), "utilization": core.utilization(**w)})
    err = abs(measured - expected) / expected
    assert err <= 0.05, f"cycle model off by {err:.1%}: measured {measured}, exp_cycles {expected} (seed {seed()})"
