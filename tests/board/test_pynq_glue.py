"""PynqBoard's glue, with a fake ``pynq`` module that only forwards to SimBoard.

The fake invents nothing: MMIO goes to the simulated AXI-lite slave, DMA channels to the
simulated DMA, ``idle`` advances the simulation until the transfer completes. So the same
driver code that runs on the board is exercised, through PynqBoard, against the RTL.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from board.util import random_layer
from codesign.board.base import BoardError
from codesign.board.driver import OverlayDriver
from codesign.quant.golden import INT_OPS

pytestmark = pytest.mark.rtl


def fake_pynq(sim, rails: dict | None = None) -> types.ModuleType:
    """A module with the pynq names PynqBoard uses, backed by ``sim``."""
    mod = types.ModuleType("pynq")

    class MMIO:
        def __init__(self, base: int, length: int) -> None:
            self.base, self.length = base, length

        def read(self, offset: int) -> int:
            return sim.read(offset)

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
                            "axi_dma_0": {"phys_addr": 0x40400000, "addr_range": 0x10000}}
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
