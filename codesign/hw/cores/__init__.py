"""One module per IP core; :data:`CORES` maps core names to their classes."""

from __future__ import annotations

from codesign.hw.cores.base import Core, CsimCase, Port
from codesign.hw.cores.bram_bank import BramBank
from codesign.hw.cores.cycle_counter import CycleCounter
from codesign.hw.cores.img2col import Img2col
from codesign.hw.cores.mac_tree import MacTree
from codesign.hw.cores.postproc import Postproc
from codesign.hw.cores.tiled_matmul import TiledMatmul

CORES: dict[str, type[Core]] = {c.name: c for c in (Img2col, MacTree, TiledMatmul, Postproc, BramBank, CycleCounter)}

__all__ = ["CORES", "Core", "CsimCase", "Port"]
