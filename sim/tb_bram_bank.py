"""cocotb testbench of bram_bank: concurrent per-bank writes and wide reads, RTL == golden == C-sim."""

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


def _drive(dut, wr_mask: int, wr_addr: int, wr_data: int, rd_en: int, rd_addr: int) -> None:
    dut.wr_en.value, dut.wr_addr.value, dut.wr_data.value = wr_mask, wr_addr, wr_data
    dut.rd_en.value, dut.rd_addr.value = rd_en, rd_addr


async def _run(dut, core, ops: list[list[int]], rng, bubble_p: float) -> np.ndarray:
    """One op per active cycle (random idle cycles in between); sample rd_data the cycle after a read."""
    banks = core.params()["BANKS"]
    got = []
    for op in ops:
        while rng.random() < bubble_p:  # idle cycle
            await FallingEdge(dut.ap_clk)
            _drive(dut, 0, 0, 0, 0, 0)
        await FallingEdge(dut.ap_clk)
        _drive(dut, *op)
        await RisingEdge(dut.ap_clk)
        if op[3]:
            await ReadOnly()
            got.append(split_lanes(dut.rd_data.value.to_unsigned(), 64, banks, False))
    await FallingEdge(dut.ap_clk)
    _drive(dut, 0, 0, 0, 0, 0)
    return np.array(got, dtype=np.int64).ravel()


@cocotb.test()
async def writes_and_reads(dut):
    """Seeded random per-bank writes and concurrent reads (same-address read-first), plain and extreme words."""
    core = load_core()
    rng = np.random.default_rng(seed())
    dut._log.info("seed %d", seed())
    start_clock(dut)
    _drive(dut, 0, 0, 0, 0, 0)
    await reset(dut)
    for extremes in (False, True):
        case = core.make_case(rng, n_vectors() // 2, extremes=extremes)
        check_golden_and_csim(core, case, await _run(dut, core, case.meta["ops"], rng, 0.2 * (not extremes)))
        # the memory keeps its contents across cases: zero what this case wrote, as the golden model starts
        for addr in sorted({op[1] for op in case.meta["ops"]}):
            await FallingEdge(dut.ap_clk)
            _drive(dut, 2 ** core.params()["BANKS"] - 1, addr, 0, 0, 0)


@cocotb.test()
async def read_register_holds(dut):
    """rd_data keeps the last read while rd_en is low, whatever is written meanwhile."""
    core = load_core()
    banks = core.params()["BANKS"]
    start_clock(dut)
    _drive(dut, 0, 0, 0, 0, 0)
    await reset(dut)
    await FallingEdge(dut.ap_clk)
    _drive(dut, 2**banks - 1, 3, 0x1234, 0, 0)
    await FallingEdge(dut.ap_clk)
    _drive(dut, 0, 0, 0, 1, 3)
    await FallingEdge(dut.ap_clk)
    _drive(dut, 2**banks - 1, 3, 0x5678, 0, 0)
    for _ in range(3):
        await RisingEdge(dut.ap_clk)
        await ReadOnly()
        words = split_lanes(dut.rd_data.value.to_unsigned(), 64, banks, False)
        assert all(int(w) == 0x1234 for w in words), f"rd_data changed without rd_en: {words}"
        await FallingEdge(dut.ap_clk)
        _drive(dut, 0, 0, 0, 0, 0)


@cocotb.test(skip=not cycles_enabled())
async def cycle_model(dut):
    """Filling a bank and reading it back takes one cycle per word (exp_cycles)."""
    core = load_core()
    p = core.params()
    start_clock(dut)
    _drive(dut, 0, 0, 0, 0, 0)
    await reset(dut)
    words = core.reference_workload()["ops"]
    cycles = 0
    for addr in range(words):  # write word addr while reading word addr-1 back
        await FallingEdge(dut.ap_clk)
        _drive(dut, 2 ** p["BANKS"] - 1, addr, addr, int(addr > 0), max(addr - 1, 0))
        cycles += 1
        if addr > 1:
            await ReadOnly()
            got = split_lanes(dut.rd_data.value.to_unsigned(), 64, p["BANKS"], False)
            assert all(int(w) == addr - 2 for w in got), f"word {addr - 2} read back as {got}"
    expected = core.exp_cycles(ops=words)
    record("cycles", {"workload": {"ops": words}, "measured": cycles, "expected": expected})
    assert cycles == expected
