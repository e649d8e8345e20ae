"""Boards that run the OQA overlay: the ``Board`` protocol, ``SimBoard`` (Verilator), ``PynqBoard``.

``OverlayDriver`` (:mod:`codesign.board.driver`) holds all register logic and runs unchanged on
every board. ``SimBoard`` lives in :mod:`codesign.board.sim`, ``PynqBoard`` in
:mod:`codesign.board.pynq` (which imports pynq lazily); see ``docs/board.md``.
"""

from codesign.board.base import Board, BoardError, BoardTimeout, ConfigHashMismatch

__all__ = ["Board", "BoardError", "BoardTimeout", "ConfigHashMismatch"]
