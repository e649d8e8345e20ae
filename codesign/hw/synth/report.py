"""``utilization.json``, ``timing.json`` and ``report.md`` of one synthesized top."""

from __future__ import annotations

import json
import os
from pathlib import Path

from codesign.hw.synth import delays
from codesign.hw.synth.run import SynthResult
from codesign.hw.synth.timing import TimingPath
from codesign.hw.synth.utilization import DMA_ALLOWANCE, RESOURCES

LIMIT_NS = 7.0  # register-to-register target at 100 MHz; the other 3 ns are margin (issue 12)
METHOD = (
    "Static longest-path analysis of the flattened synth_xilinx netlist (codesign.hw.synth.timing): "
    "clock-to-out of the launching FF / BRAM / registered DSP stage, plus per-cell arc delays "
    "(LUT, MUXF7/8, every CARRY4 stage, unregistered DSP48E1 stages, LUTRAM reads) of a 7-series "
    "-1 part, plus {net:g} ns per general-interconnect net (0 on dedicated carry / cascade / "
    "intra-slice wires), plus the capturing pin's setup; a register is assumed beyond every top-level "
    "port. Constants: codesign/hw/synth/delays.py; "
    "method: docs/hw.md, 'Open synthesis and the timing estimate'."
)


def _dump(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def timing_constants() -> dict[str, object]:
    """The delay constants the estimate used (recorded in timing.json)."""
    return {
        "lut_ns": delays.LUT_NS, "ff_clk_to_q_ns": delays.FF_CLK_TO_Q_NS, "ff_setup_ns": delays.FF_SETUP_NS,
        "carry4_ci_to_co3_ns": delays.CARRY4_CI_TO_CO3_NS, "bram_clk_to_do_ns": delays.BRAM_CLK_TO_DO_NS,
        "bram_clk_to_do_reg_ns": delays.BRAM_CLK_TO_DO_REG_NS, "lutram_clk_to_o_ns": delays.LUTRAM_CLK_TO_O_NS,
        "dsp_comb_to_p_ns": {k: {"/".join(m): d for m, d in v.items()} for k, v in delays.DSP_COMB_TO_P_NS.items()},
    }


def write_outputs(result: SynthResult, limit_ns: float = LIMIT_NS) -> None:
    """Write utilization.json, timing.json and report.md into the result's folder."""
    util = result.utilization.to_dict()
    util["yosys"] = result.yosys_version
    util["memories"] = [m.to_dict() for m in result.memories]
    util["fit"] = {
        "allowance": {"LUT": DMA_ALLOWANCE.lut, "FF": DMA_ALLOWANCE.ff, "BRAM36": DMA_ALLOWANCE.bram36},
        "overruns": [o.describe() for o in result.overruns()],
    }
    _dump(result.folder / "utilization.json", util)
    timing: dict[str, object] = {"top": result.top, "device": result.device, "yosys": result.yosys_version,
                                 "limit_ns": limit_ns}
    if result.timing is None:
        timing["method"] = "not estimated: the delay model covers 7-series parts only"
    else:
        timing["method"] = METHOD.format(net=result.timing.net_ns)
        timing["constants"] = timing_constants()
        timing.update(result.timing.to_dict())
    _dump(result.folder / "timing.json", timing)
    tmp = result.folder / f".report.md.{os.getpid()}.tmp"
    tmp.write_text(render_report(result, limit_ns))
    tmp.replace(result.folder / "report.md")


def _where(name: str, cell_type: str, src: str) -> str:
    return f"`{name}` ({cell_type}{', ' + src if src else ''})"


def _path_row(i: int, p: TimingPath) -> str:
    return (f"| {i} | {p.total_ns:.2f} | {p.logic_ns:.2f} | {p.net_ns:.2f} | {p.lut_levels} | {p.carry4} | "
            f"{_where(p.start, p.start_type, p.start_src)} | {_where(p.end, p.end_type, p.end_src)} |")


def render_report(result: SynthResult, limit_ns: float = LIMIT_NS) -> str:
    """The markdown report of one top."""
    u = result.utilization.to_dict()
    lines = [
        f"# Open synthesis: `{result.top}` on {result.device}", "",
        f"- Yosys: {result.yosys_version}",
        f"- Synthesis: `synth_xilinx` (script `synth.ys`), {result.synth_seconds:.0f} s"
        f"{' (cached)' if result.cached else ''}", "",
        "## Utilization", "",
        "| resource | used | device | % |", "|---|---:|---:|---:|",
    ]
    for r in RESOURCES:
        e = u["resources"][r]
        lines.append(f"| {r} | {e['used']:g} | {e['capacity']:,} | {e['percent']:.1f} |")
    prims = ", ".join(f"{k} {v['used']}" for k, v in u["primitives"].items())
    lut_cells = ", ".join(f"{k} {v}" for k, v in result.utilization.lutram_cells.items()) or "none"
    lines += ["", f"Primitives: {prims}. LUTRAM cells: {lut_cells}.", ""]
    over = result.overruns()
    lines.append(f"Fit against {result.device} minus the DMA/interconnect allowance "
                 f"({DMA_ALLOWANCE.lut:,} LUT, {DMA_ALLOWANCE.ff:,} FF, {DMA_ALLOWANCE.bram36:g} BRAM36): "
                 + ("**fits**." if not over else "**does not fit**: " + "; ".join(o.describe() for o in over) + "."))
    lines += ["", "## Memories", ""]
    if result.memories:
        lines += ["| memory | width x depth | bits | clocked reads | mapped to | meant for BRAM | note |",
                  "|---|---:|---:|---:|---|---|---|"]
        for m in result.memories:
            flag = "yes" if m.meant_for_bram else "no"
            note = m.reason() if m.meant_for_bram else ""
            lines.append(f"| `{m.name}` | {m.width} x {m.depth} | {m.bits:,} | {m.clocked_reads}/{m.read_ports} | "
                         f"{m.mapped_to} (`{m.via}`) | {flag} | {note} |")
        bad = result.lutram_memories()
        lines += ["", f"Memories meant to be block RAM that are not: {len(bad)}"
                  + (" (" + ", ".join(f"`{m.name}`" for m in bad) + ")." if bad else ".")]
    else:
        lines.append("No inferred memories.")
    lines += ["", "## Timing estimate", ""]
    t = result.timing
    if t is None:
        lines.append("Not estimated: the delay model covers 7-series parts only.")
        return "\n".join(lines) + "\n"
    verdict = "meets" if not t.over(limit_ns) else "**misses**"
    lines += [
        METHOD.format(net=t.net_ns), "",
        f"Worst register-to-register estimate: **{t.worst_ns:.2f} ns** inside the top, "
        f"{t.worst_boundary_ns:.2f} ns through its ports; {verdict} the {limit_ns:g} ns target "
        f"({t.endpoints:,} timing endpoints; {t.loops} net bits on combinational loops"
        + (f"; timed as LUTs, unmodelled cells: {t.unmodelled}" if t.unmodelled else "") + ").", "",
        "Worst five register-to-register paths (one per endpoint register):", "",
        "| # | estimate ns | logic ns | net ns | LUT levels | CARRY4 | start | end |",
        "|---:|---:|---:|---:|---:|---:|---|---|",
        *(_path_row(i + 1, p) for i, p in enumerate(t.paths)),
    ]
    if t.paths:
        worst = t.paths[0]
        steps = " -> ".join(f"{h.type} {h.pin_in}->{h.pin_out} (+{h.net_ns + h.cell_ns:.2f})" for h in worst.hops)
        lines += ["", f"Path 1 in cells: `{worst.start}` {worst.start_type} -> {steps} -> `{worst.end}`."]
    if t.port_paths:
        lines += ["", f"Worst boundary paths, **{t.worst_boundary_ns:.2f} ns** (a register is assumed beyond every "
                  "top-level port: clock-to-Q before an input, a net and a setup after an output; they count "
                  "toward the target too):", "",
                  "| # | estimate ns | logic ns | net ns | LUT levels | CARRY4 | start | end |",
                  "|---:|---:|---:|---:|---:|---:|---|---|",
                  *(_path_row(i + 1, p) for i, p in enumerate(t.port_paths))]
    return "\n".join(lines) + "\n"


__all__ = ["LIMIT_NS", "render_report", "timing_constants", "write_outputs"]
