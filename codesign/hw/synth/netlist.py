"""The flattened netlist Yosys writes with ``write_json``, as plain data.

Only what the counts and the timing estimate need is kept: for each cell its type, parameters,
port directions and the net bits on each port; for each net bit a readable name. Yosys numbers
net bits with integers; constants appear as the strings ``"0"``, ``"1"``, ``"x"``, ``"z"``.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

Bit = int | str  # a net bit id, or a constant "0" / "1" / "x" / "z"


@dataclass(frozen=True)
class Cell:
    """One primitive instance of the mapped netlist."""

    name: str
    type: str
    params: dict[str, object]
    directions: dict[str, str]  # port -> "input" | "output" | "inout"
    connections: dict[str, list[Bit]]
    src: str = ""  # the RTL location Yosys recorded (``file.v:line.col-line.col``), "" if none

    def param_int(self, key: str, default: int = 0) -> int:
        """An integer parameter (Yosys writes them as binary strings), ``default`` if absent."""
        value = self.params.get(key, default)
        return value if isinstance(value, int) else default

    def param_str(self, key: str, default: str = "") -> str:
        """A string parameter (e.g. ``USE_MULT``), ``default`` if absent."""
        value = self.params.get(key, default)
        return value if isinstance(value, str) else default


@dataclass
class Netlist:
    """The top module of a flattened, technology-mapped design."""

    top: str
    cells: list[Cell]
    ports: dict[str, tuple[str, list[Bit]]]  # top port -> (direction, bits)
    bit_names: dict[int, str] = field(default_factory=dict)

    def cell_counts(self) -> dict[str, int]:
        """Instances per primitive type."""
        counts: dict[str, int] = {}
        for c in self.cells:
            counts[c.type] = counts.get(c.type, 0) + 1
        return dict(sorted(counts.items()))

    def name_of(self, bit: Bit) -> str:
        """The readable name of a net bit (``sig[3]``), or ``net<id>`` for an anonymous one."""
        if isinstance(bit, str):
            return f"1'b{bit}"
        return self.bit_names.get(bit, f"net{bit}")


_BINARY = re.compile(r"^[01xz]+$")


def parse_param(value: object) -> object:
    """Yosys JSON parameter -> int (binary strings of 0/1) or str (anything else).

    Yosys writes integers as binary strings and strings that could be mistaken for binary with a
    trailing space; a value holding ``x``/``z`` bits stays a string.
    """
    if isinstance(value, int):
        return value
    text = str(value)
    if _BINARY.match(text) and set(text) <= {"0", "1"}:
        return int(text, 2)
    return text.rstrip(" ") if text.endswith(" ") else text


def _best_names(netnames: dict[str, dict]) -> dict[int, str]:
    """For each bit, the shortest public name (``hide_name`` 0), else the shortest hidden one."""
    best: dict[int, tuple[int, int, str]] = {}
    for name, info in netnames.items():
        hidden = int(info.get("hide_name", 0))
        bits = info.get("bits", [])
        offset = int(info.get("offset", 0))
        upto = bool(info.get("upto", 0))
        clean = name[1:] if name.startswith("\\") else name
        for i, b in enumerate(bits):
            if not isinstance(b, int):
                continue
            idx = (offset + len(bits) - 1 - i) if upto else (offset + i)
            label = f"{clean}[{idx}]" if len(bits) > 1 else clean
            rank = (hidden, len(label), label)
            if b not in best or rank < best[b]:
                best[b] = rank
    return {b: r[2] for b, r in best.items()}


def load_netlist(path: Path, top: str | None = None) -> Netlist:
    """Read a ``write_json`` netlist (plain or ``.gz``) and return its top module."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        data = json.load(fh)
    modules = data["modules"]
    if top is None:
        tops = [n for n, m in modules.items() if int(m.get("attributes", {}).get("top", "0") or 0)]
        if len(tops) != 1:
            raise ValueError(f"{path}: cannot tell the top module among {len(modules)} modules")
        top = tops[0]
    mod = modules[top]
    cells = [
        Cell(
            name=name[1:] if name.startswith("\\") else name,
            type=c["type"],
            params={k: parse_param(v) for k, v in c.get("parameters", {}).items()},
            directions=dict(c.get("port_directions", {})),
            connections={p: list(bits) for p, bits in c.get("connections", {}).items()},
            src=str(c.get("attributes", {}).get("src", "")).split("|")[0],
        )
        for name, c in mod.get("cells", {}).items()
    ]
    ports = {p: (info["direction"], list(info["bits"])) for p, info in mod.get("ports", {}).items()}
    return Netlist(top=top, cells=cells, ports=ports, bit_names=_best_names(mod.get("netnames", {})))


__all__ = ["Bit", "Cell", "Netlist", "load_netlist", "parse_param"]
