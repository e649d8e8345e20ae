"""The ``Board`` protocol: the PYNQ-like surface the overlay driver talks to.

A board gives MMIO on the overlay's AXI-lite slave (``read``/``write`` at byte offsets),
physically contiguous buffers (``allocate``), the AXI DMA's two channels (``dma_send`` /
``dma_recv`` post a transfer, ``dma_wait_send`` / ``dma_wait_recv`` block until it completes
or a timeout passes) and a few facts (``clock_mhz``, ``device``, ``name``). ``SimBoard``
(Verilator) and ``PynqBoard`` (pynq) implement it; :class:`codesign.board.driver.OverlayDriver`
holds all register logic and runs unchanged on both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from codesign.errors import CodesignError

if TYPE_CHECKING:
    from codesign.hw.overlay import OverlaySpec


class BoardError(CodesignError):
    """The board (real or simulated) cannot be used: missing, not answering, wrong bitstream."""


class BoardTimeout(BoardError):
    """The overlay did not finish (or did not answer) in time; the message holds a register dump."""


class ConfigHashMismatch(BoardError):
    """The loaded bitstream was built from a different spec than the driver's."""


@runtime_checkable
class Board(Protocol):
    """What the overlay driver needs from a board."""

    name: str
    device: str

    @property
    def clock_mhz(self) -> float:
        """Fabric clock of the overlay (FCLK0) in MHz."""
        ...

    def read(self, offset: int) -> int:
        """Read the 32-bit register at byte ``offset`` of the overlay's AXI-lite slave."""
        ...

    def write(self, offset: int, value: int) -> None:
        """Write the 32-bit register at byte ``offset``."""
        ...

    def allocate(self, shape: int | tuple[int, ...], dtype: type = np.uint64) -> np.ndarray:
        """A contiguous buffer the DMA can read or write."""
        ...

    def dma_send(self, buf: np.ndarray, nwords: int | None = None) -> None:
        """Post an MM2S transfer of the first ``nwords`` words of ``buf`` to the overlay's input stream."""
        ...

    def dma_recv(self, buf: np.ndarray, nwords: int | None = None) -> None:
        """Post an S2MM transfer of up to ``nwords`` words from the output stream into ``buf``."""
        ...

    def dma_wait_send(self, timeout_s: float) -> bool:
        """Wait for the MM2S transfer; False on timeout."""
        ...

    def dma_wait_recv(self, timeout_s: float) -> bool:
        """Wait for the S2MM transfer (tlast); False on timeout."""
        ...

    def energy_uj(self) -> float | None:
        """Cumulative energy from power rails in uJ, or None when the board has no rail sensors."""
        ...

    def close(self) -> None:
        """Release the board."""
        ...


class OverlayBoard(Board, Protocol):
    """A board that carries the spec of the overlay it runs (``SimBoard``, ``PynqBoard``)."""

    spec: OverlaySpec


__all__ = ["Board", "BoardError", "BoardTimeout", "ConfigHashMismatch", "OverlayBoard"]
