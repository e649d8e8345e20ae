"""Direct+OQA: OHQ's ILP fed with the *direct* sensitivity (OHQ paper, Eq. 5) instead of MQE.

The ablation that isolates MQE. For each quantizable layer ``i`` the model is re-quantized
with layer i's weights at the lowest candidate width and every other layer at 8 bit
(activation calibration included, as a PTQ user would), and

    w_i = mean over distilled images of KL( softmax(M_8(x)) || softmax(M_i,low(x)) )

(:func:`codesign.mqe.direct_sensitivity`, L quantizations in all). The scores then go
through exactly the OHQ combination and ILP: ``Omega_i = beta*w^_i - gamma/2*(c^_i + e^_i)``
with the OQA cycles/energy, maximise ``sum_i b_i*Omega_i`` under the budgets
(:func:`codesign.ilp.solve`). Data: the distilled images (calibration and KL), no labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from codesign.graph.ir import Graph
from codesign.ilp import from_hw_table, solve
from codesign.methods._common import as_float_dict, budget_report, to_bitconfig
from codesign.methods.base import Method, MethodResult, Problem
from codesign.quant.bitconfig import BitConfig
from codesign.quant.dyadic import check_bits
from codesign.quant.qgraph import QGraph


class DirectMethod(Method):
    """Eq. 5 sensitivity at ``low_bits`` (default: the lowest candidate) + the OHQ ILP with ``beta``."""

    name = "direct"
    stochastic = False

    def __init__(self, beta: float = 0.5, low_bits: int | None = None, engine: str = "fakequant") -> None:
        self.beta = float(beta)
        self.low_bits = None if low_bits is None else check_bits(low_bits, "direct sensitivity width")
        self.engine = engine

    def _search(self, problem: Problem) -> MethodResult:
        from codesign.mqe import direct_sensitivity
        from codesign.quant.qgraph import quantize_model

        low = self.low_bits if self.low_bits is not None else min(problem.candidates)

        def quantize(graph: Graph, bc: BitConfig, calib_x: np.ndarray) -> QGraph:
            return quantize_model(graph, bc, calib_x, **problem.quant)

        sens = direct_sensitivity(problem.graph, problem.distilled, problem.distilled, low_bits=low, base_bits=8,
                                  engine=self.engine, progress=problem.progress, quantize=quantize)
        scores = as_float_dict(sens.layers, sens.scores)
        costs = from_hw_table(problem.graph, problem.table, scores, problem.candidates)
        res = solve(costs, problem.candidates, problem.budgets, beta=self.beta)
        bc = to_bitconfig(problem, res.bits, self.name)
        info: dict[str, Any] = {
            "beta": self.beta, "low_bits": low, "sensitivity_seconds": sens.seconds,
            "ilp_seconds": res.build_seconds + res.solve_seconds, "omega": res.omega,
            "objective": res.objective, **budget_report(problem, res.bits),
        }
        return MethodResult(self.name, bc, 0.0, f"distilled {len(problem.distilled)} img", scores=scores, info=info)


__all__ = ["DirectMethod"]
