"""Graph and hardware-table adapters: LayerCosts from the IR and the OQA table, size ratios, first/last pins."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from codesign.budgets import SCALE, LayerCost
from codesign.graph.ir import Graph
from codesign.ilp.compile import check_candidates
from codesign.ilp.errors import IlpError
from codesign.quant.dyadic import check_bits

if TYPE_CHECKING:
    from codesign.hwtable import HwTable


def _n_weights(graph_or_costs: Graph | Sequence[LayerCost]) -> list[int]:
    if isinstance(graph_or_costs, Graph):
        return [int(ly.params["kernel"].size) for ly in graph_or_costs.quantizable()]
    return [int(c.n_weights) for c in graph_or_costs]


def ratio_to_size(graph_or_costs: Graph | Sequence[LayerCost], ratio: float, candidates: Iterable[int]) -> float:
    """Size budget (Mbit) at ``ratio`` in [0, 1] between all-narrowest (0) and all-widest (1)."""
    if not (isinstance(ratio, (int, float)) and 0.0 <= float(ratio) <= 1.0):
        raise IlpError(f"the size ratio must be in [0, 1] (0: all layers at the narrowest width, 1: widest), got {ratio!r}.")
    cands = check_candidates(candidates)
    n = sum(_n_weights(graph_or_costs))
    lo, hi = n * cands[0] * SCALE["size_mbit"], n * cands[-1] * SCALE["size_mbit"]
    return lo + float(ratio) * (hi - lo)


def first_last_pins(costs: Sequence[LayerCost], bits: int = 8) -> dict[str, int]:
    """Pin the first and last layer at ``bits`` (the common, optional, convention)."""
    check_bits(bits, "pinned width")
    return {costs[0].name: bits, costs[-1].name: bits} if costs else {}


def from_hw_table(graph: Graph, hwtable: HwTable, sensitivities: Mapping[str, float],
                  candidates: Iterable[int] | None = None) -> list[LayerCost]:
    """LayerCosts of the quantizable layers: n_weights from the IR, cycles/energy from the OQA table."""
    bits = check_candidates(candidates) if candidates is not None else hwtable.bits
    hwtable.check_model(graph, bits)
    missing = [ly.name for ly in graph.quantizable() if ly.name not in sensitivities]
    if missing:
        raise IlpError(f"no MQE sensitivity for {len(missing)} layer(s): {', '.join(missing[:8])}. Re-run MQE.")
    return table_costs(graph, hwtable, sensitivities)


def table_costs(graph: Graph, hwtable: HwTable, sensitivities: Mapping[str, float] | None = None) -> list[LayerCost]:
    """LayerCosts of the quantizable layers from the rows the table has (a missing row: unknown cost).

    Unchecked (:func:`from_hw_table` checks coverage); a layer without a sensitivity gets 0.
    """
    rows: dict[str, dict[int, Any]] = {}
    for r in hwtable.rows:
        rows.setdefault(r.layer, {})[r.bits] = r
    sens = sensitivities or {}
    return [LayerCost(name=ly.name, n_weights=int(ly.params["kernel"].size), sensitivity=float(sens.get(ly.name, 0.0)),
                      cycles={b: float(r.cycles_deployed) for b, r in rows.get(ly.name, {}).items()},
                      energy_uj={b: float(r.energy_uj) for b, r in rows.get(ly.name, {}).items()})
            for ly in graph.quantizable()]

