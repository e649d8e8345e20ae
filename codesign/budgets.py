"""Hardware budgets and the one evaluator of what a bit assignment costs against them.

Every method (the OHQ ILP, HAQ's budget enforcement, the baselines' reports) and the search's
evaluation price a configuration here, with the same arithmetic and the same tolerance:

* **size** in Mbit (10^6 bits of quantized weights, biases excluded): ``sum_i n_weights_i * w_i``,
  compared as whole bits (an exact integer comparison);
* **latency** in cycles and **energy** in uJ: sums (``math.fsum``) over layers of the hardware
  table's value per (layer, width), met to 1e-9 relative (float sums of table values);
* **on-chip memory** in kbit: the largest layer's working set (``onchip_mode="max"``, the
  layer-by-layer overlay) or the sum (``"sum"``, all layers resident).

NumPy-free plain Python: this runs on the board.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

CostKey = int | tuple[int, int]
Pair = tuple[int, int]
BUDGET_KINDS = ("size_mbit", "latency_cycles", "energy_uj", "onchip_kbit")
UNITS = {"size_mbit": "Mbit", "latency_cycles": "cycles", "energy_uj": "uJ", "onchip_kbit": "kbit"}
LABELS = {"size_mbit": "size", "latency_cycles": "latency", "energy_uj": "energy", "onchip_kbit": "on-chip memory"}
# Budget unit per table unit: bits -> Mbit, cycles, uJ, bits -> kbit.
SCALE = {"size_mbit": 1e-6, "latency_cycles": 1.0, "energy_uj": 1.0, "onchip_kbit": 1e-3}
REL_TOL = 1e-9  # float budgets are met up to this relative slack (float sums of table values)
# LayerCost attribute holding each kind's per-width cost (size is n_weights * w).
_COST_ATTR = {"latency_cycles": "cycles", "energy_uj": "energy_uj", "onchip_kbit": "onchip_bits"}


@dataclass(frozen=True)
class LayerCost:
    """What the methods know about one quantizable layer.

    ``cycles``/``energy_uj``/``onchip_bits`` map a width ``b`` (W=A=b, as the OQA table) or a
    pair ``(w, a)`` to the layer's cost there. ``onchip_bits`` is optional.
    """

    name: str
    n_weights: int
    sensitivity: float
    cycles: Mapping[CostKey, float] = field(default_factory=dict)
    energy_uj: Mapping[CostKey, float] = field(default_factory=dict)
    onchip_bits: Mapping[CostKey, float] | None = None

    def cost(self, kind: str, w: int, a: int) -> float | None:
        """Cost ``kind`` ('cycles', 'energy_uj', 'onchip_bits') at (w, a); None when unknown.

        A mixed pair without its own entry costs what the engine wide enough for both costs
        (the overlay has one GEMM engine per width).
        """
        table = getattr(self, kind)
        if not table:
            return None
        for key in ((w, a), w) if w == a else ((w, a), max(w, a)):
            if key in table:
                return float(table[key])
        return None


def size_limit_bits(size_mbit: float) -> int:
    """The size budget as whole bits (the 1e-6 absorbs a budget written in decimal Mbit)."""
    return math.floor(size_mbit / SCALE["size_mbit"] + 1e-6)


def float_limit(limit: float) -> float:
    """A float budget with its slack: the largest value that still meets it."""
    return limit + REL_TOL * max(1.0, abs(limit))


def exceeds(value: float, limit: float, kind: str = "") -> bool:
    """True if ``value`` breaks budget ``limit`` of ``kind``: sizes as whole bits, others to REL_TOL."""
    if kind == "size_mbit":
        return round(value / SCALE[kind]) > size_limit_bits(limit)
    return value > float_limit(limit)


def _pair(width: int | Pair) -> Pair:
    return (int(width[0]), int(width[1])) if isinstance(width, tuple) else (int(width), int(width))


@dataclass(frozen=True)
class Budgets:
    """Upper bounds; ``None`` leaves that quantity unconstrained (it is still reported)."""

    size_mbit: float | None = None
    latency_cycles: float | None = None
    energy_uj: float | None = None
    onchip_kbit: float | None = None
    onchip_mode: str = "max"

    def active(self) -> dict[str, float]:
        """The budgets that are set, by kind."""
        return {k: float(getattr(self, k)) for k in BUDGET_KINDS if getattr(self, k) is not None}

    def totals(self, costs: Sequence[LayerCost], widths: Mapping[str, int | Pair]) -> dict[str, float | None]:
        """Size, latency, energy and on-chip memory of ``widths`` (layer -> w or (w, a)), in budget units.

        Layers of ``costs`` missing from ``widths`` are not counted; a kind is None when a
        counted layer has no cost of that kind at its width.
        """
        picked = [(c, _pair(widths[c.name])) for c in costs if c.name in widths]
        out: dict[str, float | None] = {"size_mbit": sum(c.n_weights * w for c, (w, _a) in picked) / 1e6}
        for kind in BUDGET_KINDS[1:]:
            vals = [c.cost(_COST_ATTR[kind], w, a) for c, (w, a) in picked]
            known = [v for v in vals if v is not None]
            if len(known) < len(vals):
                out[kind] = None
            elif kind == "onchip_kbit" and self.onchip_mode == "max":
                out[kind] = max(known, default=0.0) * SCALE[kind]
            else:
                out[kind] = math.fsum(known) * SCALE[kind]
        return out

    def excess(self, totals: Mapping[str, float | None]) -> dict[str, float]:
        """The active budgets ``totals`` break, each with ``value - limit`` (empty: all met or unknown)."""
        return {k: float(v) - limit for k, limit in self.active().items()
                if (v := totals.get(k)) is not None and exceeds(float(v), limit, k)}


__all__ = ["BUDGET_KINDS", "LABELS", "REL_TOL", "SCALE", "UNITS", "Budgets", "CostKey", "LayerCost", "Pair",
           "exceeds", "float_limit", "size_limit_bits"]
