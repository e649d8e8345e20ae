"""Uniform post-training quantization: every layer at one width (INT8, INT4, ...).

The classic reference points of every mixed-precision paper: all weights and activations of
every Conv2D/Dense at ``bits`` (W = A = ``bits``), quantized post-training with the problem's
calibration (the same for every method, so the comparison differs only in the allocation).
The method searches nothing and ignores the budgets; ``info`` records the configuration's
size, latency and energy from the hardware table and whether each active budget is met
(``None`` when the table has no row at ``bits``).
"""

from __future__ import annotations

from codesign.methods._common import budget_report, to_bitconfig
from codesign.methods.base import Method, MethodResult, Problem
from codesign.quant.dyadic import check_bits


class UniformMethod(Method):
    """All layers at ``bits``: uniform INT``bits`` PTQ."""

    stochastic = False

    def __init__(self, bits: int = 8) -> None:
        self.bits = check_bits(bits, "uniform width")
        self.name = f"int{self.bits}"

    def _search(self, problem: Problem) -> MethodResult:
        widths = {n: self.bits for n in problem.layers}
        bc = to_bitconfig(problem, widths, self.name)
        info = {"bits": self.bits, "quant": dict(problem.quant), **budget_report(problem, widths)}
        return MethodResult(self.name, bc, 0.0, "none (calibration only)", info=info)


__all__ = ["UniformMethod"]
