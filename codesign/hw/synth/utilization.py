"""Resource counts of a mapped netlist, the device capacity beside each, and the fit check.

Counting rules (the same as Vivado's utilization report, so the figures compare):

* ``LUT``: logic LUTs, LUT1..LUT6 (and INV / LUT6_2, which occupy one LUT each);
* ``LUTRAM``: LUTs used as distributed RAM or shift registers, in LUT equivalents
  (a RAM64M is four LUTs of one SLICEM, a RAM32X1D two, an SRL one; :data:`LUTRAM_LUTS`);
* ``SLICE_LUT`` = ``LUT`` + ``LUTRAM``: what the part's LUT count limits;
* ``FF``: FDRE/FDSE/FDCE/FDPE (and latches);
* ``DSP``: DSP48E1 (DSP48E2 on UltraScale+);
* ``BRAM36``: RAMB36 + RAMB18 / 2 (two RAMB18 share one RAMB36 site);
* ``CARRY``: CARRY4 (on UltraScale+ CARRY8, where Yosys' CARRY4 count as half a CARRY8 each).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codesign.hw.device import (
    DMA_ALLOWANCE_BRAM36,
    DMA_ALLOWANCE_FF,
    DMA_ALLOWANCE_LUT,
    DeviceCapacity,
    get_capacity,
)

LOGIC_LUTS = {"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "LUT6_2", "INV"}
FLIP_FLOPS = {
    "FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1", "LDCE", "LDPE",
}
# LUT equivalents of each distributed-RAM / shift-register primitive (UG474 ch. 2: a SLICEM has
# four 64-bit LUTs; RAM32M/RAM64M use all four, a dual-port 32/64-deep bit uses two, a 128-deep
# dual-port bit four, a 256-deep single-port bit four).
LUTRAM_LUTS = {
    "RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
    "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8,
    "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8,
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1, "SRL16": 1, "SRLC16": 1, "CFGLUT5": 1,
}
FAMILY_PRIMITIVES: dict[str, dict[str, tuple[str, ...]]] = {
    "xc7": {"DSP": ("DSP48E1",), "RAMB36": ("RAMB36E1",), "RAMB18": ("RAMB18E1",), "CARRY": ("CARRY4",)},
    # Yosys 0.70 maps UltraScale+ adders to CARRY4, which Vivado packs two to a CARRY8.
    "xcup": {"DSP": ("DSP48E2",), "RAMB36": ("RAMB36E2",), "RAMB18": ("RAMB18E2",), "CARRY": ("CARRY8", "CARRY4")},
}
CARRY_WEIGHT = {"CARRY8": 1.0, "CARRY4": 1.0}
CARRY_WEIGHT_XCUP = {"CARRY8": 1.0, "CARRY4": 0.5}
# Resources the fit check compares, in report order.
RESOURCES = ("SLICE_LUT", "LUT", "LUTRAM", "FF", "DSP", "BRAM36", "CARRY")


@dataclass(frozen=True)
class Utilization:
    """Used resources of one synthesized top, and the raw cell counts behind them."""

    top: str
    device: str
    used: dict[str, float]  # RESOURCES -> count (BRAM36 may be a half)
    primitives: dict[str, int]  # DSP48E1 / RAMB36E1 / RAMB18E1 / CARRY4 ... -> count
    lutram_cells: dict[str, int]
    cells: dict[str, int]

    def capacity(self) -> dict[str, int]:
        """Device capacity of each resource."""
        cap = get_capacity(self.device)
        return {
            "SLICE_LUT": cap.lut, "LUT": cap.lut, "LUTRAM": cap.lutram, "FF": cap.ff, "DSP": cap.dsp,
            "BRAM36": cap.bram36, "CARRY": cap.carry,
        }

    def to_dict(self) -> dict[str, Any]:
        """What ``utilization.json`` holds: each resource with its capacity, and the raw counts."""
        cap = self.capacity()
        fam = FAMILY_PRIMITIVES[get_capacity(self.device).yosys_family]
        prim_cap = {fam["DSP"][0]: cap["DSP"], fam["RAMB36"][0]: cap["BRAM36"],
                    fam["RAMB18"][0]: 2 * cap["BRAM36"], fam["CARRY"][0]: cap["CARRY"]}
        return {
            "top": self.top,
            "device": self.device,
            "resources": {r: {"used": self.used[r], "capacity": cap[r],
                              "percent": round(100.0 * self.used[r] / cap[r], 1)} for r in RESOURCES},
            "primitives": {p: {"used": n, "capacity": prim_cap.get(p)} for p, n in self.primitives.items()},
            "lutram_cells": self.lutram_cells,
            "cells": self.cells,
        }


def count_utilization(cells: dict[str, int], top: str, device: str) -> Utilization:
    """Fold raw cell counts into the resources of :data:`RESOURCES`."""
    family = get_capacity(device).yosys_family
    fam = FAMILY_PRIMITIVES[family]
    weights = CARRY_WEIGHT_XCUP if family == "xcup" else CARRY_WEIGHT
    lut = sum(n for t, n in cells.items() if t in LOGIC_LUTS)
    lutram_cells = {t: n for t, n in cells.items() if t in LUTRAM_LUTS}
    lutram = sum(LUTRAM_LUTS[t] * n for t, n in lutram_cells.items())
    prim = {name: cells.get(name, 0) for group in fam.values() for name in group}
    ramb36 = sum(cells.get(t, 0) for t in fam["RAMB36"])
    ramb18 = sum(cells.get(t, 0) for t in fam["RAMB18"])
    used: dict[str, float] = {
        "SLICE_LUT": lut + lutram, "LUT": lut, "LUTRAM": lutram,
        "FF": sum(n for t, n in cells.items() if t in FLIP_FLOPS),
        "DSP": sum(cells.get(t, 0) for t in fam["DSP"]),
        "BRAM36": ramb36 + ramb18 / 2,
        "CARRY": sum(weights[t] * cells.get(t, 0) for t in fam["CARRY"]),
    }
    return Utilization(top=top, device=device, used=used, primitives=prim, lutram_cells=lutram_cells,
                       cells=dict(cells))


@dataclass(frozen=True)
class Allowance:
    """Resources reserved for logic outside the synthesized top (DMA, interconnect)."""

    lut: int = 0
    ff: int = 0
    bram36: float = 0

    def reserved(self) -> dict[str, float]:
        """The reservation per resource of :data:`RESOURCES`."""
        return {"SLICE_LUT": self.lut, "LUT": self.lut, "FF": self.ff, "BRAM36": self.bram36}


# The documented allowance of issue 12 for the PS7 AXI interconnect and the AXI DMA.
DMA_ALLOWANCE = Allowance(lut=DMA_ALLOWANCE_LUT, ff=DMA_ALLOWANCE_FF, bram36=DMA_ALLOWANCE_BRAM36)
NO_ALLOWANCE = Allowance()


@dataclass(frozen=True)
class Overrun:
    """One resource the design needs more of than the device leaves it."""

    resource: str
    needed: float
    available: float
    capacity: int
    reserved: float

    def describe(self) -> str:
        """One sentence: ``DSP: needs 386, 220 available (of 220)``."""
        extra = f" after {self.reserved:g} reserved for the DMA and interconnect" if self.reserved else ""
        return (f"{self.resource} needs {self.needed:g} but only {self.available:g} are available "
                f"(device {self.capacity:g}{extra})")


def check_fit(util: Utilization, device: DeviceCapacity | str | None = None,
              allowance: Allowance = DMA_ALLOWANCE) -> list[Overrun]:
    """The resources of ``util`` that exceed ``device`` minus ``allowance`` (empty: it fits)."""
    if isinstance(device, DeviceCapacity):
        cap = {"SLICE_LUT": device.lut, "LUT": device.lut, "LUTRAM": device.lutram, "FF": device.ff,
               "DSP": device.dsp, "BRAM36": device.bram36, "CARRY": device.carry}
    else:
        cap = Utilization(util.top, device or util.device, util.used, {}, {}, {}).capacity()
    reserved = allowance.reserved()
    over = []
    for r in RESOURCES:
        avail = cap[r] - reserved.get(r, 0)
        if util.used[r] > avail:
            over.append(Overrun(r, util.used[r], avail, cap[r], reserved.get(r, 0)))
    return over


__all__ = [
    "DMA_ALLOWANCE", "LUTRAM_LUTS", "NO_ALLOWANCE", "RESOURCES", "Allowance", "Overrun", "Utilization",
    "check_fit", "count_utilization",
]
