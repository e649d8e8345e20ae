"""cocotb testbench of mac_tree: RTL == golden == C-sim, bit for bit, plus its cycle model."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge
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

from codesign.hw.packing import join_lanes, split_lanes


def _beats(core, case) -> list[dict[str, int]]:
    s = core.spec
    act, wgt, beats = case.meta["act"], case.meta["wgt"], case.meta["beats"]
    lasts = np.zeros(len(act), dtype=bool)
    lasts[np.cumsum(beats) - 1] = True
    act_w = s.tree * s.bits
    return [
        {"tdata": join_lanes(act[i], s.bits) | (join_lanes(wgt[i].ravel(), s.bits) << act_w), "tlast": int(lasts[i])}
        for i in range(len(act))
    ]


async def _run_case(dut, core, case, rng, bubble_p: float, stall_p: float) -> np.ndarray:
    dut.act_signed.value = int(case.meta["act_signed"])
    n_out = len(case.meta["beats"])
    sender = cocotb.start_soon(drive_axis(dut, "s_axis", _beats(core, case), rng, bubble_p))
    out = await collect_axis(dut, "m_axis", n_out, rng, stall_p)
    await sender
    return np.stack([split_lanes(o["tdata"], core.spec.acc_bits, core.spec.lanes, True) for o in out]).ravel()


async def _setup(dut):
    start_clock(dut)
    dut.s_axis_tvalid.value = 0
    dut.m_axis_tready.value = 0
    dut.act_signed.value = 1
    await reset(dut)


@cocotb.test()
async def random_with_backpressure(dut):
    """Seeded random dot products (half with corner values), signed then unsigned activations,
    with bubbles on the input stream and back-pressure on the output stream."""
    core = load_core()
    rng = np.random.default_rng(seed())
    dut._log.info("seed %d", seed())
    await _setup(dut)
    n = n_vectors()
    for signed, count in ((True, n // 2), (False, n - n // 2)):
        case = core.make_case(rng, count, extremes=True, act_signed=signed)
        check_golden_and_csim(core, case, await _run_case(dut, core, case, rng, bubble_p=0.3, stall_p=0.3))


@cocotb.test()
async def reset_mid_stream(dut):
    """A reset in the middle of a stream leaves no state behind."""
    core = load_core()
    rng = np.random.default_rng(seed() + 2)
    await _setup(dut)
    first = core.make_case(rng, 50)
    dut.m_axis_tready.value = 0  # outputs pile up, the stream stalls: reset hits a full pipeline
    sender = cocotb.start_soon(drive_axis(dut, "s_axis", _beats(core, first), rng, 0.2))
    await ClockCycles(dut.ap_clk, 20)
    sender.cancel()
    dut.s_axis_tvalid.value = 0
    await reset(dut)
    await RisingEdge(dut.ap_clk)
    assert int(dut.m_axis_tvalid.value) == 0, f"output valid after reset (seed {seed()})"
    case = core.make_case(rng, 20, extremes=True)
    check_golden_and_csim(core, case, await _run_case(dut, core, case, rng, bubble_p=0.2, stall_p=0.2))


@cocotb.test(skip=not cycles_enabled())
async def cycle_model(dut):
    """Busy cycles counted by the RTL equal exp_cycles() within 5 %."""
    core = load_core()
    rng = np.random.default_rng(seed() + 3)
    await _setup(dut)
    work = core.reference_workload()  # a 128x128x128 tile
    case = core.make_case(rng, work["vectors"], beats_per_vector=work["beats_per_vector"])
    case_beats = int(case.meta["beats"].sum())
    got = await _run_case(dut, core, case, rng, bubble_p=0.0, stall_p=0.0)
    check_golden_and_csim(core, case, got)
    await ClockCycles(dut.ap_clk, 2)
    measured = dut.stat_busy_cycles.value.to_unsigned()
    expected = core.exp_cycles(beats=case_beats)
    record("cycles", {"workload": {"beats": case_beats}, "measured": measured, "expected": expected})
    err = abs(measured - expected) / expected
    assert err <= 0.05, f"cycle model off by {err:.1%}: measured {measured}, exp_cycles {expected} (seed {seed()})"
