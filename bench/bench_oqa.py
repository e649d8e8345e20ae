"""OQA on the simulated board: ResNet-18, MobileNetV2, MobileNetV3-Small at 224x224, bits {4,8}.

``python bench/bench_oqa.py [--models resnet18,...] [--out docs/results/oqa.md]``

Every layer runs on the Verilator model of the overlay and is checked bit-exact against the
golden model (OQA raises otherwise). Figures: per-layer cycles from the RTL counters, total
latency at the clock, utilization = MACs / (cycles_total x lanes x tree) (and the compute-only
variant over CYC_COMPUTE), the 4-vs-8-bit speed-up, the sweep's wall and CPU time and the
simulator's speed (simulated cycles per second of time spent inside the simulator).
Hardware tables go to build/bench/oqa_<model>.csv (+ .detail.csv, .ps.csv).
"""

from __future__ import annotations

import argparse
import csv
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from codesign.board.sim import SimBoard  # noqa: E402
from codesign.hw.overlay import overlay_spec  # noqa: E402
from codesign.models import resolve_model  # noqa: E402
from codesign.oqa import measure_full, recalibrate_bn, save_result, synthetic_inputs  # noqa: E402
from codesign.sysinfo import cpu_name  # noqa: E402

MODELS = ("resnet18", "mobilenetv2", "mobilenetv3_small")
BITS = [4, 8]
TARGETS = {"util_3x3": 0.85, "speedup": 1.6, "sweep_s": 300.0, "sim_mcps": 2.0}


class TimedBoard(SimBoard):
    """SimBoard that accounts the cycles run, and the time spent, inside the simulator's
    run-until-done calls (MMIO handshakes are left out of both)."""

    sim_wall_s = 0.0
    sim_cpu_s = 0.0
    sim_cycles = 0

    def _timed(self, fn, timeout_s: float) -> bool:
        c0, w, c = self.cycle, time.perf_counter(), time.process_time()
        try:
            return fn(timeout_s)
        finally:
            self.sim_wall_s += time.perf_counter() - w
            self.sim_cpu_s += time.process_time() - c
            self.sim_cycles += self.cycle - c0

    def dma_wait_recv(self, timeout_s: float) -> bool:
        return self._timed(super().dma_wait_recv, timeout_s)

    def dma_wait_send(self, timeout_s: float) -> bool:
        return self._timed(super().dma_wait_send, timeout_s)


def _details(path: Path) -> dict[tuple[str, int], dict[str, str]]:
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    return {(r["layer"], int(r["bits"])): r for r in csv.DictReader(lines)}


def bench_model(name: str, board: TimedBoard, out_dir: Path, img2col: str = "auto") -> dict[str, object]:
    """Run the sweep of one model; returns its summary figures."""
    graph = recalibrate_bn(resolve_model(name), synthetic_inputs(resolve_model(name), 4, 99))
    w0, p0 = time.perf_counter(), time.process_time()
    s0w, s0c, s0n = board.sim_wall_s, board.sim_cpu_s, board.sim_cycles
    res = measure_full(graph, BITS, board, board.spec, warmup=0, repeats=1, progress=True, img2col=img2col)
    wall, cpu = time.perf_counter() - w0, time.process_time() - p0
    res.table.meta["sweep_wall_s"] = f"{wall:.1f}"
    stem = f"oqa_{name}" + ("" if img2col == "auto" else f"_{img2col}")
    save_result(res, out_dir / f"{stem}.csv")
    det = _details(out_dir / f"{stem}.detail.csv")
    kernels = {n.name: (n.attrs.get("kernel"), n.attrs.get("groups", 1)) for n in graph_nodes(graph)}
    summary: dict[str, object] = {"model": name, "wall_s": wall, "cpu_s": cpu,
                                  "sim_wall_s": board.sim_wall_s - s0w, "sim_cpu_s": board.sim_cpu_s - s0c,
                                  "sim_cycles": board.sim_cycles - s0n,
                                  "layers": len(res.table.layers)}
    for b in BITS:
        rows = [r for r in res.table.rows if r.bits == b]
        total = sum(r.cycles_total for r in rows)
        macs = sum(r.macs for r in rows)
        peak = board.spec.engine(b).peak_macs_per_cycle
        c3 = [r for r in rows if kernels.get(r.layer) == ((3, 3), 1)]
        summary[f"cycles_{b}"] = total
        summary[f"ms_{b}"] = total / (board.clock_mhz * 1e3)
        summary[f"util_{b}"] = macs / (total * peak)
        summary[f"energy_{b}"] = sum(r.energy_uj for r in rows)
        summary[f"beats_in_{b}"] = sum(int(det[(r.layer, b)]["beats_in"]) for r in rows)
        if c3:
            summary[f"util3x3_{b}"] = sum(r.utilization for r in c3) / len(c3)
            summary[f"util3x3_compute_{b}"] = sum(float(det[(r.layer, b)]["util_compute"]) for r in c3) / len(c3)
            summary[f"n3x3_{b}"] = len(c3)
        summary[f"ps_ms_{b}"] = sum(p.ms for p in res.ps_ops if p.bits == b)
        kinds: dict[str, list[int]] = {}
        for r in rows:
            kinds.setdefault(det[(r.layer, b)]["kind"], []).append(r.cycles_total)
        summary[f"by_kind_{b}"] = {k: sum(v) for k, v in kinds.items()}
    summary["speedup"] = summary["cycles_8"] / summary["cycles_4"]  # type: ignore[operator]
    summary["rows"] = res.table.rows
    summary["paths"] = {k: v.get("path", "host") for k, v in det.items()}
    return summary


def graph_nodes(graph):
    """Conv/dense layers with kernel/groups attrs, from the float IR (no quantization needed)."""
    from types import SimpleNamespace

    out = []
    for ly in graph.quantizable():
        kernel = tuple(getattr(ly, "kernel", ())) or None
        out.append(SimpleNamespace(name=ly.name, attrs={"kernel": kernel, "groups": getattr(ly, "groups", 1)}))
    return out


def _mcps(s: dict[str, object]) -> float:
    """Simulated cycles per CPU-second inside the simulator (millions)."""
    return s["sim_cycles"] / max(s["sim_cpu_s"], 1e-9) / 1e6  # type: ignore[operator]


def _ok(flag: bool) -> str:
    return "met" if flag else "**missed**"


def write_report(summaries: list[dict[str, object]], board: TimedBoard, path: Path, argv: list[str],
                 host_r18: dict[str, object] | None = None, two_eval: dict[str, object] | None = None) -> None:
    """docs/results/oqa.md."""
    lines = [
        "# OQA on the simulated board (Verilator RTL of the overlay)",
        "",
        f"Command: `python bench/bench_oqa.py {' '.join(argv)}` (also run by `make bench`).",
        f"Machine: {platform.processor() or platform.machine()}, {cpu_name()}; shared with other jobs while measured "
        "(wall times include that contention; CPU times do not).",
        f"Overlay: {board.spec.name} (config hash 0x{board.spec.config_hash:08x}), engines "
        + ", ".join(f"{e.bits}-bit {e.lanes} lanes x {e.tree} tree = {e.peak_macs_per_cycle} MAC/cycle" for e in board.spec.engines)
        + f"; clock {board.clock_mhz:g} MHz ({board.spec.device}); DMA model {board.dma_bytes_per_cycle:g} B/cycle, "
        f"latency {board.dma_latency} cycles.",
        "Protocol: uniform W/A bits per model, synthetic calibration and input (seed 0), warm-up 0 and 1 repeat "
        "(the simulator is deterministic), every layer's output checked bit-exact against the golden model. "
        "The zoo models are random-init; their BN statistics are re-estimated on 4 synthetic images first "
        "(`recalibrate_bn`: otherwise the deep MobileNets' activations vanish and cannot be quantized; "
        "weights and shapes, hence cycles, are unchanged).",
        "Utilization = MACs / (cycles_total x lanes x tree); compute-only utilization uses CYC_COMPUTE.",
        "",
        "## Summary",
        "",
        "| model | layers | latency 4-bit (ms) | latency 8-bit (ms) | speed-up 8/4 | util 4-bit | util 8-bit "
        "| 3x3 util 4/8 | 3x3 compute-only util 4/8 | PS ops 4/8 (ms, CPU) | sweep wall / CPU (s) | sim Mcycles/s (CPU) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        u3 = (f"{s['util3x3_4']:.3f} / {s['util3x3_8']:.3f}" if "util3x3_4" in s else "-")
        u3c = (f"{s['util3x3_compute_4']:.3f} / {s['util3x3_compute_8']:.3f}" if "util3x3_4" in s else "-")
        mcps = _mcps(s)
        lines.append(
            f"| {s['model']} | {s['layers']} | {s['ms_4']:.2f} | {s['ms_8']:.2f} | {s['speedup']:.2f}x | "
            f"{s['util_4']:.3f} | {s['util_8']:.3f} | {u3} | {u3c} | {s['ps_ms_4']:.1f} / {s['ps_ms_8']:.1f} | "
            f"{s['wall_s']:.0f} / {s['cpu_s']:.0f} | {mcps:.2f} |"
        )
    r18 = next((s for s in summaries if s["model"] == "resnet18"), None)
    sweeps = [s for s in [*summaries, host_r18] if s]
    total_cycles = sum(s["sim_cycles"] for s in sweeps)  # type: ignore[misc]
    overall = total_cycles / max(sum(s["sim_cpu_s"] for s in sweeps), 1e-9) / 1e6  # type: ignore[misc]
    overall_wall = total_cycles / max(sum(s["sim_wall_s"] for s in sweeps), 1e-9) / 1e6  # type: ignore[misc]
    min_mcps, max_mcps = min(_mcps(s) for s in sweeps), max(_mcps(s) for s in sweeps)
    lines += ["", "## Targets", ""]
    if r18:
        u3 = min(r18["util3x3_4"], r18["util3x3_8"])  # type: ignore[type-var]
        lines += [
            f"- ResNet-18 3x3 convs, average utilization >= 85 %: {r18['util3x3_4']:.1%} (4-bit), "
            f"{r18['util3x3_8']:.1%} (8-bit): {_ok(u3 >= TARGETS['util_3x3'])}.",
            f"- whole network 4-bit >= 1.6x faster than 8-bit: {r18['speedup']:.2f}x: "
            f"{_ok(r18['speedup'] >= TARGETS['speedup'])}.",  # type: ignore[operator]
            f"- full ResNet-18 OQA sweep at {{4,8}} <= 5 min: {r18['wall_s']:.0f} s wall, {r18['cpu_s']:.0f} s CPU: "
            f"{_ok(r18['wall_s'] <= TARGETS['sweep_s'])} (wall).",  # type: ignore[operator]
            f"- simulation >= 2 M cycles/s: {overall:.2f} M cycles per CPU-second inside the simulator over all "
            f"{len(sweeps)} sweeps of this run ({total_cycles / 1e6:.1f} M cycles; {overall_wall:.2f} M per "
            f"wall-second), {min_mcps:.2f}-{max_mcps:.2f} M per sweep, ResNet-18 (the busiest engines, the slowest "
            f"case) {_mcps(r18):.2f} M: {_ok(overall >= TARGETS['sim_mcps'])} (overall)"
            + ("" if min_mcps >= TARGETS["sim_mcps"] else "; below 2 M in at least one sweep") + ".",
        ]
    lines += [
        "",
        "## Where the cycles go, and why targets are missed",
        "",
        "- Simulation speed: the cores are written for a cycle-based simulator (docs/hw.md, \"Simulation "
        "speed\"): per-lane generate blocks of narrow registers, BITS x BITS offset-binary products summed in one "
        "expression per lane, operand sign flips done once per word in the overlay's operand registers, the "
        "accumulator doubling as output register, per-stage load enables (bubbles and idle engines cost no "
        "evaluation), one register per counter; the harness evaluates the model once per cycle and calls its "
        "evaluation function directly. Instructions per simulated cycle (callgrind, ResNet-18 s2b2_a_conv): "
        "4-bit 6.6 k -> 5.0 k, 8-bit 4.9 k -> 3.7 k this round (12.2 k and 7.3 k before the first rewrite). What "
        "is left: ~5 instructions per product (512 per cycle at 4 bit, 256 at 8 bit: shift, mask, multiply, add), "
        "and ~1.6 k per cycle of control logic and Verilator scheduling that an idle overlay also costs. The "
        "figure in CPU-seconds moves by +-15 % from run to run on this shared 2-core VM (the same sweep gave "
        "2.2-2.7 M on ResNet-18 in six runs); instruction counts do not.",
        "- ResNet-18 stage 4 (M = 49 output pixels) runs at ~60 % utilization: each job loads its weight tile "
        "(the layer's 2.36 M weights over several N-tiles; the weight bank holds 1024 words per lane) before it "
        "computes, and that load is not overlapped with compute.",
        "- Hardware img2col (path `hw_img2col` below; docs/hw.md): ungrouped convolutions with whole channel words "
        "and windows larger than 1x1 stream their feature map once per job instead of the im2col rows: 30-87 % "
        "fewer input words for ResNet-18's 3x3 layers (less DDR energy), but not fewer cycles: with this DMA model "
        "the host path's row stream already overlapped with compute, and each img2col job waits for the rows of "
        "its first window (+0.01-1.1 % cycles per layer; the 3x3 averages drop by 0.1-0.15 points, table below). With the input "
        "stream now mostly idle during compute, double-buffering the weight bank across jobs is the next step.",
        "- Depthwise layers run as block-diagonal GEMMs (1/32 of the issued products are useful) and dense "
        "layers with M = 1 are bound by their weight load: that is the hardware's real cost, which OQA reports.",
    ]
    if r18 and host_r18:
        lines += ["", "## Hardware img2col against host im2col (ResNet-18)", "",
                  "The same sweep with `--img2col host` (every layer streams the host's im2col rows) against the "
                  "default `auto` (3x3 convs after the stem stream their feature map):", "",
                  "| path | bits | cycles | 3x3 util | input beats | energy (uJ) | sim Mcycles/s (CPU, both widths) |",
                  "|---|---|---|---|---|---|---|"]
        for label, s in (("host", host_r18), ("auto (hw img2col)", r18)):
            mcps = _mcps(s)
            for b in BITS:
                lines.append(f"| {label} | {b} | {s[f'cycles_{b}']:,} | {s[f'util3x3_{b}']:.4f} | "
                             f"{s[f'beats_in_{b}']:,} | {s[f'energy_{b}']:,.0f} | {mcps:.2f} |")
    if r18 and two_eval:
        same = r18["rows"] == two_eval["rows"]  # HwRow equality: every field of every layer
        lines += ["", "## Simulator: one model evaluation per cycle against two (ResNet-18)", "",
                  "The default `SimBoard` evaluates the Verilator model once per cycle, at the rising edge "
                  "(`fast_step`); `fast_step=False` also evaluates it with the clock low, as a plain Verilator "
                  "testbench does. Same sweep, same run:", "",
                  "| step | simulated cycles | sim CPU (s) | sim Mcycles/s (CPU) |", "|---|---|---|---|"]
        for label, s in (("one evaluation (default)", r18), ("two evaluations", two_eval)):
            lines.append(f"| {label} | {s['sim_cycles']:,} | {s['sim_cpu_s']:.2f} | {_mcps(s):.2f} |")
        lines += ["", f"Ratio: {_mcps(r18) / max(_mcps(two_eval), 1e-9):.2f}x. Hardware tables identical "
                  f"(every field of every layer's row): {'yes' if same else '**no**'}."]
    lines += ["", "## Cycles by layer kind (sum of cycles_total)", ""]
    for s in summaries:
        for b in BITS:
            kinds = ", ".join(f"{k}: {v:,}" for k, v in s[f"by_kind_{b}"].items())  # type: ignore[union-attr]
            lines.append(f"- {s['model']} {b}-bit: {kinds}")
    lines += ["", "## Per-layer cycles (ResNet-18)", ""]
    if r18:
        lines += ["Path: `hw_img2col` streams the feature map once per job and the overlay builds the im2col rows; "
                  "`host` streams the host's im2col rows (docs/board.md).", "",
                  "| layer | bits | path | transfer-in | compute | post-proc | write-back | total | ms | util | energy (uJ) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        paths = r18["paths"]
        for r in r18["rows"]:  # type: ignore[union-attr]
            lines.append(f"| {r.layer} | {r.bits} | {paths.get((r.layer, r.bits), 'host')} | "  # type: ignore[union-attr]
                         f"{r.cycles_transfer_in} | {r.cycles_compute} | {r.cycles_postproc} | "
                         f"{r.cycles_writeback} | {r.cycles_total} | {r.latency_ms:.3f} | {r.utilization:.3f} | {r.energy_uj:.1f} |")
    lines += ["", "Full tables: `build/bench/oqa_<model>.csv` (+ `.detail.csv`, `.ps.csv`).", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def _spec():
    """The overlay of BITS over build/ip, generating the cores first when `make ip` has not run."""
    from codesign.hw.overlay import DEFAULT_IP_DIR, MissingIPError, generate_overlay_cores

    try:
        return overlay_spec(BITS)
    except MissingIPError:
        print(f"bench_oqa: generating the {BITS}-bit cores into {DEFAULT_IP_DIR} (as `make ip` would)", file=sys.stderr)
        generate_overlay_cores(BITS, DEFAULT_IP_DIR)
        return overlay_spec(BITS)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "oqa.md")
    p.add_argument("--tables", type=Path, default=REPO / "build" / "bench")
    args = p.parse_args(argv)
    board = TimedBoard(_spec())
    summaries = [bench_model(m.strip(), board, args.tables) for m in args.models.split(",") if m.strip()]
    has_r18 = any(s["model"] == "resnet18" for s in summaries)
    host_r18 = bench_model("resnet18", board, args.tables, "host") if has_r18 else None
    two_eval = None
    if has_r18 and board.fast_step:  # the same sweep with two model evaluations per cycle, side by side
        slow = TimedBoard(board.spec, fast_step=False)
        two_eval = bench_model("resnet18", slow, args.tables / "two_eval")
        slow.close()
    write_report(summaries, board, args.out, list(argv if argv is not None else sys.argv[1:]), host_r18, two_eval)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
