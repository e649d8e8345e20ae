"""Shared cocotb 2.x helpers: clock/reset, AXI-Stream driver and monitor, references.

The driver inserts random bubbles (tvalid low) and the monitor random back-pressure (tready
low). Handshakes are decided in the ReadOnly phase before the rising edge, which is exact on
both Verilator and Icarus. The seed comes from ``CODESIGN_SEED`` and is printed with every
failure message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from codesign.hw.cores import CORES, Core
from codesign.hw.spec import IPSpec

CLOCK_NS = 10


def seed() -> int:
    """Seed of this run."""
    return int(os.environ.get("CODESIGN_SEED", "1"))


def n_vectors() -> int:
    """Vectors per case (>= 200 in the regression)."""
    return int(os.environ.get("CODESIGN_VECTORS", "200"))


def cycles_enabled() -> bool:
    """Whether to run the cycle-model test (the runner enables it on one simulator)."""
    return os.environ.get("CODESIGN_CYCLES", "0") == "1"


def load_core() -> Core:
    """The core under test, rebuilt from the generated ip.json."""
    ip_dir = Path(os.environ["CODESIGN_IP_DIR"])
    spec = IPSpec.from_dict(json.loads((ip_dir / "ip.json").read_text())["spec"])
    return CORES[spec.core](spec)


def csim_library():
    """The C-sim of the core (ctypes) if the runner passed one, else None."""
    path = os.environ.get("CODESIGN_CSIM_LIB")
    if not path:
        return None
    from codesign.hw.csim import CsimLibrary

    return CsimLibrary(Path(path))


def record(key: str, value: object) -> None:
    """Append a measurement to the JSON file named by ``CODESIGN_RESULTS`` (if set)."""
    path = os.environ.get("CODESIGN_RESULTS")
    if not path:
        return
    p = Path(path)
    data = json.loads(p.read_text()) if p.exists() else {}
    data[key] = value
    p.write_text(json.dumps(data, indent=2, sort_keys=True))


def start_clock(dut) -> None:
    """10 ns clock on ap_clk."""
    cocotb.start_soon(Clock(dut.ap_clk, CLOCK_NS, unit="ns").start())


async def reset(dut, cycles: int = 4) -> None:
    """Synchronous active-low reset."""
    dut.ap_rst_n.value = 0
    for _ in range(cycles):
        await RisingEdge(dut.ap_clk)
    dut.ap_rst_n.value = 1
    await RisingEdge(dut.ap_clk)


async def drive_axis(dut, prefix: str, beats: list[dict[str, int]], rng: np.random.Generator,
                     bubble_p: float = 0.0) -> int:
    """Send ``beats`` (dicts of field -> value, e.g. tdata/tlast/tuser) on ``<prefix>_*``.

    Returns the cycle count from the first to the last accepted beat.
    """
    valid = getattr(dut, f"{prefix}_tvalid")
    ready = getattr(dut, f"{prefix}_tready")
    i = cycles = 0
    while i < len(beats):
        await RisingEdge(dut.ap_clk)
        if rng.random() < bubble_p:
            valid.value = 0
        else:
            valid.value = 1
            for field, value in beats[i].items():
                getattr(dut, f"{prefix}_{field}").value = int(value)
        await ReadOnly()
        if int(valid.value) and int(ready.value):
            i += 1
        cycles += 1
    await RisingEdge(dut.ap_clk)
    valid.value = 0
    return cycles


async def collect_axis(dut, prefix: str, count: int, rng: np.random.Generator, stall_p: float = 0.0,
                       fields: tuple[str, ...] = ("tdata",), timeout: int = 200_000) -> list[dict[str, int]]:
    """Receive ``count`` beats from ``<prefix>_*`` with random back-pressure."""
    valid = getattr(dut, f"{prefix}_tvalid")
    ready = getattr(dut, f"{prefix}_tready")
    out: list[dict[str, int]] = []
    for _ in range(timeout):
        if len(out) == count:
            break
        await RisingEdge(dut.ap_clk)
        ready.value = 0 if rng.random() < stall_p else 1
        await ReadOnly()
        if int(valid.value) and int(ready.value):
            out.append({f: getattr(dut, f"{prefix}_{f}").value.to_unsigned() for f in fields})
    await RisingEdge(dut.ap_clk)
    ready.value = 0
    assert len(out) == count, f"timeout: got {len(out)} of {count} output beats (seed {seed()})"
    return out


def assert_equal(name: str, got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Bit-exact comparison with a message naming the first mismatch and the seed."""
    got = np.asarray(got, dtype=np.int64)
    want = np.asarray(want, dtype=np.int64)
    if got.shape != want.shape or not np.array_equal(got, want):
        bad = np.flatnonzero(got.ravel() != want.ravel()) if got.shape == want.shape else [None]
        i = bad[0]
        detail = f"first mismatch at {i}: got {got.ravel()[i]} want {want.ravel()[i]}" if i is not None else \
            f"shape {got.shape} vs {want.shape}"
        raise AssertionError(f"{name}: RTL != {what}; {detail}; {len(bad)} mismatches (seed {seed()})")


def check_golden_and_csim(core: Core, case, got: np.ndarray) -> None:
    """Assert RTL output == golden vectors and, when the C-sim library is built, == C-sim."""
    assert_equal(core.spec.name, got, case.expected, "golden")
    lib = csim_library()
    if lib is not None:
        assert_equal(core.spec.name, got, lib.run(case.cfg, case.inputs, len(case.expected)), "C-sim")
