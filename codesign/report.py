"""report.md, the plots and the console summary of ``python -m codesign.search``, from plain data.

Nothing here reads the command line: :class:`RunInfo` carries what the report states about
the invocation, :class:`~codesign.evaluate.ConfigReport` the evaluated configurations.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codesign import atomic
from codesign.evaluate import ConfigReport
from codesign.graph.ir import Graph
from codesign.hwtable import HwTable
from codesign.quant.bitconfig import BitConfig
from codesign.runcache import RunFolder

EXIT_EXPORT_WARNINGS = 3  # the search completed and report.md is written, but an export format failed
STAGES = ("distill", "oqa", "mqe", "ilp", "evaluate", "export", "deploy")


@dataclass(frozen=True)
class RunInfo:
    """What report.md says about the invocation."""

    command: str  # the arguments after ``python -m codesign.search``
    board: str
    bits: list[int]
    method: str
    wall_seconds: float


def pct_change(new: float, ref: float) -> str:
    """'37.8 % lower' / '2.1 % higher' of ``new`` against ``ref``."""
    if ref == 0:
        return "n/a"
    d = 100 * (1 - new / ref)
    return f"{abs(d):.1f} % {'lower' if d >= 0 else 'higher'}"


def write_report(run: RunFolder, graph: Graph, table: HwTable, reps: list[ConfigReport], info: RunInfo,
                 exports: list[Any], extra: Sequence[str] = ()) -> Path:
    """report.md: the comparison table (chosen config first, the reference second), stage times and provenance."""
    ohq, int8 = reps[0], reps[1]
    lines = [
        f"# OHQ search: {graph.name}",
        "",
        f"Command: `python -m codesign.search {info.command}`",
        f"Board: {info.board}; device {table.meta.get('device', '?')}, clock {table.meta.get('clock_mhz', '?')} MHz; "
        f"candidate widths {info.bits}; hardware table: `hw_table.csv` ({table.meta.get('protocol', '')}); "
        f"method: `{info.method}`; ILP solver: {run.stages.get('ilp', {}).get('solver', '?')}.",
        "",
        "| config | W/A | size (Mbit) | cycles (jobs + bus) | latency (ms) | energy (uJ) | top-1 (%) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in reps:
        top1 = f"{r.top1:.2f}" if r.top1 is not None else "n/a"
        lines.append(f"| {r.name} | {r.wa} | {r.size_mbit:.4f} | {r.cycles:,.0f} | {r.latency_ms:.3f} | "
                     f"{r.energy_uj:.2f} | {top1} |")
    lines += ["", f"OHQ vs {int8.name}: size {ohq.size_mbit / int8.size_mbit:.2f}x, latency "
              f"{pct_change(ohq.cycles, int8.cycles)}, energy {pct_change(ohq.energy_uj, int8.energy_uj)}"
              + (f", top-1 {ohq.top1 - int8.top1:+.2f} points" if ohq.top1 is not None and int8.top1 is not None else "")
              + ".", "", *extra, "## Time per stage", "", "| stage | seconds | status |", "|---|---|---|"]
    for st in STAGES:
        if st in run.stages:
            status = run.status(st)
            if st == "oqa" and "source" in run.stages[st]:
                status = f"given (--hw-table {run.stages[st]['source']})"
            lines.append(f"| {st} | {run.seconds(st):.2f} | {status} |")
    lines.append(f"| whole run (this invocation) | {info.wall_seconds:.2f} | |")
    mqe = run.stages.get("mqe", {})
    if "spearman" in mqe:
        lines += ["", f"MQE vs direct Eq. 5 sensitivity: Spearman rho = {mqe['spearman']:.3f}; MQE "
                  f"{mqe['mqe_seconds']:.2f} s vs direct {mqe['direct_seconds']:.2f} s ({mqe['speedup']:.1f}x faster)."]
    lines += ["", *export_section(exports)]
    exported = [f for r in exports for f in r.files] + (["quantized/ (integer model)", "exports.json"] if exports else [])
    lines += ["", "Files: bitconfig.json, hw_table.csv, sensitivity.csv, search.lp, ilp_solution.json, "
              "distill/, sensitivity.png, cycles.png, energy.png, bits.png" + "".join(f", {e}" for e in exported), ""]
    return atomic.write_text(run.path / "report.md", "\n".join(lines))


def export_section(exports: list[Any]) -> list[str]:
    """report.md's export section: one line per format, failures as warnings."""
    lines = ["## Exports", ""]
    if not exports:
        return [*lines, "None requested (--export none)."]
    for r in exports:
        lines.append(f"- {'WARNING: ' if not r.ok else ''}{r.line()}")
    if any(not r.ok for r in exports):
        lines += ["", f"The search result above is complete; only the export failed (exit code {EXIT_EXPORT_WARNINGS}). "
                  "Rerun with `--export` listing the formats that work, or `--export none`."]
    return lines


def write_plots(run: RunFolder, graph: Graph, table: HwTable, bc: BitConfig) -> list[Path]:
    """Per-layer sensitivity (from sensitivity.csv), cycles, energy and chosen-bits PNGs."""
    from codesign import plots

    layers = [ly.name for ly in graph.quantizable()]
    with (run.path / "sensitivity.csv").open() as f:
        rows = list(csv.DictReader(f))
    series = {k: np.array([float(r[k]) for r in rows]) for k in rows[0] if k != "layer" and not k.endswith("_rank")}
    bits = table.bits
    cyc = {b: np.array([table.get(n, b).cycles_total for n in layers], float) for b in bits}
    en = {b: np.array([table.get(n, b).energy_uj for n in layers], float) for b in bits}
    sizes = [graph[n].params["kernel"].size for n in layers]
    with atomic.atomic_files(run.path) as tmp:
        plots.plot_sensitivity(layers, series, tmp / "sensitivity.png")
        plots.plot_per_bits(layers, cyc, "cycles", "per-layer cycles (board counters)", tmp / "cycles.png", log=True)
        plots.plot_per_bits(layers, en, "energy (uJ)", "per-layer energy", tmp / "energy.png", log=True)
        plots.plot_bits(layers, {n: bc[n].w_bits for n in layers}, tmp / "bits.png", sizes)
    return [run.path / f for f in ("sensitivity.png", "cycles.png", "energy.png", "bits.png")]


def print_summary(reps: list[ConfigReport], report: Path, seconds: float) -> None:
    """The comparison table on the console, and where report.md is."""
    from codesign.ui import Console, Table

    t = Table(title="OHQ search summary")
    for c in ("config", "W/A", "size (Mbit)", "latency (ms)", "energy (uJ)", "top-1 (%)"):
        t.add_column(c)
    for r in reps:
        t.add_row(r.name, r.wa, f"{r.size_mbit:.4f}", f"{r.latency_ms:.3f}", f"{r.energy_uj:.2f}",
                  f"{r.top1:.2f}" if r.top1 is not None else "n/a")
    Console().print(t)
    Console().print(f"report: {report}  ({seconds:.1f} s)")


__all__ = ["EXIT_EXPORT_WARNINGS", "RunInfo", "export_section", "pct_change", "print_summary", "write_plots",
           "write_report"]
