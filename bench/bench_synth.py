"""Open-synthesis figures of the overlay and the estimate error of the device plan.

    .venv/bin/python bench/bench_synth.py [--out docs/results/synth.md]

Synthesizes (Yosys ``synth_xilinx -family xc7``, cached under ``build/synth``) the overlay
{4,8} planned by ``codesign.hw.plan`` and two MAC trees at 16 lanes (a lane count outside the
estimate's calibration), and prints, side by side, the plan's estimate, the synthesized
figure and their error, plus the timing estimate and the memory placement.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from codesign.hw import resources
from codesign.hw.paths import BUILD_DIR
from codesign.hw.plan import plan_overlay
from codesign.hw.spec import make_spec
from codesign.hw.synth import synth_and_analyse
from codesign.hw.synth.delays import NET_NS
from codesign.hw.synth.report import write_outputs
from codesign.hw.synth.run import synth_spec
from codesign.hw.synth.yosys import find_yosys
from codesign.synth import collect_tops


def _core(spec, yosys):
    return synth_spec(spec, BUILD_DIR / "synth_bench", yosys, NET_NS)


def _row(name: str, est: resources.Resources, used: dict[str, float]) -> str:
    cells = []
    for key, e in (("LUT", est.lut), ("FF", est.ff), ("DSP", est.dsp), ("BRAM36", est.bram36)):
        u = used[key]
        err = f"{100 * (e - u) / u:+.1f} %" if u else ("0" if e == 0 else "n/a")
        cells.append(f"{e:,.0f} / {u:,.0f} ({err})")
    return f"| {name} | " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("docs/results/synth.md"))
    args = p.parse_args(argv)
    yosys = find_yosys(None)
    (top,) = collect_tops([4, 8], "xc7z020", "overlay", BUILD_DIR / "synth" / "ip", [])
    ov = synth_and_analyse(top, "xc7z020", BUILD_DIR / "synth", yosys, NET_NS)
    write_outputs(ov)
    plan = plan_overlay((4, 8), "xc7z020")
    lines = [
        "# Open synthesis of the overlay and the plan's estimate error",
        "",
        f"Command: `.venv/bin/python bench/bench_synth.py` ({yosys.version.split(' (')[0]}, `synth_xilinx -family xc7"
        " -flatten -noiopad -abc9`). Cells: estimate / synthesized (error of the estimate).",
        "",
        "| top | LUT | FF | DSP48E1 | BRAM36 |",
        "|---|---|---|---|---|",
        _row(f"{top.name} (plan: " + ", ".join(f"{e.bits}b {e.lanes}x{64 // e.bits} {e.mult}" for e in plan.engines)
             + "; the plan's shell figure is calibrated on this run)", plan.estimate, ov.utilization.used),
    ]
    for bits, mult in ((4, "lut"), (8, "dsp")):
        spec = replace(make_spec("mac_tree", bits, lanes=4), lanes=16, mult=mult)
        r = _core(spec, yosys)
        lines.append(_row(f"mac_tree_w{bits} 16 lanes {mult} (outside the calibration)",
                          resources.mac_tree(bits, 16, mult, spec.device_profile), r.utilization.used))
    cap = plan.budget
    t = ov.timing
    lines += [
        "",
        f"Budget after the DMA/interconnect allowance and the 80 % LUT ceiling: {cap.lut:,.0f} LUT, {cap.ff:,.0f} FF, "
        f"{cap.dsp:,.0f} DSP48E1, {cap.bram36:,.0f} BRAM36. Overruns: "
        f"{'; '.join(o.describe() for o in ov.overruns()) or 'none'}. Memories meant for block RAM that are not: "
        f"{len(ov.lutram_memories())}.",
        "",
        f"Worst register-to-register estimate: **{t.worst_ns:.2f} ns** (target 7 ns). Worst five:" if t else "",
        "",
        "| # | ns | LUT levels | CARRY4 | start | end |",
        "|---:|---:|---:|---:|---|---|",
    ]
    if t:
        for i, path in enumerate(t.paths[:5], 1):
            lines.append(f"| {i} | {path.total_ns:.2f} | {path.lut_levels} | {path.carry4} | `{path.start}` | `{path.end}` |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
