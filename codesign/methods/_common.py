"""Helpers the baselines share: layer costs from the problem's table and a budget report.

Every baseline prices a configuration with the same numbers the OHQ ILP uses: the size is
``sum_i n_weights_i * b_i`` (``BitConfig.size_mbit``), and a layer at width ``b`` costs
``table.get(layer, b).cycles_total`` cycles and ``.energy_uj`` microjoules (the OQA table
measures W = A = b). NumPy + PuLP only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from codesign.budgets import Budgets, LayerCost, exceeds
from codesign.graph.ir import Graph
from codesign.ilp import first_last_pins, from_hw_table, table_costs
from codesign.quant.bitconfig import BitConfig

if TYPE_CHECKING:
    from codesign.methods.base import Problem
    from codesign.quant.gptq import LayerGram


def layer_costs(problem: Problem) -> list[LayerCost]:
    """``LayerCost`` per quantizable layer at the candidate widths (sensitivity unused: 0)."""
    zeros = {n: 0.0 for n in problem.layers}
    return from_hw_table(problem.graph, problem.table, zeros, problem.candidates)


def hw_totals(problem: Problem, widths: dict[str, int]) -> dict[str, float | None]:
    """Size (Mbit), latency (cycles) and energy (uJ) of W = A = ``widths[layer]`` from the table.

    Latency/energy are ``None`` when the table lacks a (layer, width) row.
    """
    totals = problem.budgets.totals(table_costs(problem.graph, problem.table), widths)
    if totals["latency_cycles"] is None or totals["energy_uj"] is None:  # one missing row: both unknown
        totals["latency_cycles"] = totals["energy_uj"] = None
    return {k: totals[k] for k in ("size_mbit", "latency_cycles", "energy_uj")}


def budget_report(problem: Problem, widths: dict[str, int]) -> dict[str, Any]:
    """The totals of ``widths`` plus, per active budget, whether it is met (``None``: unknown cost)."""
    totals = hw_totals(problem, widths)
    meets: dict[str, bool | None] = {}
    for kind, limit in problem.budgets.active().items():
        if kind == "onchip_kbit":
            meets[kind] = None  # the OQA table carries no on-chip memory figure
            continue
        value = totals.get(kind)
        meets[kind] = None if value is None else not exceeds(float(value), limit, kind)
    known = [v for v in meets.values() if v is not None]
    return {**totals, "meets": meets, "meets_all": all(known) if len(known) == len(meets) else None}


def ilp_options(problem: Problem, costs: list[LayerCost]) -> dict[str, Any]:
    """Keyword arguments of ``ilp.solve``/``solve_table`` from ``problem.ilp``: ties, pins, solver, LP file."""
    opts = problem.ilp
    pins = first_last_pins(costs, opts.pin_first_last) if opts.pin_first_last is not None else {}
    return {"ties": [list(t) for t in opts.ties], "pin": pins, "solver": opts.solver, "lp_path": opts.lp_path}


def to_bitconfig(problem: Problem, widths: dict[str, int], method: str) -> BitConfig:
    """W = A = ``widths[layer]`` (what the hardware table prices), validated against the graph."""
    bc = BitConfig.from_widths(problem.graph, {n: int(widths[n]) for n in problem.layers})
    bc.meta["method"] = method
    return bc


def calibration(problem: Problem) -> tuple[Graph, dict[str, LayerGram]]:
    """The BN-folded graph and, when the problem rounds weights with GPTQ, the per-layer Gram matrices.

    Both come from the memo ``quantize_model`` itself uses (:func:`codesign.quant.qgraph.calibration_state`),
    so a baseline that re-derives one layer's weights rounds exactly as the deployment does and
    the float calibration pass is not repeated. Without GPTQ the Gram dict is empty.
    """
    from codesign.quant.qgraph import calibration_state

    gptq = problem.quant.get("weight_round", "nearest") == "gptq"
    folded, _ranges, grams = calibration_state(
        problem.graph, problem.distilled, problem.quant.get("method", "minmax"),
        float(problem.quant.get("percentile", 99.99)), problem.layers if gptq else ())
    return folded, grams


def hw_budgets_active(budgets: Budgets) -> bool:
    """True when a budget other than the model size is set (the DP handles size only)."""
    return any(k != "size_mbit" for k in budgets.active())


def as_float_dict(names: list[str], values: np.ndarray | list[float]) -> dict[str, float]:
    """``{name: float(value)}``."""
    return {n: float(v) for n, v in zip(names, values)}


__all__ = ["as_float_dict", "budget_report", "calibration", "hw_budgets_active", "hw_totals", "ilp_options", "layer_costs",
           "to_bitconfig"]
