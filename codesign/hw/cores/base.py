"""The base class of an IP core: one class per operator (FINN style).

A core module holds, in one place, everything about one operator: its golden function
(NumPy, calling :mod:`codesign.quant.dyadic` for any arithmetic), its analytic cycle and
resource estimates, its port contract, the names of its templates, and the flat integer
encoding used by the C-sim ABI (``csim_run``) so that Python, the g++ C-sim and the cocotb
testbench exchange the very same vectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from codesign.hw.spec import IPSpec


@dataclass(frozen=True)
class Port:
    """One RTL port of a core (the HLS view has the same names at interface level)."""

    name: str
    direction: str  # "in" / "out"
    width: int
    kind: str  # "clock", "reset", "ctrl", "axis", "wire"
    doc: str = ""

    def to_dict(self) -> dict[str, object]:
        """Plain-data view."""
        return asdict(self)


@dataclass
class CsimCase:
    """One C-sim / RTL test case in the flat ABI: config words, input words, expected output."""

    cfg: np.ndarray  # int64
    inputs: np.ndarray  # int64
    expected: np.ndarray  # int64, golden output
    meta: Mapping[str, object]


class Core:
    """Interface every core implements; subclasses live in ``codesign/hw/cores/<name>.py``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    hls_top_template: ClassVar[str] = ""  # HLS C++ top, hls_templates/<...>.cpp.j2
    csim_template: ClassVar[str] = ""  # extern "C" csim_run wrapper
    verilog_template: ClassVar[str] = ""  # Verilog-2005 twin
    is_hls: ClassVar[bool] = True  # has an HLS C++ view that is C-simulated

    def __init__(self, spec: IPSpec) -> None:
        self.spec = spec

    # --- contract ---------------------------------------------------------------------
    def ports(self) -> list[Port]:
        """Port contract shared by the HLS top and the Verilog twin."""
        raise NotImplementedError

    def params(self) -> dict[str, int]:
        """Named Verilog parameters / C++ constants rendered into the templates."""
        raise NotImplementedError

    # --- models -----------------------------------------------------------------------
    def exp_cycles(self, *args: Any, **workload: Any) -> int:  # each core names its workload
        """Analytic cycles of the core for a workload (no stalls)."""
        raise NotImplementedError

    def reference_workload(self) -> dict[str, int]:
        """The workload used for the figures (a 128x128x128 tile where it applies)."""
        raise NotImplementedError

    def resources(self) -> dict[str, int]:
        """Estimated LUT/DSP/BRAM36 of this core alone."""
        raise NotImplementedError

    def make_case(self, rng: np.random.Generator, n_vectors: int, extremes: bool = False) -> CsimCase:
        """Random (seeded) vectors in the flat C-sim ABI, with their golden output."""
        raise NotImplementedError

    # --- helpers ----------------------------------------------------------------------
    def describe(self) -> dict[str, object]:
        """What ip.json records about the core."""
        return {
            "core": self.name,
            "summary": self.summary,
            "spec": self.spec.to_dict(),
            "config_hash": f"0x{self.spec.config_hash:08x}",
            "config_sha256": self.spec.config_hash_hex,
            "params": self.params(),
            "ports": [p.to_dict() for p in self.ports()],
            "exp_cycles_reference": {
                "workload": self.reference_workload(),
                "cycles": self.exp_cycles(**self.reference_workload()),
            },
            "resources": self.resources(),
        }


def clog2(value: int) -> int:
    """Ceiling log2 for value >= 1 (0 for 1)."""
    return max(0, int(value - 1).bit_length())
