"""Markdown pieces of a search's report.md that are not the headline comparison."""

from __future__ import annotations

from codesign.graph.ir import Graph
from codesign.hwtable import HwTable
from codesign.quant.bitconfig import BitConfig


def per_layer_bits(graph: Graph, table: HwTable, bc: BitConfig) -> list[str]:
    """A table of the chosen W/A bits per quantizable layer, with its weights and cycles there."""
    lines = ["## Chosen bits per layer", "",
             "| # | layer | op | weights | W/A bits | size (kbit) | cycles at this width |", "|---|---|---|---|---|---|---|"]
    for i, ly in enumerate(graph.quantizable()):
        lb = bc[ly.name]
        n = int(ly.params["kernel"].size)
        op = ly.op + ("/dw" if getattr(ly, "is_depthwise", False) else "")
        row = table.get(ly.name, max(lb.w_bits, lb.a_bits))
        lines.append(f"| {i} | {ly.name} | {op} | {n:,} | {lb.w_bits}/{lb.a_bits} | {n * lb.w_bits / 1e3:,.1f} | "
                     f"{row.cycles_total:,} |")
    return [*lines, ""]


def input_check(source: str, agreement: float | None, warning: str | None, threshold: float) -> list[str]:
    """The input-domain line and the INT8-vs-float self-check."""
    lines = ["## Calibration self-check", "", f"Input range for distillation: {source}."]
    if agreement is not None:
        lines.append(f"Uniform INT8 (calibrated on the distilled images) agrees with the float model on "
                     f"{100 * agreement:.1f} % of held-out distilled images (warning below {100 * threshold:.0f} %).")
    if warning:
        lines.append(f"**Warning:** {warning}")
    return [*lines, ""]
