"""Where each inferred memory went: block RAM, distributed RAM (LUTRAM) or plain flip-flops.

Two records of the Yosys run are joined: the ``$mem_v2`` cells written just before memory
mapping (``memories.json``: name, width, depth, which read ports are clocked, ``ram_style``),
and the ``memory_libmap`` log lines ``mapping memory <module>.<name> via <cell>``. A memory with
no such line was left to ``memory_map``, i.e. became flip-flops and multiplexers.

A memory is *meant to be block RAM* when its RTL says so (``ram_style``/``rom_style`` =
``block``) or when it holds at least :data:`BRAM_MIN_BITS` bits: half a RAMB18, below which
distributed RAM is the cheaper home and Vivado picks it too.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from codesign.hw.synth.netlist import parse_param

BRAM_MIN_BITS = 9 * 1024
_MAPPING = re.compile(r"^mapping memory (\S+) via (\S+)", re.MULTILINE)


@dataclass(frozen=True)
class Memory:
    """One inferred memory and the primitive family it was mapped to."""

    name: str
    width: int
    depth: int
    clocked_reads: int  # read ports with a registered (synchronous) read
    read_ports: int
    ram_style: str  # the RTL's ram_style / rom_style attribute, "" when absent
    mapped_to: str  # "bram" | "lutram" | "ff" | "other"
    via: str  # the Yosys mapping cell, e.g. $__XILINX_BLOCKRAM_TDP_

    @property
    def bits(self) -> int:
        """Capacity in bits."""
        return self.width * self.depth

    @property
    def meant_for_bram(self) -> bool:
        """Whether this memory should be block RAM (see the module docstring)."""
        if self.ram_style in ("distributed", "registers", "logic"):
            return False
        return self.ram_style == "block" or self.bits >= BRAM_MIN_BITS

    def reason(self) -> str:
        """Why a memory is not block RAM, as far as the netlist tells."""
        if self.mapped_to == "bram":
            return ""
        if self.clocked_reads < self.read_ports:
            return "combinational read port (block RAM needs a registered read)"
        return f"mapped to {self.mapped_to} by the Yosys cost model"

    def to_dict(self) -> dict[str, object]:
        """Plain-data view (utilization.json / report)."""
        d = asdict(self)
        d.update(bits=self.bits, meant_for_bram=self.meant_for_bram, reason=self.reason())
        return d


def _family(via: str) -> str:
    if "BLOCKRAM" in via or "RAMB" in via:
        return "bram"
    if "LUTRAM" in via:
        return "lutram"
    return "other"


def _ones(value: object) -> int:
    return bin(value).count("1") if isinstance(value, int) else 0


def read_memories(memories_json: Path, log_text: str) -> list[Memory]:
    """Join the pre-mapping ``$mem_v2`` cells with the ``memory_libmap`` log lines."""
    path = Path(memories_json)
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    via = {full.split(".", 1)[-1]: cell for full, cell in _MAPPING.findall(log_text)}
    out = []
    for module in data.get("modules", {}).values():
        for cell_name, cell in module.get("cells", {}).items():
            if cell.get("type") != "$mem_v2":
                continue
            params: dict[str, Any] = {k: parse_param(v) for k, v in cell.get("parameters", {}).items()}
            memid = str(params.get("MEMID", cell_name)).lstrip("\\")
            attrs = cell.get("attributes", {})
            style = str(attrs.get("ram_style", attrs.get("rom_style", ""))).strip().lower()
            mapped = via.get(memid)
            rd_ports = params.get("RD_PORTS", 0)
            out.append(Memory(
                name=memid, width=int(params.get("WIDTH", 0) or 0), depth=int(params.get("SIZE", 0) or 0),
                clocked_reads=_ones(params.get("RD_CLK_ENABLE", 0)),
                read_ports=rd_ports if isinstance(rd_ports, int) else 0, ram_style=style,
                mapped_to=_family(mapped) if mapped else "ff", via=mapped or "memory_map (flip-flops)",
            ))
    return sorted(out, key=lambda m: m.name)


def misplaced(memories: list[Memory]) -> list[Memory]:
    """Memories meant to be block RAM that ended up as LUTRAM or flip-flops."""
    return [m for m in memories if m.meant_for_bram and m.mapped_to != "bram"]


__all__ = ["BRAM_MIN_BITS", "Memory", "misplaced", "read_memories"]
