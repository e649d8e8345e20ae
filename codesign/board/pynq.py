"""``PynqBoard``: the ``Board`` surface on a PYNQ board (pynq is imported lazily).

Deliberately thin: it maps MMIO, ``allocate`` and the AXI DMA's channels onto the protocol.
Every register decision lives in :class:`codesign.board.driver.OverlayDriver`, which CI runs
against ``SimBoard``. Energy comes from the PMBus power rails where the board has them
(ZCU104: ``pynq.get_rails()``); elsewhere (PYNQ-Z2) ``energy_uj`` returns None and OQA falls
back to the activity counters x :mod:`codesign.board.energy`.

DMA errors are ``BoardError``s: the AXI DMA's status register is read after every transfer,
while polling and on a timeout, and a set error bit (DMAIntErr, DMASlvErr, DMADecErr, SG*)
raises with the decoded status and the channel's register dump (:mod:`codesign.board.axi_dma`).
A ``RuntimeError`` from pynq's ``transfer()`` (a channel halted by an earlier error) is
re-raised the same way.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from codesign.board import axi_dma
from codesign.board.base import BoardError
from codesign.hw.overlay import OverlaySpec

OVERLAY_IP = "overlay_0"  # instance names in the block design (vivado_scripts/overlay/*.tcl)
DMA_IP = "axi_dma_0"
DEFAULT_BITSTREAM = Path("build/overlay")
POLL_S = 1e-4


def _pynq() -> Any:
    try:
        import pynq
    except ImportError:
        raise BoardError(
            "--board pynq needs the `pynq` package, which exists only on a PYNQ board image; "
            "use --board sim here."
        ) from None
    return pynq


class PynqBoard:
    """A PYNQ board running the overlay bitstream of ``spec``."""

    def __init__(self, spec: OverlaySpec, bitstream: Path | str | None = None) -> None:
        pynq = _pynq()
        self.spec = spec
        path = Path(bitstream) if bitstream is not None else DEFAULT_BITSTREAM
        if path.is_dir():
            path = path / f"{spec.name}.bit"
        if not path.is_file():
            raise BoardError(f"overlay bitstream {path} not found; build it with `make bitstream` and copy "
                             f"{path.name} and its .hwh to the board.")
        try:
            self.overlay = pynq.Overlay(str(path))
        except Exception as err:  # pynq raises plain exceptions for a bad .bit/.hwh
            raise BoardError(f"pynq could not load {path}: {err}") from None
        ips = getattr(self.overlay, "ip_dict", {})
        for ip in (OVERLAY_IP, DMA_IP):
            if ip not in ips:
                raise BoardError(f"the bitstream {path.name} has no IP named {ip!r} (it has {', '.join(sorted(ips))}).")
        info = ips[OVERLAY_IP]
        self._mmio = pynq.MMIO(info["phys_addr"], info["addr_range"])
        dma = getattr(self.overlay, DMA_IP)
        self._send, self._recv = dma.sendchannel, dma.recvchannel
        self._dma_regs = pynq.MMIO(ips[DMA_IP]["phys_addr"], ips[DMA_IP]["addr_range"])
        self._allocate = pynq.allocate
        self._clocks = pynq.Clocks
        self.name = "pynq"
        self.device = spec.device
        self._rails = self._find_rails(pynq)
        self._energy_j = 0.0
        self._last: tuple[float, float] | None = None

    # ---- Board surface ---------------------------------------------------------------
    @property
    def clock_mhz(self) -> float:
        """FCLK0 as set by the overlay."""
        return float(self._clocks.fclk0_mhz)

    def read(self, offset: int) -> int:
        """MMIO read of the overlay's AXI-lite slave."""
        return int(self._mmio.read(offset)) & 0xFFFFFFFF

    def write(self, offset: int, value: int) -> None:
        """MMIO write."""
        self._mmio.write(offset, int(value) & 0xFFFFFFFF)

    def allocate(self, shape: int | tuple[int, ...], dtype: type = np.uint64) -> np.ndarray:
        """Physically contiguous buffer (pynq.allocate)."""
        return self._allocate(shape=shape, dtype=dtype)

    def dma_send(self, buf: np.ndarray, nwords: int | None = None) -> None:
        """Start the MM2S channel on ``buf``."""
        if hasattr(buf, "flush"):
            buf.flush()
        n = buf.size if nwords is None else nwords
        self._transfer("MM2S", self._send, buf, int(n) * buf.itemsize)

    def dma_recv(self, buf: np.ndarray, nwords: int | None = None) -> None:
        """Start the S2MM channel into ``buf``."""
        n = buf.size if nwords is None else nwords
        self._recv_buf = buf
        self._transfer("S2MM", self._recv, buf, int(n) * buf.itemsize)

    # ---- DMA status ------------------------------------------------------------------
    def dma_registers(self, channel: str) -> dict[str, int]:
        """The channel's AXI DMA registers ('MM2S' or 'S2MM'), by name."""
        return axi_dma.dump(self._dma_regs.read, channel)

    def _check_dma(self, channel: str, when: str) -> None:
        """Raise BoardError if the channel's status register has an error bit set."""
        regs = self.dma_registers(channel)
        if regs[f"{channel}_DMASR"] & axi_dma.ERROR_MASK:
            raise BoardError(f"DMA error {when}: {axi_dma.describe(channel, regs)}")

    def _transfer(self, channel: str, chan: Any, buf: np.ndarray, nbytes: int) -> None:
        self._check_dma(channel, f"before starting a {channel} transfer")
        try:
            chan.transfer(buf, nbytes=nbytes)
        except (RuntimeError, ValueError) as err:  # pynq: "DMA channel not started/idle", bad length
            raise BoardError(f"the {channel} transfer of {nbytes} bytes was refused ({err}): "
                             f"{axi_dma.describe(channel, self.dma_registers(channel))}") from None

    def _wait(self, channel: str, chan: Any, timeout_s: float) -> bool:
        """Poll until idle; an error bit raises at once (a halted channel never goes idle)."""
        deadline = time.monotonic() + timeout_s
        while not chan.idle:
            self._check_dma(channel, f"while waiting for the {channel} transfer")
            if time.monotonic() > deadline:
                self._check_dma(channel, f"at the {channel} timeout ({timeout_s * 1e3:.1f} ms)")
                return False  # no DMA error: the stall is in the overlay; the driver dumps its registers
            time.sleep(POLL_S)
        self._check_dma(channel, f"after the {channel} transfer")
        return True

    def dma_wait_send(self, timeout_s: float) -> bool:
        """Poll the MM2S channel until idle or the timeout."""
        return self._wait("MM2S", self._send, timeout_s)

    def dma_wait_recv(self, timeout_s: float) -> bool:
        """Poll the S2MM channel until idle (tlast seen) or the timeout."""
        ok = self._wait("S2MM", self._recv, timeout_s)
        if ok and hasattr(self._recv_buf, "invalidate"):
            self._recv_buf.invalidate()
        return ok

    # ---- energy ----------------------------------------------------------------------
    @staticmethod
    def _find_rails(pynq: Any) -> dict[str, Any]:
        get_rails = getattr(pynq, "get_rails", None)
        if get_rails is None:
            return {}
        try:
            rails = get_rails()
        except Exception:  # no PMBus on this board (PYNQ-Z2)
            return {}
        return {n: r for n, r in rails.items() if getattr(r, "power", None) is not None}

    def energy_uj(self) -> float | None:
        """Cumulative energy integrated from the rails' power at each call (trapezoid), in uJ."""
        if not self._rails:
            return None
        now = time.monotonic()
        watts = sum(float(r.power.value) for r in self._rails.values())
        if self._last is not None:
            t0, w0 = self._last
            self._energy_j += 0.5 * (w0 + watts) * (now - t0)
        self._last = (now, watts)
        return self._energy_j * 1e6

    def close(self) -> None:
        """Nothing to release (the overlay stays loaded)."""


__all__ = ["PynqBoard"]
