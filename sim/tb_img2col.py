"""cocotb testbench of img2col: RTL == golden == C-sim on random geometries, plus its cycle model.

The testbench is cycle-stepped: at every falling edge it drives the feature-map stream (random
bubbles) and ``row_full``, and in the ReadOnly phase of the same time step it samples the core's
outputs. The consumer is a model of the overlay's feeder: it reads a full row half from word 0,
one word per cycle (read-first block RAM), optionally after a random delay, and frees the half
with its last read. Reading from the cycle after ``row_set`` checks the early-completion
contract: a word read before it is written would come out stale.
"""

from __future__ import annotations

import contextlib

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

from codesign.hw.cores.img2col import CFG_FIELDS

MASK64 = 2**64 - 1


def _idle_inputs(dut) -> None:
    dut.ap_start.value = 0
    dut.en.value = 0
    dut.s_axis_tvalid.value = 0
    dut.s_axis_tdata.value = 0
    dut.s_axis_tlast.value = 0
    dut.row_full.value = 0
    for f in CFG_FIELDS:
        getattr(dut, f"cfg_{f}").value = 0


async def _run(dut, case, rng: np.random.Generator, bubble_p: float, delay_p: float,
               max_cycles: int = 200_000) -> tuple[np.ndarray, int]:
    """One job; returns the rows the consumer read (in order) and the cycles from ap_start to ap_done."""
    cfg = case.meta["cfg"]
    kb = cfg["kb"]
    row_depth = load_core().params()["ROW_DEPTH"]
    await FallingEdge(dut.ap_clk)
    for f in CFG_FIELDS:
        getattr(dut, f"cfg_{f}").value = int(cfg[f]) & 0xFFFFFFFF
    dut.ap_start.value = 1
    await FallingEdge(dut.ap_clk)
    dut.ap_start.value = 0
    dut.en.value = 1
    words = [int(w) & MASK64 for w in case.inputs]
    mem = np.zeros(2 * row_depth, dtype=np.uint64)
    full = [False, False]
    f_half, f_kb, f_wait = 0, 0, 0
    row: list[int] = []
    got: list[int] = []
    sent = 0
    offered = False
    cycles = 0
    for cycles in range(max_cycles):  # noqa: B007 - the count is the job's cycles
        # drive this cycle's inputs (the stream keeps a word offered until it is taken)
        if not offered and sent < len(words) and rng.random() >= bubble_p:
            dut.s_axis_tdata.value = words[sent]
            dut.s_axis_tlast.value = int(sent == len(words) - 1)
            offered = True
        dut.s_axis_tvalid.value = int(offered)
        dut.row_full.value = int(full[0]) | (int(full[1]) << 1)
        await ReadOnly()
        if int(dut.ap_done.value):
            break
        taken = offered and int(dut.s_axis_tready.value)
        row_set = int(dut.row_set.value)
        we = int(dut.rows_we0.value)
        addr, data = (int(dut.rows_address0.value), int(dut.rows_d0.value)) if we else (0, 0)
        # the feeder model: reads before this edge's write (read-first)
        clear = False
        if full[f_half]:
            if f_wait > 0:
                f_wait -= 1
            else:
                row.append(int(mem[f_half * row_depth + f_kb]))
                f_kb += 1
                if f_kb == kb:
                    got += row
                    row, f_kb, clear = [], 0, True
        if we:
            mem[addr] = np.uint64(data)
        for h in (0, 1):
            if (row_set >> h) & 1:
                full[h] = True
        if clear:
            full[f_half] = False
            f_half ^= 1
            f_wait = int(rng.integers(1, 6)) if rng.random() < delay_p else 0
        if taken:
            sent += 1
            offered = False
        await RisingEdge(dut.ap_clk)
        await FallingEdge(dut.ap_clk)
    else:
        raise AssertionError(f"img2col did not finish in {max_cycles} cycles (seed {seed()})")
    # the rows still held by the consumer model
    while full[f_half]:
        got += row + [int(mem[f_half * row_depth + k]) for k in range(f_kb, kb)]
        row = []
        full[f_half] = False
        f_half ^= 1
        f_kb = 0
    assert sent == len(words), f"{len(words) - sent} feature-map words not taken (seed {seed()})"
    await FallingEdge(dut.ap_clk)
    _idle_inputs(dut)
    return np.array(got, dtype=np.uint64).view(np.int64), cycles


async def _setup(dut) -> None:
    start_clock(dut)
    _idle_inputs(dut)
    await reset(dut)


@cocotb.test()
async def random_geometries(dut):
    """Seeded random kernels/strides/paddings (asymmetric too), stream bubbles, a slow consumer."""
    core = load_core()
    rng = np.random.default_rng(seed())
    dut._log.info("seed %d", seed())
    await _setup(dut)
    done = 0
    i = 0
    while done < n_vectors():
        case = core.make_case(rng, 24, extremes=bool(i % 2))
        got, _ = await _run(dut, case, rng, bubble_p=0.3 * (i % 3 != 0), delay_p=0.3 * (i % 2))
        check_golden_and_csim(core, case, got)
        done += case.meta["cfg"]["m"]
        i += 1


@cocotb.test()
async def reset_mid_image(dut):
    """A reset in the middle of an image; the next image is exact."""
    core = load_core()
    rng = np.random.default_rng(seed() + 2)
    await _setup(dut)
    case = core.make_case(rng, 30)
    with contextlib.suppress(AssertionError):  # stopped on purpose, mid-image
        await _run(dut, case, rng, 0.0, 0.0, max_cycles=len(case.expected) // 3)
    _idle_inputs(dut)
    await reset(dut)
    case = core.make_case(rng, 30, extremes=True)
    got, _ = await _run(dut, case, rng, 0.2, 0.2)
    check_golden_and_csim(core, case, got)


@cocotb.test(skip=not cycles_enabled())
async def cycle_model(dut):
    """The reference 3x3 conv with a full-rate stream and consumer: cycles == exp_cycles() within 5 %."""
    core = load_core()
    rng = np.random.default_rng(seed() + 3)
    await _setup(dut)
    geo = core.reference_workload()
    case = core.make_case(rng, 0, geometry=geo)
    got, cycles = await _run(dut, case, rng, 0.0, 0.0)
    check_golden_and_csim(core, case, got)
    expected = core.exp_cycles(**geo)
    record("cycles", {"workload": geo, "measured": cycles, "expected": expected})
    assert abs(cycles - expected) <= 0.05 * expected, f"measured {cycles}, exp_cycles {expected} (seed {seed()})"
