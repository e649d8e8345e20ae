"""Whole-overlay planning: the engines of every candidate width sized together to fit the part.

One engine per width is the overlay's structure (docs/hw.md, "Device budget"): each engine
is a ``mac_tree`` whose products sit in fabric (up to 4 bit) or in operand-packed DSP slices.
All engines, the shared post-process, the memories and the overlay's own logic share one
device, minus the allowance for the PS7 interconnect and the AXI DMA
(:data:`codesign.hw.device.DMA_ALLOWANCE_LUT` ...). :func:`plan_overlay` chooses, for every
width, the lane count (a power of two, at least the post-process lanes) and where its products
go, maximising the geometric mean of the engines' peak MACs/cycle over the plans whose
estimated resources (:mod:`codesign.hw.resources`) fit. Exhaustive up to four widths,
greedy (double the lanes of the slowest engine while it fits) above.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

from codesign.hw import resources as res
from codesign.hw.budget import IFM_DEPTH, ROW_DEPTH, WBANK_DEPTH, elems_per_word
from codesign.hw.device import (
    DMA_ALLOWANCE_BRAM36,
    DMA_ALLOWANCE_FF,
    DMA_ALLOWANCE_LUT,
    DeviceBudgetError,
    get_capacity,
    get_device,
)

LANE_CHOICES = (4, 8, 16, 32, 64, 128)
# Routability: the plan keeps the overlay's LUTs at or below this share of the part (a dense
# 7-series design much above ~80 % LUT rarely places and routes at its target clock).
LUT_CEILING = 0.80
EXHAUSTIVE_MAX_WIDTHS = 4


@dataclass(frozen=True)
class EnginePlan:
    """One engine: its width, lanes and where its products go."""

    bits: int
    lanes: int
    mult: str  # "lut" or "dsp"

    @property
    def peak_macs(self) -> int:
        """Products per cycle."""
        return self.lanes * elems_per_word(self.bits)


@dataclass(frozen=True)
class OverlayPlan:
    """The engines of one overlay, their estimated resources and the budget they fit."""

    device: str
    engines: tuple[EnginePlan, ...]
    estimate: res.Resources
    budget: res.Resources

    def engine(self, bits: int) -> EnginePlan:
        """The plan of the ``bits``-bit engine."""
        return next(e for e in self.engines if e.bits == bits)


def budget(device: str) -> res.Resources:
    """What the overlay may use on ``device``: capacity minus the DMA/interconnect allowance,
    LUTs capped at :data:`LUT_CEILING` of the part."""
    cap = get_capacity(device)
    return res.Resources(lut=min(cap.lut - DMA_ALLOWANCE_LUT, LUT_CEILING * cap.lut), ff=cap.ff - DMA_ALLOWANCE_FF,
                         dsp=cap.dsp, bram36=cap.bram36 - DMA_ALLOWANCE_BRAM36)


def estimate(device: str, engines: tuple[EnginePlan, ...], post_lanes: int = 4) -> res.Resources:
    """Estimated resources of an overlay with ``engines``."""
    prof = get_device(device)
    bank = max(e.lanes for e in engines)
    total = res.postproc(post_lanes) + res.shell(bank)
    total = total + res.Resources(bram36=res.memories_bram36(bank, WBANK_DEPTH, ROW_DEPTH, IFM_DEPTH))
    for e in engines:
        total = total + res.mac_tree(e.bits, e.lanes, e.mult, prof)
    return total


def _fits(est: res.Resources, cap: res.Resources) -> bool:
    return est.lut <= cap.lut and est.ff <= cap.ff and est.dsp <= cap.dsp and est.bram36 <= cap.bram36


def _ordered(engines: tuple[EnginePlan, ...]) -> bool:
    """A narrower engine never has fewer MACs per cycle than a wider one: the plan keeps the
    order the hardware-aware search expects of its candidates (fewer bits, not slower)."""
    by_bits = sorted(engines, key=lambda e: e.bits)
    return all(a.peak_macs >= b.peak_macs for a, b in itertools.pairwise(by_bits))


def _options(bits: int, post_lanes: int) -> list[EnginePlan]:
    mults = ("lut", "dsp") if 2 * bits < res.DSP_MIN_PRODUCT_BITS else ("dsp",)
    return [EnginePlan(bits, ln, m) for ln in LANE_CHOICES if ln >= post_lanes for m in mults]


def _score(engines: tuple[EnginePlan, ...], est: res.Resources, cap: res.Resources) -> tuple[float, float]:
    # geometric mean of peak MACs first; then the smaller footprint (fraction of the scarcest resource)
    gm = sum(math.log2(e.peak_macs) for e in engines)
    use = max(est.lut / cap.lut, est.dsp / max(cap.dsp, 1), est.ff / cap.ff, est.bram36 / cap.bram36)
    return gm, -use


def _greedy(device: str, widths: list[int], post_lanes: int, cap: res.Resources) -> tuple[EnginePlan, ...] | None:
    # start: fewest lanes, products in fabric where the width allows (saves DSP slices for the wide engines)
    cur = [EnginePlan(b, post_lanes, "lut" if 2 * b < res.DSP_MIN_PRODUCT_BITS else "dsp") for b in widths]
    if not _fits(estimate(device, tuple(cur), post_lanes), cap):
        return None
    while True:
        best = None
        for i in sorted(range(len(cur)), key=lambda j: cur[j].peak_macs):
            for m in ("lut", "dsp") if 2 * cur[i].bits < res.DSP_MIN_PRODUCT_BITS else ("dsp",):
                if cur[i].lanes * 2 > LANE_CHOICES[-1]:
                    continue
                trial = (*tuple(cur[:i]), EnginePlan(cur[i].bits, cur[i].lanes * 2, m), *tuple(cur[i + 1:]))
                if _ordered(trial) and _fits(estimate(device, trial, post_lanes), cap):
                    best = trial
                    break
            if best:
                break
        if best is None:
            return tuple(cur)
        cur = list(best)


@lru_cache(maxsize=64)
def plan_overlay(widths: tuple[int, ...], device: str = "xc7z020", post_lanes: int = 4) -> OverlayPlan:
    """Size the engines of ``widths`` together on ``device``; DeviceBudgetError if none fits."""
    want = sorted(set(widths))
    cap = budget(device)
    best: tuple[EnginePlan, ...] | None = None
    if len(want) <= EXHAUSTIVE_MAX_WIDTHS:
        best_score = None
        for combo in itertools.product(*(_options(b, post_lanes) for b in want)):
            if not _ordered(combo):
                continue
            est = estimate(device, combo, post_lanes)
            if not _fits(est, cap):
                continue
            score = _score(combo, est, cap)
            if best_score is None or score > best_score:
                best, best_score = combo, score
    else:
        best = _greedy(device, want, post_lanes, cap)
    if best is None:
        need = estimate(device, _smallest(want, device, post_lanes), post_lanes)
        over = [f"{name} {getattr(need, name):,.0f} > {getattr(cap, name):,.0f}"
                for name in ("lut", "ff", "dsp", "bram36") if getattr(need, name) > getattr(cap, name)]
        fitting = largest_fitting_subset(want, device, post_lanes)
        raise DeviceBudgetError(
            f"engines for widths {','.join(map(str, want))} do not fit {device} even at {post_lanes} lanes each "
            f"(estimate: {'; '.join(over)}, after the DMA/interconnect allowance). "
            f"The largest width set that fits: {','.join(map(str, fitting)) or 'none'}."
        )
    return OverlayPlan(device, best, estimate(device, best, post_lanes), cap)


def _smallest(widths: list[int], device: str, post_lanes: int) -> tuple[EnginePlan, ...]:
    """The smallest overlay of ``widths``: every engine at ``post_lanes`` lanes, products placed
    to minimise the share of the scarcest resource."""
    cap = budget(device)
    combos = itertools.product(*({EnginePlan(b, post_lanes, o.mult) for o in _options(b, post_lanes)} for b in widths))
    return min((tuple(c) for c in combos), key=lambda c: -_score(c, estimate(device, c, post_lanes), cap)[1])


def largest_fitting_subset(widths: list[int], device: str, post_lanes: int = 4) -> list[int]:
    """The largest subset of ``widths`` (widest widths kept first) whose smallest overlay fits."""
    cap = budget(device)
    for n in range(len(widths), 0, -1):
        for sub in itertools.combinations(sorted(widths, reverse=True), n):
            if _fits(estimate(device, _smallest(list(sub), device, post_lanes), post_lanes), cap):
                return sorted(sub)
    return []


__all__ = ["EnginePlan", "OverlayPlan", "budget", "estimate", "largest_fitting_subset", "plan_overlay"]
