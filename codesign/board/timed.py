"""``TimedBoard``: a board whose calls are timed, and the bus cycles of a layer.

The overlay's counters cover each job from start to done. What a layer costs besides is bus
time: the AXI-lite descriptor and post-process writes, the DMA set-up and the done polls. On
the simulated board that is the simulated fabric cycles outside the jobs' counters; on
hardware it is the wall time inside board calls minus the counted time, at the board clock.
OQA writes it into the hardware table (``cycles_bus``) and deployment measures it the same way,
so the ILP's summed prediction and the deployed latency count the same things.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from codesign.board.base import Board


class TimedBoard:
    """A board whose calls are timed: host time outside them is the driver's own work."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.seconds = 0.0
        self.name, self.device = board.name, board.device

    @property
    def clock_mhz(self) -> float:
        """The wrapped board's clock."""
        return self.board.clock_mhz

    def _timed(self, fn: Any, *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds += time.perf_counter() - t0

    def read(self, offset: int) -> int:
        """Timed :meth:`Board.read`."""
        return self._timed(self.board.read, offset)

    def write(self, offset: int, value: int) -> None:
        """Timed :meth:`Board.write`."""
        self._timed(self.board.write, offset, value)

    def allocate(self, shape: int | tuple[int, ...], dtype: type = np.uint64) -> np.ndarray:
        """Timed :meth:`Board.allocate`."""
        return self._timed(self.board.allocate, shape, dtype)

    def dma_send(self, buf: np.ndarray, nwords: int | None = None) -> None:
        """Timed :meth:`Board.dma_send`."""
        self._timed(self.board.dma_send, buf, nwords)

    def dma_recv(self, buf: np.ndarray, nwords: int | None = None) -> None:
        """Timed :meth:`Board.dma_recv`."""
        self._timed(self.board.dma_recv, buf, nwords)

    def dma_wait_send(self, timeout_s: float) -> bool:
        """Timed :meth:`Board.dma_wait_send`."""
        return self._timed(self.board.dma_wait_send, timeout_s)

    def dma_wait_recv(self, timeout_s: float) -> bool:
        """Timed :meth:`Board.dma_wait_recv`."""
        return self._timed(self.board.dma_wait_recv, timeout_s)

    def energy_uj(self) -> float | None:
        """The wrapped board's rail energy."""
        return self.board.energy_uj()

    def close(self) -> None:
        """Close the wrapped board."""
        self.board.close()

    def cycles(self) -> int | None:
        """Simulated cycles so far (the simulated board only; None on hardware)."""
        c = getattr(self.board, "cycle", None)
        return None if c is None else int(c)


def bus_cycles(board: TimedBoard, cycle0: int | None, seconds0: float, counted: int) -> int:
    """Bus cycles of the work since ``board.cycles() == cycle0`` / ``board.seconds == seconds0``
    whose jobs' counters sum to ``counted`` (see the module docstring); never negative."""
    cycle1 = board.cycles()
    if cycle0 is not None and cycle1 is not None:
        return max(0, cycle1 - cycle0 - counted)
    return max(0, round((board.seconds - seconds0) * board.clock_mhz * 1e6) - counted)


__all__ = ["TimedBoard", "bus_cycles"]
