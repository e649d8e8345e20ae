"""OQA: run every quantizable layer on the overlay at every candidate bit-width.

``python -m codesign.oqa --model resnet_s --bits 4,8 --board sim --out hw.csv``

For each bit-width ``b`` the model is quantized uniformly at ``b`` (weights and activations)
with seeded synthetic calibration data; one seeded synthetic input is traced through the
integer golden model, and every conv/dense layer runs on the board with that layer's traced
input. The board's output must equal the golden output bit for bit (else OQA stops), and
the counters give the table row: cycles per stage and total (from the RTL counters), latency
at the board clock, energy (power rails where the board has them, else activity counters x
:mod:`codesign.board.energy`), useful MACs and utilization ``MACs / (cycles_total x lanes x
tree)``. Ops the overlay does not run are timed on the CPU with the golden model and written
to a second CSV (``<out>.ps.csv``); per-layer details (compute-only utilization, jobs, wall
time, and each op's analytic compute cycles beside the counter) go to ``<out>.detail.csv``.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from codesign import validate
from codesign.board.base import Board, OverlayBoard
from codesign.board.driver import LayerRun, OverlayDriver
from codesign.board.energy import activity_energy_uj
from codesign.board.timed import TimedBoard, bus_cycles
from codesign.errors import CodesignError, run_cli
from codesign.graph.bn_stats import recalibrate_bn
from codesign.graph.ir import Graph
from codesign.hw.mapping import expected_cycles
from codesign.hwtable import HwRow, HwTable
from codesign.quant.bitconfig import BitConfig
from codesign.quant.dyadic import parse_bits_list
from codesign.quant.golden import GoldenModel
from codesign.quant.ops import PS, op_class
from codesign.quant.qgraph import QGraph, quantize_model
from codesign.sysinfo import cpu_name

CALIB_IMAGES = 8


class BitExactError(CodesignError):
    """The board's output differs from the golden model's (a hardware or driver bug)."""


@dataclass(frozen=True)
class LayerDetail:
    """What the hardware table's row does not hold."""

    layer: str
    bits: int
    kind: str
    m: int
    n: int
    k: int
    groups: int
    jobs: int
    util_compute: float  # MACs / (CYC_COMPUTE * lanes * tree)
    issued_macs: int  # CNT_MACS (includes padding lanes/elements)
    beats_in: int
    beats_out: int
    cycles_compute: int  # CYC_COMPUTE, measured
    exp_cycles_compute: int  # the op's analytic count (GemmOp.exp_cycles): exact when the model holds
    min_cycles_total: int  # analytic lower bound on cycles_total (weight load + beats per job)
    wall_s: float
    energy_source: str
    path: str = "host"  # activation path: host im2col rows or hardware img2col ("hw_img2col")


@dataclass(frozen=True)
class PsOp:
    """A node that runs on the PS, timed with the golden model on this CPU."""

    node: str
    kind: str
    bits: int
    ms: float


@dataclass
class OqaResult:
    """The hardware table plus details and PS-side timings."""

    table: HwTable
    details: list[LayerDetail]
    ps_ops: list[PsOp]


def synthetic_inputs(graph: Graph, n: int, seed: int) -> np.ndarray:
    """Seeded images in [0, 1) with the model's input shape."""
    shape = graph[graph.inputs[0]].output_shape
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=(n, *shape))


def quantize_uniform(graph: Graph, bits: int, seed: int) -> QGraph:
    """The model at uniform ``bits`` (W and A), calibrated on seeded synthetic images."""
    try:
        return quantize_model(graph, BitConfig.uniform(graph, bits), synthetic_inputs(graph, CALIB_IMAGES, seed))
    except ValueError as err:  # e.g. ranges too small for the integer ReLU6/h-swish constants
        raise CodesignError(
            f"model {graph.name!r} cannot be quantized at {bits} bit on synthetic data ({err}). "
            "Random-init models lose their activation range with depth; pass --recalibrate-bn to "
            "re-estimate the BN statistics on the synthetic images first (cycle counts do not change)."
        ) from None


def _time_ps(qg: QGraph, tr, repeats: int) -> list[PsOp]:
    ops = []
    bits = max(qg.bitconfig.layers[n.name].w_bits for n in qg.gemm_nodes()) if qg.gemm_nodes() else 0
    for node in (n for n in qg.nodes if op_class(n.kind).placement == PS):
        ins, out_t, run, times = tr.inputs[node.name], qg.tensors[node.output], op_class(node.kind).run_node, []
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            run(node, ins, out_t)
            times.append(time.perf_counter() - t0)
        ops.append(PsOp(node.name, node.kind, bits, statistics.median(times) * 1e3))
    return ops


def _row(run: LayerRun, bus: int, name: str, bits: int, board: Board, device: str) -> tuple[HwRow, str]:
    c = run.counters
    if run.energy_uj_rails is not None:
        energy, source = run.energy_uj_rails, "pmbus rails"
    else:
        energy, source = activity_energy_uj(c.values, bits, device, board.clock_mhz), "activity x table"
    total = c.cycles_total
    row = HwRow(
        layer=name, bits=bits, cycles_transfer_in=c["CYC_TRANSFER_IN"], cycles_compute=c["CYC_COMPUTE"],
        cycles_postproc=c["CYC_POSTPROC"], cycles_writeback=c["CYC_WRITEBACK"], cycles_total=total,
        latency_ms=total / (board.clock_mhz * 1e3), energy_uj=round(energy, 4), macs=run.macs,
        utilization=round(run.macs / (total * run.peak_macs_per_cycle), 6) if total else 0.0,
        bram_reads=c["CNT_BRAM_READS"], bram_writes=c["CNT_BRAM_WRITES"],
        stream_beats=c["CNT_BEATS_IN"] + c["CNT_BEATS_OUT"], cycles_bus=bus,
    )
    return row, source


def measure_full(
    graph: Graph,
    bits: list[int],
    board: Board,
    spec,
    warmup: int = 1,
    repeats: int = 1,
    seed: int = 0,
    progress: bool = True,
    layers: list[str] | None = None,
    img2col: str = "auto",
) -> OqaResult:
    """Run OQA and return the table, per-layer details and PS-side op timings.

    ``img2col`` is the driver's activation-path policy ("auto", "host" or "hw";
    :func:`codesign.hw.mapping.choose_path`); the path each layer took is in the details.
    """
    timed = TimedBoard(board)  # bus cycles: the layer's cost outside its jobs' counters
    driver = OverlayDriver(timed, spec, img2col=img2col)
    for b in bits:
        spec.engine(b)
    rows: list[HwRow] = []
    details: list[LayerDetail] = []
    ps_ops: list[PsOp] = []
    x_img = synthetic_inputs(graph, 1, seed + 1)
    for b in bits:
        qg = quantize_uniform(graph, b, seed)
        x_q = qg.quantize_input(x_img)
        tr = GoldenModel(qg).trace(x_q)
        nodes = [n for n in qg.gemm_nodes() if layers is None or n.name in layers]
        for i, node in enumerate(nodes):
            xin = tr.inputs[node.name][0]
            in_t, out_t = qg.tensors[node.inputs[0]], qg.tensors[node.output]
            runs: list[tuple[LayerRun, int]] = []
            for rep in range(warmup + max(1, repeats)):
                cyc0, sec0 = timed.cycles(), timed.seconds
                run = driver.run_layer(node, xin, in_t, out_t)
                bus = bus_cycles(timed, cyc0, sec0, run.counters.cycles_total)
                if not np.array_equal(run.output, tr.outputs[node.name]):
                    bad = int(np.count_nonzero(run.output != tr.outputs[node.name]))
                    raise BitExactError(
                        f"layer {node.name!r} at {b} bit: the board's output differs from the golden model in "
                        f"{bad} of {run.output.size} codes (run {rep}). The overlay or driver is broken."
                    )
                if rep >= warmup:
                    runs.append((run, bus))
            run, bus = sorted(runs, key=lambda rb: rb[0].counters.cycles_total)[len(runs) // 2]
            row, source = _row(run, bus, node.name, b, board, spec.device)
            rows.append(row)
            w = node.params["weight"]
            groups = int(node.attrs.get("groups", 1))
            cc = run.counters["CYC_COMPUTE"]
            details.append(LayerDetail(
                node.name, b, node.kind if groups == 1 else ("depthwise" if w.shape[2] == 1 else "grouped"),
                run.output.size // run.output.shape[-1], run.output.shape[-1] // groups,
                int(np.prod(w.shape[:-1])), groups, run.jobs,
                round(run.macs / (cc * run.peak_macs_per_cycle), 6) if cc else 0.0,
                run.counters["CNT_MACS"], run.counters["CNT_BEATS_IN"], run.counters["CNT_BEATS_OUT"],
                cc, *expected_cycles(node, xin.shape, spec.engine(b), spec),
                round(sum(r.wall_s for r, _b in runs) / len(runs), 4), source, run.path,
            ))
            if progress:
                print(f"[oqa] {b}-bit {i + 1}/{len(nodes)} {node.name}: {row.cycles_total} cycles, "
                      f"util {row.utilization:.2f}, {run.jobs} jobs, {run.wall_s:.2f} s", file=sys.stderr)
        ps_ops += _time_ps(qg, tr, max(1, repeats))
    engines = ", ".join(f"{e.bits}b:{e.lanes}x{e.tree}" for e in spec.engines)
    meta = {
        "model": graph.name,
        "device": spec.device,
        "board": board.name,
        "clock_mhz": f"{board.clock_mhz:g}",
        "overlay": spec.name,
        "config_hash": f"0x{spec.config_hash:08x}",
        "engines": f"{engines} (lanes x tree multipliers)",
        "protocol": (
            f"warmup={warmup} repeats={repeats} (median cycles_total) seed={seed}; img2col={img2col}; "
            "uniform W/A bits per row; "
            f"synthetic calibration ({CALIB_IMAGES} images U[0,1)) and one synthetic input; every output checked "
            "bit-exact against GoldenModel"
            + (f"; DMA model {board.dma_bytes_per_cycle:g} B/cycle, latency {getattr(board, 'dma_latency', '?')} cycles"
               if hasattr(board, "dma_bytes_per_cycle") else "")
        ),
        "units": (
            "cycles_*: fabric clock cycles from the overlay's 64-bit RTL counters (stages overlap); "
            "latency_ms = cycles_total / clock; energy_uj: microjoules (" + (details[0].energy_source if details else "-")
            + ", see docs/board.md); macs: useful multiply-accumulates; utilization = macs / (cycles_total x lanes x tree); "
            "bram_*: 64-bit word accesses; stream_beats: 64-bit AXI-Stream beats in+out; cycles_bus: fabric cycles "
            "of the layer outside its jobs (AXI-lite descriptor and post-process writes, DMA set-up, done polls; "
            "simulated cycles on the sim board, wall time in board calls minus the counters on hardware); the ILP "
            "costs a layer cycles_total + cycles_bus"
        ),
    }
    return OqaResult(HwTable(rows, meta), details, ps_ops)


def measure(graph: Graph, bits: list[int], board: Board, warmup: int = 1, repeats: int = 1,
            progress: bool = True, seed: int = 0) -> HwTable:
    """The hardware table of ``graph`` at ``bits`` on ``board`` (its ``spec`` attribute names the overlay)."""
    spec = board.spec  # type: ignore[attr-defined]
    return measure_full(graph, bits, board, spec, warmup, repeats, seed, progress).table


def _write_csv(path: Path, records: list, meta: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        for k, v in meta.items():
            fh.write(f"# {k}: {v}\n")
        if records:
            w = csv.DictWriter(fh, fieldnames=list(asdict(records[0])), lineterminator="\n")
            w.writeheader()
            for r in records:
                w.writerow(asdict(r))
    return path


def _side_files(out: Path) -> tuple[Path, Path]:
    """``<out>.detail.csv`` and ``<out>.ps.csv``, written next to the table."""
    stem = out.with_suffix("")
    return Path(f"{stem}.detail.csv"), Path(f"{stem}.ps.csv")


def save_result(result: OqaResult, out: Path) -> list[Path]:
    """Write ``out`` (the hardware table), ``<out>.detail.csv`` and ``<out>.ps.csv``."""
    detail, ps = _side_files(out)
    paths = [result.table.save(out)]
    paths.append(_write_csv(detail, result.details, {"model": result.table.meta.get("model", "")}))
    ps_meta = {"model": result.table.meta.get("model", ""), "units": "ms on this CPU (golden model, NumPy), median",
               "cpu": cpu_name()}
    paths.append(_write_csv(ps, result.ps_ops, ps_meta))
    return paths


def open_board(kind: str, bits: list[int], ip_dir: Path | None, dma_bw: float, dma_latency: int,
               bitstream: Path | None = None) -> OverlayBoard:
    """A SimBoard or PynqBoard for the overlay of ``bits``.

    On a PYNQ board the spec (and so the expected config hash) comes from the overlay manifest
    shipped with the bitstream (:mod:`codesign.board.manifest`); without one it is rebuilt from
    the generated IP, as for the simulated board.
    """
    from codesign.hw.overlay import overlay_spec

    if kind == "pynq":
        from codesign.board.manifest import manifest_for, overlay_name, spec_from_manifest
        from codesign.board.pynq import DEFAULT_BITSTREAM, PynqBoard

        found = manifest_for(Path(bitstream) if bitstream is not None else DEFAULT_BITSTREAM, overlay_name(bits))
        spec = spec_from_manifest(found) if found is not None else overlay_spec(bits, ip_dir)
        return PynqBoard(spec, bitstream=bitstream)
    spec = overlay_spec(bits, ip_dir)
    if kind == "sim":
        from codesign.board.sim import SimBoard

        return SimBoard(spec, dma_bytes_per_cycle=dma_bw, dma_latency=dma_latency)
    raise CodesignError(f"unknown board {kind!r}; use --board sim or --board pynq.")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m codesign.oqa", description=__doc__.splitlines()[0],
                                epilog="Writes OUT (the hardware table), OUT.detail.csv and OUT.ps.csv; "
                                       "python -m codesign.search --hw-table OUT reuses the table.")
    p.add_argument("--model", required=True, help="zoo name, IR directory or Keras .h5/.keras file")
    p.add_argument("--bits", default="4,8", help="candidate bit-widths (each needs a generated IP), default 4,8")
    p.add_argument("--board", default="sim", choices=["sim", "pynq"],
                   help="sim: the Verilator-simulated overlay on this machine; pynq: the real board (default sim)")
    p.add_argument("--out", type=Path, default=Path("hw.csv"), help="hardware table CSV (default hw.csv)")
    p.add_argument("--ip-dir", type=Path, default=None, help="generated IP directory (default build/ip, from `make ip`)")
    p.add_argument("--bitstream", type=Path, default=None, help="overlay .bit for --board pynq (default build/overlay)")
    p.add_argument("--warmup", type=int, default=1,
                   help="runs per layer discarded before measuring (caches, DMA set-up), >= 0 (default 1)")
    p.add_argument("--repeats", type=int, default=1,
                   help="measured runs per layer; the row keeps the median cycles_total, >= 1 (default 1)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the synthetic calibration images and the traced input (default 0)")
    p.add_argument("--dma-bw", type=float, default=8.0, help="sim DMA bandwidth, bytes/cycle, > 0 (default 8)")
    p.add_argument("--dma-latency", type=int, default=32, help="sim DMA latency, cycles, >= 0 (default 32)")
    p.add_argument("--img2col", default="auto", choices=["auto", "host", "hw"],
                   help="activation path: hardware img2col where it streams fewer words (auto), always host im2col "
                        "rows (host), or hardware img2col wherever supported (hw); default auto")
    p.add_argument("--layers", default="", help="comma-separated subset of layers (default: all)")
    p.add_argument("--recalibrate-bn", action="store_true",
                   help="re-estimate BN statistics on synthetic images first (random-init models)")
    p.add_argument("--quiet", action="store_true", help="no per-layer progress lines")
    validate.add_model_options(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point (wrapped by run_cli)."""
    args = _parser().parse_args(argv)
    bits = parse_bits_list(args.bits)
    if args.warmup < 0 or args.repeats < 1:
        raise CodesignError("--warmup must be >= 0 and --repeats >= 1.")
    validate.positive(args.dma_bw, "--dma-bw")
    validate.positive(args.dma_latency, "--dma-latency", allow_zero=True)
    for out in (args.out, *_side_files(args.out)):
        validate.output_file(out)
    graph = validate.load_model(args.model, args)
    if args.recalibrate_bn:
        graph = recalibrate_bn(graph, synthetic_inputs(graph, 4, args.seed + 99))
    if not graph.quantizable():
        raise CodesignError(f"model {graph.name!r} has no conv/dense layer to measure.")
    layers = [s.strip() for s in args.layers.split(",") if s.strip()] or None
    if layers:
        unknown = sorted(set(layers) - {ly.name for ly in graph.quantizable()})
        if unknown:
            raise CodesignError(f"--layers names layers model {graph.name!r} does not have: {', '.join(unknown)}.")
    validate.board_available(args.board, bits, args.ip_dir)
    board = open_board(args.board, bits, args.ip_dir, args.dma_bw, args.dma_latency, args.bitstream)
    t0 = time.perf_counter()
    try:
        result = measure_full(graph, bits, board, board.spec, args.warmup, args.repeats, args.seed,
                              not args.quiet, layers, args.img2col)
    finally:
        board.close()
    result.table.meta["sweep_wall_s"] = f"{time.perf_counter() - t0:.1f}"
    if args.recalibrate_bn:
        result.table.meta["protocol"] += "; BN statistics re-estimated on 4 synthetic images (--recalibrate-bn)"
    for p in save_result(result, args.out):
        print(p)
    return 0


def cli() -> None:
    """Console entry."""
    sys.exit(run_cli(main))


if __name__ == "__main__":
    cli()
