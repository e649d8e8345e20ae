"""cocotb testbench of cycle_counter: every counter equals the golden count on every cycle."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from tbutil import assert_equal, cycles_enabled, load_core, n_vectors, record, reset, seed, start_clock

from codesign.hw.cores.cycle_counter import N_STAGES
from codesign.hw.packing import split_lanes


async def _setup(dut) -> None:
    start_clock(dut)
    dut.cnt_start.value = 0
    dut.cnt_stop.value = 0
    dut.cnt_clear.value = 0
    dut.stage_busy.value = 0
    await reset(dut)


@cocotb.test()
async def counts_busy_cycles(dut):
    """Random start/stop/clear pulses and busy bits: exact counts on every cycle."""
    core = load_core()
    rng = np.random.default_rng(seed())
    dut._log.info("seed %d", seed())
    await _setup(dut)
    for extremes in (False, True):
        case = core.make_case(rng, n_vectors(), extremes=extremes)
        got = await _run_after_edge(dut, case)
        assert_equal(core.spec.name, got.ravel(), case.expected, "golden")
        await reset(dut)  # the next case starts from zero, stopped


async def _run_after_edge(dut, case) -> np.ndarray:
    """Drive one vector per cycle at the falling edge; read the counters after the rising edge."""
    m = case.meta
    got = []
    for t in range(len(m["busy"])):
        await FallingEdge(dut.ap_clk)
        dut.cnt_start.value = int(m["start"][t])
        dut.cnt_stop.value = int(m["stop"][t])
        dut.cnt_clear.value = int(m["clear"][t])
        dut.stage_busy.value = int(sum(int(b) << i for i, b in enumerate(m["busy"][t])))
        await RisingEdge(dut.ap_clk)
        await ReadOnly()
        got.append(split_lanes(dut.cnt_values.value.to_unsigned(), 64, N_STAGES, False))
    await FallingEdge(dut.ap_clk)
    dut.cnt_start.value = 0
    dut.cnt_stop.value = 0
    dut.cnt_clear.value = 0
    dut.stage_busy.value = 0
    return np.stack(got)


@cocotb.test()
async def reset_mid_count(dut):
    """A reset while counting zeroes the counters and stops them."""
    core = load_core()
    rng = np.random.default_rng(seed() + 2)
    await _setup(dut)
    case = core.make_case(rng, 30)
    await _run_after_edge(dut, case)
    await reset(dut)
    await ReadOnly()
    assert dut.cnt_values.value.to_unsigned() == 0, f"counters not zero after reset (seed {seed()})"


@cocotb.test(skip=not cycles_enabled())
async def cycle_model(dut):
    """Each stage busy for a known number of cycles: counters equal exp_cycles() exactly."""
    core = load_core()
    rng = np.random.default_rng(seed() + 3)
    await _setup(dut)
    target = core.reference_workload()["busy_cycles"]
    busy = np.zeros((target + 64, N_STAGES), dtype=bool)
    for i in range(N_STAGES):  # stage i busy for exactly `target` cycles at random times after start
        busy[rng.choice(np.arange(1, len(busy)), size=target, replace=False), i] = True
    start = np.zeros(len(busy), bool)
    stop = np.zeros(len(busy), bool)
    clear = np.zeros(len(busy), bool)
    start[0] = True  # counting starts the cycle after start
    n_busy = busy.sum(axis=0)
    from codesign.hw.cores.base import CsimCase

    case = CsimCase(np.zeros(0), np.zeros(0), np.zeros(0), {"start": start, "stop": stop, "clear": clear, "busy": busy})
    got = await _run_after_edge(dut, case)
    measured = int(got[-1].min())
    expected = core.exp_cycles(busy_cycles=int(n_busy.min()))
    assert (got[-1] == n_busy).all(), f"counters {got[-1]} != busy cycles {n_busy} (seed {seed()})"
    record("cycles", {"workload": {"busy_cycles": int(n_busy.min())}, "measured": measured, "expected": expected})
