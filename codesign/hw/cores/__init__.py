"""One module per IP core; :data:`CORES` maps core names to their classes."""

from __future__ import annotations

from codesign.hw.cores.base import Core, CsimCase, Port
from codesign.hw.cores.mac_tree import MacTree
from codesign.hw.cores.postproc import Postproc

CORES: dict[str, type[Core]] = {c.name: c for c in (MacTree, Postproc)}

__all__ = ["CORES", "Core", "CsimCase", "Port"]
