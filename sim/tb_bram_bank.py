"""cocotb testbench of bram_bank: concurrent fill/compute traffic, RTL == golden == C-sim."""

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

from codesign.hw.packing import split_lanes


async def _run(dut, core, case, rng, bubble_p: float) -> np.ndarray:
    """One op per active cycle (random idle cycles in between); collect every read."""
    dut.rd_signed.value = int(case.meta["signed"])
    p = core.params()
    got = []

    async def sample() -> None:
        await ReadOnly()
        if int(dut.rd_valid.value):
            got.append(split_lanes(dut.rd_data.value.to_unsigned(), p["LANE_BITS"], p["EPW"], case.meta["signed"]))

    for wr_en, wr_addr, wr_data, rd_en, rd_addr, swap in case.meta["ops"]:
        while rng.random() < bubble_p:  # idle cycle
            await FallingEdge(dut.ap_clk)
            dut.wr_en.value = dut.rd_en.value = dut.swap.value = 0
            await RisingEdge(dut.ap_clk)
            await sample()
        await FallingEdge(dut.ap_clk)
        dut.wr_en.value, dut.wr_addr.value, dut.wr_data.value = wr_en, wr_addr, wr_data
        dut.rd_en.value, dut.rd_addr.value, dut.swap.value = rd_en, rd_addr, swap
        await RisingEdge(dut.ap_clk)
        await sample()
    await FallingEdge(dut.ap_clk)
    dut.wr_en.value = dut.rd_en.value = dut.swap.value = 0
    await RisingEdge(dut.ap_clk)
    await sample()
    return np.array(got, dtype=np.int64).ravel()


async def _setup(dut) -> None:
    start_clock(dut)
    dut.wr_en.value = dut.rd_en.value = dut.swap.value = 0
    dut.wr_addr.value = dut.rd_addr.value = dut.wr_data.value = 0
    dut.rd_signed.value = 0
    await reset(dut)


@cocotb.test()
async def fill_while_reading(dut):
    """Seeded random concurrent writes, reads and swaps (plain and extreme words), signed and unsigned."""
    core = load_core()
    rng = np.random.default_rng(seed())
    dut._log.info("seed %d", seed())
    await _setup(dut)
    n = n_vectors()
    for i, signed in enumerate((True, False)):
        await FallingEdge(dut.ap_clk)
        await reset(dut)  # a run starts filling buffer 0 (the HLS core: each call)
        case = core.make_case(rng, n // 2, extremes=bool(i), signed=signed)
        check_golden_and_csim(core, case, await _run(dut, core, case, rng, 0.2))


@cocotb.test()
async def reset_mid_stream(dut):
    """After a reset mid-traffic the bank fills buffer 0 again and reads correctly."""
    core = load_core()
    rng = np.random.default_rng(seed() + 2)
    await _setup(dut)
    await _run(dut, core, core.make_case(rng, 30), rng, 0.0)
    await FallingEdge(dut.ap_clk)
    await reset(dut)
    case = core.make_case(rng, 40, extremes=True)
    check_golden_and_csim(core, case, await _run(dut, core, case, rng, 0.1))


@cocotb.test(skip=not cycles_enabled())
async def cycle_model(dut):
    """Filling one buffer takes exp_cycles() busy cycles; activity counters match the traffic."""
    core = load_core()
    await _setup(dut)
    words = core.reference_workload()["ops"]
    for addr in range(words):
        await FallingEdge(dut.ap_clk)
        dut.wr_en.value, dut.wr_addr.value, dut.wr_data.value = 1, addr, addr
    await FallingEdge(dut.ap_clk)
    dut.wr_en.value = 0
    await RisingEdge(dut.ap_clk)
    await ReadOnly()
    measured = dut.stat_busy_cycles.value.to_unsigned()
    assert dut.stat_writes.value.to_unsigned() == words and dut.stat_reads.value.to_unsigned() == 0
    expected = core.exp_cycles(ops=words)
    record("cycles", {"workload": {"ops": words}, "measured": measured, "expected": expected})
    assert abs(measured - expected) <= 0.05 * expected, f"measured {measured}, exp_cycles {expected} (seed {seed()})"
