"""Analytic resource model of a GEMM engine, and the derivation of lanes from a device budget.

The engine multiplies a ``tree``-wide activation vector (one 64-bit bus word) by ``lanes``
weight vectors per cycle, i.e. ``lanes * tree`` multipliers. Multipliers are placed first on
DSP slices, several narrow products per slice (DSP packing), and the rest on LUTs. The adder
tree, the accumulators and the tile banks are costed too. The derivation picks the largest
power-of-two ``lanes`` (<= 128) whose estimate fits the engine's share of the device.
See ``docs/hw.md`` for the formulas and their sources.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from codesign.hw.device import DeviceProfile

ACC_BITS = 32  # int32 accumulators (see codesign.quant.dyadic)
MAX_TILE = 128  # tiles are at most 128 per side
MAX_LANES = 128
BRAM36_WIDTH = 64  # data bits of a BRAM36 in 512x72 mode that we use (the 8 parity bits are unused)
BRAM36_DEPTH = 512
CONTROL_LUTS = 600  # tile-loop FSM, AXI-lite/AXIS glue, counters: a fixed estimate
DSP_PER_POST_LANE = 8  # two 32x31-bit multiplies (requant, h-swish requant), 4 DSP48 each
LUT_PER_POST_LANE = 450  # saturations, shifter, clamps


def elems_per_word(bits: int, bus_width: int = 64) -> int:
    """Elements of ``bits`` bits packed in one bus word: ``floor(bus_width / bits)``."""
    return bus_width // bits


def dsp_products_per_slice(bits: int, device: DeviceProfile) -> int:
    """Narrow products one DSP slice computes at once by operand packing (WP486-style).

    The engines multiply offset-binary (unsigned) codes, so a product is an unsigned
    ``2*bits``-bit field that cannot borrow from its neighbour. ``k`` weights share the
    signed A port at offsets ``F = 2*bits`` (top bit kept 0), the activation sits on the
    signed B port: ``(k-1)*F + bits <= A-1``, ``bits <= B-1`` and ``k*F <= P``. DSP48E1 (A = 25):
    k = 6, 4, 3, 2, 2, 2, 2 for 2..8 bit, so two INT8 products per slice even on 7-series.
    """
    field = 2 * bits
    if bits > device.dsp_b_width - 1:
        return 1
    k = (device.dsp_a_width - 1 - bits) // field + 1
    while k > 1 and k * field > device.dsp_p_width:
        k -= 1
    return max(1, k)


def lut_per_multiplier(bits: int) -> int:
    """LUT6 cost of one ``bits`` x ``(bits+1)`` LUT multiplier.

    FINN's MVAU estimate for LUT multipliers, ``(2*ceil((W+A)/6) - 1) * (W+A)``.
    """
    width = 2 * bits + 1
    return (2 * math.ceil(width / 6) - 1) * width


def adder_tree_luts(bits: int, tree: int) -> int:
    """LUTs of one lane's pipelined adder tree: one LUT per sum bit (carry chain).

    Level ``l`` has ``tree / 2^(l+1)`` adders of ``2*bits+2+l`` bits; summed this is about
    ``(tree-1) * (2*bits+1) + 2*tree``.
    """
    return (tree - 1) * (2 * bits + 1) + 2 * tree


def bram36_for(width_bits: int, depth: int) -> int:
    """BRAM36 blocks for a ``width_bits`` x ``depth`` buffer (512 x 64 data bits per block)."""
    return math.ceil(width_bits / BRAM36_WIDTH) * math.ceil(depth / BRAM36_DEPTH)


@dataclass(frozen=True)
class EngineEstimate:
    """Estimated resources of one GEMM engine (MAC tree + tile banks + post-process)."""

    lanes: int
    tree: int
    post_lanes: int
    multipliers: int
    dsp_products_per_slice: int
    dsp_multipliers: int
    lut_multipliers: int
    dsp: int
    lut: int
    bram36: int

    def to_dict(self) -> dict[str, int]:
        """Plain-data view."""
        return asdict(self)

    def fits(self, device: DeviceProfile) -> bool:
        """True when every resource is within the engine's share of ``device``."""
        return (
            self.dsp <= device.dsp_budget and self.lut <= device.lut_budget and self.bram36 <= device.bram_budget
        )

    def over_budget(self, device: DeviceProfile) -> list[str]:
        """Human-readable list of the resources that exceed the budget."""
        out = []
        for name, used, cap in (
            ("DSP", self.dsp, device.dsp_budget),
            ("LUT", self.lut, device.lut_budget),
            ("BRAM36", self.bram36, device.bram_budget),
        ):
            if used > cap:
                out.append(f"{name} {used} > {cap}")
        return out


def estimate_engine(
    bits: int,
    lanes: int,
    tree: int,
    post_lanes: int,
    tile_m: int,
    tile_n: int,
    tile_k: int,
    device: DeviceProfile,
) -> EngineEstimate:
    """Estimate DSP/LUT/BRAM36 of an engine with ``lanes`` x ``tree`` multipliers."""
    k = dsp_products_per_slice(bits, device)
    post_dsp = post_lanes * DSP_PER_POST_LANE
    mults = lanes * tree
    dsp_slices_for_macs = max(0, device.dsp_budget - post_dsp)
    dsp_mults = min(mults, dsp_slices_for_macs * k)
    lut_mults = mults - dsp_mults
    dsp = math.ceil(dsp_mults / k) + post_dsp
    lut = (
        lut_mults * lut_per_multiplier(bits)
        + lanes * adder_tree_luts(bits, tree)
        + lanes * ACC_BITS
        + post_lanes * LUT_PER_POST_LANE
        + CONTROL_LUTS
    )
    # Tile banks (double-buffered in depth): activations are read one bus word per cycle,
    # weights one k-row of `lanes` weights per cycle, partial sums one lane-vector per cycle.
    act_bram = bram36_for(elems_per_word(bits) * bits, 2 * math.ceil(tile_m * tile_k / elems_per_word(bits)))
    wgt_bram = bram36_for(lanes * bits, 2 * math.ceil(tile_k * tile_n / lanes))
    psum_bram = bram36_for(lanes * ACC_BITS, tile_m * math.ceil(tile_n / lanes))
    return EngineEstimate(
        lanes=lanes, tree=tree, post_lanes=post_lanes, multipliers=mults, dsp_products_per_slice=k,
        dsp_multipliers=dsp_mults, lut_multipliers=lut_mults, dsp=dsp, lut=lut,
        bram36=act_bram + wgt_bram + psum_bram,
    )


def derive_lanes(
    bits: int, tree: int, post_lanes: int, tile_m: int, tile_n: int, tile_k: int, device: DeviceProfile
) -> int:
    """Largest power-of-two lane count (<= 128, <= tile_n) whose engine fits ``device``; 0 if none."""
    best = 0
    lanes = 1
    while lanes <= min(MAX_LANES, tile_n):
        est = estimate_engine(bits, lanes, tree, post_lanes, tile_m, tile_n, tile_k, device)
        if est.fits(device):
            best = lanes
        lanes *= 2
    return best
