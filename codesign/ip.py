"""``python -m codesign.ip --bits 4,8 --out build/ip``: generate, C-simulate and check the IP cores.

For every core and bit-width it writes ``<out>/<core>_w<bits>/{hls/,rtl/,ip.json}`` and
``<out>/manifest.json``, C-simulates every HLS core against the golden model (g++ with
``-Wall -Werror -fsanitize=address,undefined`` and hls4ml's ap_types), runs Vitis HLS when it is
on PATH, and prints the resource estimates and the analytic-vs-RTL cycle table (Verilator).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codesign import validate
from codesign.errors import run_cli
from codesign.hw import flow, rtlsim
from codesign.hw.device import DEVICES, get_device
from codesign.hw.generator import earlier_cores, generate_core, render_regmap, specs_for, write_manifest
from codesign.quant.dyadic import parse_bits_list


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m codesign.ip", description=__doc__.splitlines()[0])
    p.add_argument("--bits", default="4,8", help="comma-separated bit-widths in 2..8 (default 4,8)")
    p.add_argument("--out", type=Path, default=Path("build/ip"), help="output directory (default build/ip)")
    p.add_argument("--device", default="xc7z020", help=f"device budget profile: {', '.join(sorted(DEVICES))}")
    p.add_argument("--cores", default="", help="comma-separated subset of cores (default: all)")
    p.add_argument("--lanes", type=int, default=None, help="override the lanes derived from the budget (> 0)")
    p.add_argument("--tile", type=int, default=None, help="tile size per side, 1..128 (default 128)")
    p.add_argument("--no-csim", dest="csim", action="store_false", help="skip the g++ C-simulation")
    p.add_argument("--no-rtl", dest="rtl", action="store_false", help="skip the Verilator cycle measurement")
    p.add_argument("--seed", type=int, default=1, help="seed of the random test vectors (default 1)")
    p.add_argument("--synth", action="store_true",
                   help="also synthesize every core with Yosys (cached under build/synth) and print the "
                        "synthesized LUT/FF/DSP beside the estimates, with the estimate's error")
    return p


def _synthesize(gens: list, device: str, console) -> dict[str, dict[str, float]]:
    """Synthesize every generated core (Yosys, cached by content hash) -> {core name: used resources}."""
    from codesign.hw.synth import synth_and_analyse
    from codesign.hw.synth.delays import NET_NS
    from codesign.hw.synth.run import SynthTop
    from codesign.hw.synth.yosys import find_yosys

    yosys = find_yosys(None)
    used: dict[str, dict[str, float]] = {}
    for g in gens:
        console.print(f"synthesizing {g.spec.name} ({yosys.version.split(' (')[0]}) ...")
        r = synth_and_analyse(SynthTop(g.spec.name, tuple(g.verilog_sources)), device, Path("build/synth"), yosys, NET_NS)
        used[g.spec.name] = dict(r.utilization.used)
    return used


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point (wrapped by run_cli)."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    args = _parser().parse_args(argv)
    bits = parse_bits_list(args.bits)
    validate.positive(args.lanes, "--lanes")
    validate.output_dir(args.out)
    get_device(args.device)
    from codesign.hw.cores import CORES

    cores = [c.strip() for c in args.cores.split(",") if c.strip()] or list(CORES)
    unknown = sorted(set(cores) - set(CORES))
    if unknown:
        from codesign.hw.device import DeviceBudgetError

        raise DeviceBudgetError(f"unknown core(s) {', '.join(unknown)}; known: {', '.join(CORES)}.")
    specs = specs_for(bits, args.device, cores, lanes=args.lanes, tile=args.tile)
    console = Console(stderr=True)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    gens = []
    csim_results: dict[str, dict[str, object]] = {}
    cycles: dict[str, dict[str, Any]] = {}
    do_rtl = args.rtl and rtlsim.available("verilator")
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task("generating", total=len(specs))
        for spec in specs:
            gens.append(generate_core(spec, out))
            progress.advance(task)
        regmap_files = render_regmap(out / "regmap")
        hls_gens = [g for g in gens if g.core().is_hls]
        if args.csim:
            task = progress.add_task("C-sim (g++, ASan/UBSan)", total=len(hls_gens))
            for g in hls_gens:
                r = flow.csim_check(g, seed=args.seed)
                csim_results[g.spec.name] = {"passed": r.passed, "vectors": r.vectors, "detail": r.detail}
                progress.advance(task)
        if flow.vitis_hls_available():
            task = progress.add_task("Vitis HLS csim/csynth/cosim/export", total=len(hls_gens))
            for g in hls_gens:
                flow.run_vitis_hls(g, seed=args.seed)
                progress.advance(task)
        if do_rtl:
            task = progress.add_task("RTL cycles (Verilator)", total=len(gens))
            for g in gens:
                cycles[g.spec.name] = flow.measure_cycles(g, seed=args.seed)
                progress.advance(task)
    synthesized = _synthesize(gens, args.device, console) if args.synth else {}
    earlier = earlier_cores(out, gens)
    if earlier:
        console.print(f"{out} also holds cores from earlier runs (listed under 'earlier_cores' in manifest.json): "
                      + ", ".join(c["name"] for c in earlier))
    write_manifest(out, gens, regmap_files, {"csim": csim_results, "rtl_cycles": cycles, "synth": synthesized,
                                             "earlier_cores": earlier})

    table = Table(title=f"IP cores for {args.device} (estimates; cycles for the reference workload)")
    cols = ["core", "bits", "lanes", "tree", "LUT", "DSP", "BRAM36"]
    if synthesized:
        cols += ["synth LUT", "LUT err", "synth DSP", "synth BRAM36"]
    cols += ["exp_cycles", "RTL cycles", "error", "C-sim"]
    for col in cols:
        table.add_column(col, justify="right" if col not in ("core", "C-sim") else "left")
    for g in gens:
        core = g.core()
        res = core.resources()
        exp = core.exp_cycles(**core.reference_workload())
        meas = cycles.get(g.spec.name)
        err = "" if not meas else f"{abs(meas['measured'] - meas['expected']) / meas['expected']:.1%}"
        cs = csim_results.get(g.spec.name)
        row = [g.spec.core, str(g.spec.bits), str(g.spec.lanes), str(g.spec.tree), str(res["lut"]), str(res["dsp"]),
               str(res["bram36"])]
        if synthesized:
            su = synthesized[g.spec.name]
            lut_err = f"{(res['lut'] - su['LUT']) / su['LUT']:+.1%}" if su["LUT"] else "-"
            row += [f"{su['LUT']:.0f}", lut_err, f"{su['DSP']:.0f}", f"{su['BRAM36']:g}"]
        row += [str(exp), str(meas["measured"]) if meas else "-", err, ("pass" if cs["passed"] else "FAIL") if cs else "-"]
        table.add_row(*row)
    Console(width=160).print(table)
    if not do_rtl and args.rtl:
        console.print("Verilator not available: RTL cycle column skipped.")
    failed = [k for k, v in csim_results.items() if not v["passed"]]
    bad_cycles = [k for k, v in cycles.items() if abs(v["measured"] - v["expected"]) > 0.05 * v["expected"]]
    if failed or bad_cycles:
        print(f"C-sim failures: {failed}; cycle-model errors above 5 %: {bad_cycles}", file=sys.stderr)
        return 1
    return 0


def cli() -> None:
    """Console entry point."""
    sys.exit(run_cli(main))


if __name__ == "__main__":
    cli()
