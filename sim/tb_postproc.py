"""cocotb testbench of postproc: RTL == golden (dyadic.postprocess) == C-sim, plus its cycle model."""

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
from codesign.quant.dyadic import Act


async def _load_params(dut, case) -> None:
    """Write every channel's bias/mult/shift through the parameter port."""
    m = case.meta
    for c in range(len(m["bias"])):
        dut.prm_we.value = 1
        dut.prm_addr.value = c
        dut.prm_bias.value = int(m["bias"][c]) & 0xFFFFFFFF
        dut.prm_mult.value = int(m["mult"][c])
        dut.prm_shift.value = int(m["shift"][c])
        await RisingEdge(dut.ap_clk)
    dut.prm_we.value = 0


def _configure(dut, case) -> None:
    ap = case.meta["act"]
    dut.cfg_act.value = int(ap.act)
    dut.cfg_six.value = ap.six
    dut.cfg_three.value = ap.three
    dut.cfg_hs_mult.value = ap.hs_mult
    dut.cfg_hs_shift.value = ap.hs_shift
    dut.cfg_out_bits.value = case.meta["out_bits"]
    dut.cfg_out_signed.value = int(case.meta["out_signed"])


async def _run_case(dut, core, case, rng, bubble_p: float, stall_p: float) -> np.ndarray:
    await _load_params(dut, case)
    _configure(dut, case)
    acc, ch = case.meta["acc"], case.meta["ch_base"]
    beats = [{"tdata": join_lanes(acc[i], 32), "tuser": int(ch[i]), "tlast": int(i == len(acc) - 1)}
             for i in range(len(acc))]
    sender = cocotb.start_soon(drive_axis(dut, "s_axis", beats, rng, bubble_p))
    out = await collect_axis(dut, "m_axis", len(beats), rng, stall_p)
    await sender
    lanes, width = core.spec.post_lanes, core.params()["OUT_W"]
    return np.stack([split_lanes(o["tdata"], width, lanes, bool(case.meta["out_signed"])) for o in out]).ravel()


async def _setup(dut) -> None:
    start_clock(dut)
    dut.s_axis_tvalid.value = 0
    dut.m_axis_tready.value = 0
    dut.prm_we.value = 0
    await reset(dut)


@cocotb.test()
async def every_activation_with_backpressure(dut):
    """Each activation code on seeded random beats (half saturating), bubbles and back-pressure."""
    core = load_core()
    rng = np.random.default_rng(seed())
    dut._log.info("seed %d", seed())
    await _setup(dut)
    n = n_vectors()
    for i, act in enumerate(Act):
        case = core.make_case(rng, n // len(Act) + (i < n % len(Act)), extremes=bool(i % 2), act=act)
        check_golden_and_csim(core, case, await _run_case(dut, core, case, rng, 0.3, 0.3))


@cocotb.test()
async def reset_mid_stream(dut):
    """A reset in the middle of a stream leaves no beat behind."""
    core = load_core()
    rng = np.random.default_rng(seed() + 2)
    await _setup(dut)
    first = core.make_case(rng, 40)
    await _load_params(dut, first)
    _configure(dut, first)
    acc, ch = first.meta["acc"], first.meta["ch_base"]
    beats = [{"tdata": join_lanes(acc[i], 32), "tuser": int(ch[i]), "tlast": 0} for i in range(len(acc))]
    sender = cocotb.start_soon(drive_axis(dut, "s_axis", beats, rng, 0.2))
    await ClockCycles(dut.ap_clk, 15)
    sender.cancel()
    dut.s_axis_tvalid.value = 0
    await reset(dut)
    await RisingEdge(dut.ap_clk)
    assert int(dut.m_axis_tvalid.value) == 0, f"output valid after reset (seed {seed()})"
    case = core.make_case(rng, 20, extremes=True, act=Act.HSWISH)
    check_golden_and_csim(core, case, await _run_case(dut, core, case, rng, 0.2, 0.2))


@cocotb.test(skip=not cycles_enabled())
async def cycle_model(dut):
    """Busy cycles counted by the RTL equal exp_cycles() within 5 %."""
    core = load_core()
    rng = np.random.default_rng(seed() + 3)
    await _setup(dut)
    beats = core.reference_workload()["beats"]
    case = core.make_case(rng, beats, act=Act.RELU)
    await _load_params(dut, case)
    await ClockCycles(dut.ap_clk, 1)
    start = dut.stat_busy_cycles.value.to_unsigned()
    check_golden_and_csim(core, case, await _run_case(dut, core, case, rng, 0.0, 0.0))
    await ClockCycles(dut.ap_clk, 2)
    measured = dut.stat_busy_cycles.value.to_unsigned() - start
    expected = core.exp_cycles(beats=beats)
    record("cycles", {"workload": {"beats": beats}, "measured": measured, "expected": expected})
    err = abs(measured - expected) / expected
    assert err <= 0.05, f"cycle model off by {err:.1%}: measured {measured}, exp_cycles {expected} (seed {seed()})"
