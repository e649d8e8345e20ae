"""cocotb testbench of img2col: RTL == golden == C-sim on random geometries, plus its cycle model."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge
from tbutil import (
    check_golden_and_csim,
    collect_axis,
    cycles_enabled,
    drive_axis,
    load_core,
    n_vectors,
    record,
    reset,
    seed,
    start_clock,
)


async def _start(dut, geo) -> None:
    await FallingEdge(dut.ap_clk)
    for key in ("h", "w", "cw", "kh", "kw", "stride", "pad"):
        getattr(dut, f"cfg_{key}").value = geo[key]
    dut.ap_start.value = 1
    await FallingEdge(dut.ap_clk)
    dut.ap_start.value = 0


async def _run(dut, case, rng, bubble_p: float, stall_p: float) -> np.ndarray:
    await _start(dut, case.meta["geometry"])
    words = [{"tdata": int(w) & (2**64 - 1)} for w in case.inputs]
    sender = cocotb.start_soon(drive_axis(dut, "s_axis", words, rng, bubble_p))
    out = await collect_axis(dut, "m_axis", len(case.expected), rng, stall_p)
    await sender
    for _ in range(20):
        await ReadOnly()
        if int(dut.ap_idle.value):
            break
        await RisingEdge(dut.ap_clk)
    assert int(dut.ap_idle.value), f"not idle at the end (seed {seed()})"
    return np.array([o["tdata"] for o in out], dtype=np.uint64).view(np.int64)


async def _setup(dut) -> None:
    start_clock(dut)
    dut.ap_start.value = 0
    dut.s_axis_tvalid.value = 0
    dut.m_axis_tready.value = 0
    await reset(dut)


@cocotb.test()
async def random_geometries_with_backpressure(dut):
    """Seeded random kernels/strides/paddings (>= 200 output pixels in all), bubbles, back-pressure."""
    core = load_core()
    rng = np.random.default_rng(seed())
    dut._log.info("seed %d", seed())
    await _setup(dut)
    pixels = 0
    i = 0
    while pixels < n_vectors():
        case = core.make_case(rng, 60, extremes=bool(i % 2))
        g = case.meta["geometry"]
        pixels += len(case.expected) // (g["kh"] * g["kw"] * g["cw"])
        check_golden_and_csim(core, case, await _run(dut, case, rng, 0.3, 0.3))
        i += 1


@cocotb.test()
async def reset_mid_image(dut):
    """A reset in the middle of an image; the next image is exact."""
    core = load_core()
    rng = np.random.default_rng(seed() + 2)
    await _setup(dut)
    first = core.make_case(rng, 30)
    await _start(dut, first.meta["geometry"])
    sender = cocotb.start_soon(drive_axis(dut, "s_axis", [{"tdata": 1}] * 50, rng, 0.1))
    dut.m_axis_tready.value = 1
    await ClockCycles(dut.ap_clk, 30)
    sender.cancel()
    await FallingEdge(dut.ap_clk)
    dut.s_axis_tvalid.value = 0
    await reset(dut)
    case = core.make_case(rng, 30, extremes=True)
    check_golden_and_csim(core, case, await _run(dut, case, rng, 0.2, 0.2))


@cocotb.test(skip=not cycles_enabled())
async def cycle_model(dut):
    """The reference 3x3 conv: busy cycles counted by the RTL equal exp_cycles() within 5 %."""
    core = load_core()
    rng = np.random.default_rng(seed() + 3)
    await _setup(dut)
    geo = core.reference_workload()
    case = core.make_case(rng, 0, geometry=geo)
    check_golden_and_csim(core, case, await _run(dut, case, rng, 0.0, 0.0))
    measured = dut.stat_busy_cycles.value.to_unsigned()
    expected = core.exp_cycles(**geo)
    record("cycles", {"workload": geo, "measured": measured, "expected": expected})
    err = abs(measured - expected) / expected
    assert err <= 0.05, f"cycle model off by {err:.1%}: measured {measured}, exp_cycles {expected} (seed {seed()})"
