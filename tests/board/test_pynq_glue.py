"""PynqBoard's glue, with a fake ``pynq`` module that only forwards to SimBoard.

The fake invents nothing: MMIO goes to the simulated AXI-lite slave, DMA channels to the
simulated DMA, ``idle`` advances the simulation until the transfer completes. So the same
driver code that runs on the board is exercised, through PynqBoard, against the RTL.
"""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest

from board.util import random_layer
from codesign.board.base import BoardError
from codesign.board.driver import OverlayDriver
from codesign.quant.golden import INT_OPS

pytestmark = pytest.mark.rtl


DMA_BASE = 0x40400000


def fake_pynq(sim, rails: dict | None = None, dma_regs: dict[int, int] | None = None) -> types.ModuleType:
    """A module with the pynq names PynqBoard uses, backed by ``sim``.

    The AXI DMA's own registers (at ``DMA_BASE``) read from ``dma_regs`` (offset -> value;
    0 = running, no error bit), which a test fills to inject a DMA status.
    """
    mod = types.ModuleType("pynq")
    regs = {} if dma_regs is None else dma_regs

    class MMIO:
        def __init__(self, base: int, length: int) -> None:
            self.base, self.length = base, length

        def read(self, offset: int) -> int:
            return regs.get(offset, 0) if self.base == DMA_BASE else sim.read(offset)

        def write(self, offset: int, value: int) -> None:
            sim.write(offset, value)

    class Channel:
        def __init__(self, send: bool) -> None:
            self.send = send

        def transfer(self, buf, start: int = 0, nbytes: int = 0) -> None:
            n = nbytes // buf.itemsize if nbytes else buf.size
            (sim.dma_send if self.send else sim.dma_recv)(buf, n)

        @property
        def idle(self) -> bool:
            return (sim.dma_wait_send if self.send else sim.dma_wait_recv)(1e-4)

    class Overlay:
        def __init__(self, path: str) -> None:
            self.path = path
            self.ip_dict = {"overlay_0": {"phys_addr": 0x43C00000, "addr_range": 0x10000},
                            "axi_dma_0": {"phys_addr": DMA_BASE, "addr_range": 0x10000}}
            self.axi_dma_0 = types.SimpleNamespace(sendchannel=Channel(True), recvchannel=Channel(False))

    mod.Overlay = Overlay
    mod.MMIO = MMIO
    mod.allocate = lambda shape, dtype: np.zeros(shape, dtype=dtype)
    mod.Clocks = types.SimpleNamespace(fclk0_mhz=sim.clock_mhz)
    if rails is not None:
        mod.get_rails = lambda: rails
    return mod


@pytest.fixture
def bitfile(tmp_path, overlay):
    path = tmp_path / f"{overlay.name}.bit"
    path.write_bytes(b"\0")
    return path


def test_driver_through_pynqboard_is_bit_exact(sim_board, overlay, bitfile, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pynq", fake_pynq(sim_board))
    from codesign.board.pynq import PynqBoard

    board = PynqBoard(overlay, bitfile.parent)
    assert board.clock_mhz == sim_board.clock_mhz and board.energy_uj() is None
    node, x, in_t, out_t = random_layer(np.random.default_rng(11), "conv", 4, cout=20)
    run = OverlayDriver(board, overlay).run_layer(node, x, in_t, out_t)
    np.testing.assert_array_equal(run.output, INT_OPS["conv"](node, [x], out_t))
    assert run.counters.cycles_total > 0 and run.energy_uj_rails is None


def test_rails_give_energy(sim_board, overlay, bitfile, monkeypatch) -> None:
    rail = types.SimpleNamespace(power=types.SimpleNamespace(value=2.0))
    monkeypatch.setitem(sys.modules, "pynq", fake_pynq(sim_board, rails={"VCCINT": rail}))
    from codesign.board.pynq import PynqBoard

    board = PynqBoard(overlay, bitfile)
    e0 = board.energy_uj()
    node, x, in_t, out_t = random_layer(np.random.default_rng(12), "dense", 8, cin=40, cout=8)
    run = OverlayDriver(board, overlay).run_layer(node, x, in_t, out_t)
    assert e0 == 0.0 and run.energy_uj_rails is not None and run.energy_uj_rails > 0


def test_missing_bitstream_and_missing_pynq(overlay, tmp_path, monkeypatch) -> None:
    from codesign.board.pynq import PynqBoard

    monkeypatch.setitem(sys.modules, "pynq", None)  # import pynq -> ImportError
    with pytest.raises(BoardError, match="use --board sim"):
        PynqBoard(overlay, tmp_path)
    monkeypatch.setitem(sys.modules, "pynq", types.ModuleType("pynq"))
    with pytest.raises(BoardError, match="make bitstream"):
        PynqBoard(overlay, tmp_path)


# ---- DMA errors (no simulator needed: the DMA's status register is injected) ---------------------------
class StubSim:
    """Just enough of a board for PynqBoard's DMA path: transfers are accepted, idleness is set by the test."""

    clock_mhz = 100.0

    def __init__(self) -> None:
        self.idle = {"send": False, "recv": False}

    def read(self, offset: int) -> int:
        return 0

    def write(self, offset: int, value: int) -> None:
        pass

    def dma_send(self, buf, n) -> None:
        pass

    def dma_recv(self, buf, n) -> None:
        pass

    def dma_wait_send(self, timeout_s: float) -> bool:
        return self.idle["send"]

    def dma_wait_recv(self, timeout_s: float) -> bool:
        return self.idle["recv"]


# PG021 DMASR bit positions, written out from the data sheet (independent of codesign.board.axi_dma).
PG021_ERRORS = {"DMAIntErr": 4, "DMASlvErr": 5, "DMADecErr": 6, "SGIntErr": 8, "SGSlvErr": 9, "SGDecErr": 10}
HALTED, IDLE, ERR_IRQ = 1 << 0, 1 << 1, 1 << 14
DMASR = {"MM2S": 0x04, "S2MM": 0x34}


def stub_board(monkeypatch, tmp_path, regs: dict[int, int]):
    stub = StubSim()
    monkeypatch.setitem(sys.modules, "pynq", fake_pynq(stub, dma_regs=regs))
    from codesign.board.pynq import PynqBoard

    spec = types.SimpleNamespace(name="ovl", device="xc7z020")
    (tmp_path / "ovl.bit").write_bytes(b"\0")
    return PynqBoard(spec, tmp_path), stub


@pytest.mark.unit
@pytest.mark.parametrize("channel", ["MM2S", "S2MM"])
@pytest.mark.parametrize("error", list(PG021_ERRORS))
def test_each_dma_error_is_a_decoded_board_error(monkeypatch, tmp_path, channel: str, error: str) -> None:
    regs: dict[int, int] = {}
    board, _stub = stub_board(monkeypatch, tmp_path, regs)
    buf = board.allocate(8, np.uint64)
    (board.dma_send if channel == "MM2S" else board.dma_recv)(buf, 8)
    regs[DMASR[channel]] = HALTED | ERR_IRQ | 1 << PG021_ERRORS[error]  # the channel halts on the error
    regs[DMASR[channel] + 0x24] = 64  # LENGTH
    wait = board.dma_wait_send if channel == "MM2S" else board.dma_wait_recv
    t0 = time.monotonic()
    with pytest.raises(BoardError) as err:
        wait(5.0)
    assert time.monotonic() - t0 < 1.0  # raised while polling, not after the 5 s timeout
    msg = str(err.value)
    status = HALTED | ERR_IRQ | 1 << PG021_ERRORS[error]
    assert f"{channel} status 0x{status:08X}" in msg and error in msg and "Halted" in msg
    assert f"{channel}_DMASR=0x{status:08X}" in msg and f"{channel}_LENGTH=0x00000040" in msg
    assert [e for e in PG021_ERRORS if e in msg] == [error]


@pytest.mark.unit
def test_error_after_idle_timeout_and_refused_transfer(monkeypatch, tmp_path) -> None:
    regs: dict[int, int] = {}
    board, stub = stub_board(monkeypatch, tmp_path, regs)
    buf = board.allocate(4, np.uint64)
    board.dma_recv(buf, 4)
    assert board.dma_wait_recv(0.002) is False  # timeout, DMA healthy: the driver reports the overlay stall
    stub.idle["recv"] = True
    regs[DMASR["S2MM"]] = IDLE | 1 << PG021_ERRORS["DMAIntErr"]  # went idle, but with an error
    with pytest.raises(BoardError, match=r"after the S2MM transfer.*DMAIntErr"):
        board.dma_wait_recv(1.0)
    regs[DMASR["S2MM"]] = IDLE
    assert board.dma_wait_recv(1.0) is True

    def refuse(buf, start=0, nbytes=0):
        raise RuntimeError("DMA channel not started")

    board._send.transfer = refuse
    with pytest.raises(BoardError, match=r"MM2S transfer of 32 bytes was refused \(DMA channel not started\)"):
        board.dma_send(buf, 4)
    regs[DMASR["MM2S"]] = HALTED | 1 << PG021_ERRORS["DMADecErr"]
    with pytest.raises(BoardError, match=r"before starting a MM2S transfer.*DMADecErr"):
        board.dma_send(buf, 4)
