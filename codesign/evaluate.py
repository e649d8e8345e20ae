"""What a bit configuration costs on the board and how well it classifies: plain data in, plain data out.

The hardware cost is priced by :meth:`codesign.budgets.Budgets.totals` (the one budget
evaluator) from the OQA table; top-1 comes from the integer golden model. Used by
``python -m codesign.search`` and ``bench/bench_methods.py``. NumPy only: this runs on the board.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.budgets import Budgets
from codesign.graph.ir import Graph
from codesign.hwtable import HwTable
from codesign.ilp import table_costs
from codesign.quant.bitconfig import BitConfig
from codesign.quant.qgraph import QuantOptions

EVAL_BATCH = 32  # images per golden-model call: small batches keep im2col in cache (2x faster than 500)


@dataclass
class ConfigReport:
    """What one bit configuration costs and how well it classifies."""

    name: str
    wa: str
    size_mbit: float
    cycles: float
    latency_ms: float
    energy_uj: float
    top1: float | None = None


def hw_cost(graph: Graph, table: HwTable, bc: BitConfig) -> tuple[float, float]:
    """Summed cycles and energy of a config from the table (row at max(w, a) bits per layer)."""
    pairs = {n: (lb.w_bits, lb.a_bits) for n, lb in bc.layers.items()}
    totals = Budgets().totals(table_costs(graph, table), pairs)
    cyc, en = totals["latency_cycles"], totals["energy_uj"]
    if cyc is None or en is None:
        for n, (w, a) in pairs.items():
            table.get(n, max(w, a))  # raises KeyError naming the missing (layer, bits) row
        raise KeyError("the hardware table lacks a row of this config")
    return cyc, en


def wa_label(bc: BitConfig) -> str:
    """'8/8' for a uniform config, 'mixed' otherwise."""
    pairs = {(lb.w_bits, lb.a_bits) for lb in bc.layers.values()}
    if len(pairs) == 1:
        w, a = pairs.pop()
        return f"{w}/{a}"
    return "mixed"


def predictions(graph: Graph, bc: BitConfig, calib: np.ndarray, x: np.ndarray, qkw: QuantOptions) -> np.ndarray:
    """Predicted class per image of ``graph`` quantized with ``bc`` (calibrated on ``calib``), integer golden model."""
    from codesign.quant.golden import GoldenModel
    from codesign.quant.qgraph import quantize_model

    gm = GoldenModel(quantize_model(graph, bc, calib, **qkw))
    return np.concatenate([gm.predict(x[i : i + EVAL_BATCH]).argmax(1) for i in range(0, len(x), EVAL_BATCH)])


def top1(graph: Graph, bc: BitConfig, calib: np.ndarray, val: tuple[np.ndarray, np.ndarray],
         qkw: QuantOptions) -> float:
    """Top-1 (%) of ``graph`` quantized with ``bc`` (calibrated on ``calib``), integer golden model."""
    x, y = val
    return float((predictions(graph, bc, calib, x, qkw) == y).mean() * 100)


def evaluate(graph: Graph, table: HwTable, configs: dict[str, BitConfig], calib: np.ndarray,
             val: tuple[np.ndarray, np.ndarray] | None, clock_mhz: float, qkw: QuantOptions) -> list[ConfigReport]:
    """Size, cycles, ms, energy and (with data) top-1 of each config, golden model for accuracy."""
    out = []
    for name, bc in configs.items():
        cyc, en = hw_cost(graph, table, bc)
        rep = ConfigReport(name, wa_label(bc), bc.size_mbit(graph), cyc, cyc / (clock_mhz * 1e3), en)
        if val is not None:
            rep.top1 = top1(graph, bc, calib, val, qkw)
        out.append(rep)
    return out


__all__ = ["EVAL_BATCH", "ConfigReport", "evaluate", "hw_cost", "predictions", "top1", "wa_label"]
