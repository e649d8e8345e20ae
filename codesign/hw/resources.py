"""Resource estimates of the generated cores, calibrated on open synthesis.

The figures are *estimates*: a line in ``lanes`` through two Yosys ``synth_xilinx`` runs per
configuration (``codesign/hw/data/resources_xc7.json``, written by
``scripts/calibrate_resources.py``), plus exact counts where the RTL fixes them (DSP slices of
packed products, block RAMs of the memories). ``tests/synth/test_estimates.py`` measures their
error against a synthesis at a lane count outside the fit. Reports that quote a synthesized
figure take it from :mod:`codesign.hw.synth`, never from here.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from codesign.hw.budget import BRAM36_DEPTH, BRAM36_WIDTH, dsp_products_per_slice, elems_per_word
from codesign.hw.device import DeviceProfile

DATA = Path(__file__).parent / "data" / "resources_xc7.json"
# Yosys maps a multiply to a DSP slice from a 9-bit product on (synth_xilinx DSP_Y_MINWIDTH).
DSP_MIN_PRODUCT_BITS = 9


@dataclass(frozen=True)
class Resources:
    """LUT / FF / DSP / BRAM36 of one core or of the whole overlay."""

    lut: float = 0.0
    ff: float = 0.0
    dsp: float = 0.0
    bram36: float = 0.0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.lut + other.lut, self.ff + other.ff, self.dsp + other.dsp, self.bram36 + other.bram36)

    def to_dict(self) -> dict[str, float]:
        """Plain-data view."""
        return {k: round(v, 1) for k, v in asdict(self).items()}


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    return json.loads(DATA.read_text())


def _line(entries: dict[str, dict[str, float]], key: str, lanes: int, metric: str) -> float:
    lo, hi = _table()["lanes"]
    a, b = entries[f"{key}_{lo}"][metric], entries[f"{key}_{hi}"][metric]
    return a + (b - a) * (lanes - lo) / (hi - lo)


def mac_tree_dsp(bits: int, lanes: int, mult: str, device: DeviceProfile) -> int:
    """DSP slices of a MAC tree: one per (group of packed lanes, tree position) whose packed
    product reaches the DSP mapping width; narrower groups stay in fabric."""
    if mult != "dsp":
        return 0
    k = dsp_products_per_slice(bits, device)
    tree = elems_per_word(bits)
    slices = 0
    for g in range(math.ceil(lanes / k)):
        nk = min(k, lanes - g * k)
        if (nk - 1) * 2 * bits + 2 * bits >= DSP_MIN_PRODUCT_BITS:
            slices += tree
    return slices


def mac_tree(bits: int, lanes: int, mult: str, device: DeviceProfile) -> Resources:
    """Estimated resources of ``mac_tree`` at ``bits`` with ``lanes`` lanes."""
    entries = _table()["mac_tree"]
    key = f"{bits}_{mult}"
    return Resources(lut=_line(entries, key, lanes, "lut"), ff=_line(entries, key, lanes, "ff"),
                     dsp=mac_tree_dsp(bits, lanes, mult, device))


def postproc(post_lanes: int) -> Resources:
    """Estimated resources of the post-process (measured at its calibrated lane count, scaled)."""
    (lanes_s, m), = _table()["postproc"].items()
    f = post_lanes / int(lanes_s)
    # parameter memories: one 1024 x 70-bit copy per lane (2 BRAM36 each)
    return Resources(lut=m["lut"] * f, ff=m["ff"] * f, dsp=m["dsp"] * f, bram36=2 * post_lanes)


def memories_bram36(bank_lanes: int, wbank_depth: int, row_depth: int, ifm_depth: int) -> float:
    """Block RAMs of the overlay's memories (64-bit words): weight bank lanes, row buffer, IFM buffer."""
    def blocks(depth: int) -> int:
        return math.ceil(depth * 64 / (BRAM36_WIDTH * BRAM36_DEPTH))
    return bank_lanes * blocks(wbank_depth) + blocks(2 * row_depth) + blocks(ifm_depth)


def shell(bank_lanes: int) -> Resources:
    """The overlay's own logic (register file, receiver, feeder, img2col, FIFOs, hold register,
    packer, counters): the synthesized overlay {4,8} (32 bank lanes) minus its cores' estimates.
    The per-bank-lane part is a structural count, not a fit (per lane: 64 operand-flip LUTs,
    32 accumulator-mux LUTs and ~4 of FIFO LUTRAM; 64 weight read-register and 32 hold-register
    flip-flops); the intercept makes the total at 32 lanes the measured one."""
    s = _table()["shell"]
    return Resources(lut=s["lut"] + s["lut_per_lane"] * bank_lanes, ff=s["ff"] + s["ff_per_lane"] * bank_lanes)


__all__ = ["Resources", "mac_tree", "mac_tree_dsp", "memories_bram36", "postproc", "shell"]
