"""``python -m codesign.deploy``: a mixed-precision network end to end on the overlay, bit-exact and timed.

    python -m codesign.deploy --run runs/x --board sim --data fashion-mnist --n 100
    python -m codesign.deploy --model resnet_s --bitconfig runs/x/bitconfig.json --board sim \\
        --images imgs.npz --out runs/x/deploy

The model is quantized with the BitConfig exactly as the search quantizes it (its PTQ on its
distilled calibration images; ``--run`` reuses the run's ``quantized/`` model), then every
image runs through the whole network (:mod:`codesign.netrun`): GEMMs on the overlay engine of
their width, everything else on the CPU with the golden integer ops, each node checked against
the golden model. Writes ``<out>/deploy.json`` (the contract other tools read) and
``<out>/report.md``; per-image results go to ``<out>/progress.jsonl`` as they finish, so a
rerun of the same command resumes where a failed run stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codesign import validate
from codesign.atomic import write_text
from codesign.board.base import Board, BoardTimeout
from codesign.deploy_progress import PROGRESS, Progress, qgraph_digest, record
from codesign.deploy_summary import DeployError, engines_text, predicted_cycles, summarize
from codesign.digest import array_digest
from codesign.errors import BitConfigError, run_cli
from codesign.hw.overlay import OverlaySpec
from codesign.hwtable import HwTable
from codesign.netrun import NetworkRunner
from codesign.quant.bitconfig import BitConfig
from codesign.quant.qgraph import SEARCH_PTQ, QGraph

CALIB_IMAGES = 32  # the search's default --images


# ---- checks (before any work) --------------------------------------------------------------------


def check_model_name(bc: BitConfig, model: str) -> None:
    """A BitConfig that names its model must name ``model``."""
    if bc.model and model and bc.model != model:
        raise BitConfigError(f"the BitConfig is for model {bc.model!r}, not {model!r}; pass the bitconfig.json of a "
                             f"search of {model!r}.")


def check_bitconfig(bc: BitConfig, model: str, spec: OverlaySpec) -> None:
    """The BitConfig is for ``model`` and every layer has an engine on the overlay (W = A, width built)."""
    check_model_name(bc, model)
    for name, lb in bc.layers.items():
        if lb.w_bits != lb.a_bits:
            raise DeployError(f"layer {name!r} is configured W{lb.w_bits}/A{lb.a_bits}, but an overlay engine "
                              f"multiplies equal widths; the overlay {spec.name} has engines {engines_text(spec)}. "
                              "Give the layer equal weight and activation bits.")
        if lb.w_bits not in spec.bits:
            raise DeployError(f"layer {name!r} needs a {lb.w_bits}-bit engine, but the overlay {spec.name} has engines "
                              f"{engines_text(spec)}. Build one with the width (make ip BITS=...) and pass --bits, "
                              "or choose the widths from the overlay's.")


# ---- the deployment ----------------------------------------------------------------------------------


@dataclass
class DeployResult:
    """deploy.json's content plus where it was written."""

    data: dict[str, Any]
    out: Path

    @property
    def latency_ms(self) -> dict[str, float]:
        """Mean per-image latencies."""
        return self.data["latency_ms"]


def deploy(qg: QGraph, board: Board, spec: OverlaySpec, x: np.ndarray, y: np.ndarray | None, out: str | Path,
           table: HwTable | None = None, source: str = "", img2col: str = "auto", progress: bool = False,
           command: str = "", batch: int = 1, runner: NetworkRunner | None = None) -> DeployResult:
    """Run ``x`` (float images) on ``board``, image by image or ``batch`` images per layer job;
    write ``out``/deploy.json and report.md.

    ``batch`` > 1 measures throughput: each layer runs once per batch (host im2col), and each
    image is credited 1/batch of the batch's cycles and times. The hardware table's rows are
    one-image jobs, so the prediction is compared only at ``batch`` 1. A ``runner`` of ``qg`` on
    ``board`` from an earlier call keeps its compiled layers (a caller that deploys in rounds).

    Raises :class:`codesign.netrun.DeployMismatchError` at the first layer whose output differs from
    the golden model, :class:`BoardTimeout` when the board stops answering (finished images stay in
    ``out``/progress.jsonl and a rerun resumes).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    check_bitconfig(qg.bitconfig, qg.name, spec)
    if batch < 1:
        raise DeployError(f"the batch must be at least 1 image, not {batch}.")
    pred = predicted_cycles(table, qg.bitconfig) if table is not None else None
    key = json.dumps([qgraph_digest(qg), spec.config_hash, getattr(board, "name", "?"), img2col,
                      *([batch] if batch > 1 else [])])
    prog = Progress(out, key)
    if runner is None or runner.qg is not qg:
        runner = NetworkRunner(qg, board, spec, img2col)
    t0 = time.perf_counter()
    digests = [array_digest(np.asarray(x[i], np.float64)) for i in range(len(x))]
    todo = [i for i in range(len(x)) if prog.done.get(i, {}).get("x_digest") != digests[i]]
    for k in range(0, len(todo), batch):
        chunk = todo[k:k + batch]
        try:
            runs = runner.run_batch(qg.quantize_input(x[chunk]), chunk)
        except BoardTimeout as err:
            raise BoardTimeout(f"{err} -- {len(prog.done)} of {len(x)} images are done and kept in {out / PROGRESS}; "
                               "rerun the same command to resume.") from None
        for i, run in zip(chunk, runs, strict=True):
            prog.add({**record(run, None if y is None else int(y[i])), "x_digest": digests[i]})
        if progress:
            first, last = chunk[0], chunk[-1]
            what = f"image {k + 1}/{len(todo)} (#{first})" if len(chunk) == 1 else \
                f"images {k + 1}-{k + len(chunk)}/{len(todo)} (#{first}-#{last})"
            print(f"[deploy] {what}: class {prog.done[first]['pred']}"
                  f"{'...' if len(chunk) > 1 else ''}, {runs[0].wall_s * len(chunk):.2f} s", file=sys.stderr)
    wall = time.perf_counter() - t0
    data = summarize(qg, board, spec, [prog.done[i] for i in range(len(x))], pred if batch == 1 else None, table,
                     source, img2col, len(todo), wall, batch)
    data["command"] = command
    write_text(out / "deploy.json", json.dumps(data, indent=1))
    from codesign.deploy_report import deploy_markdown

    write_text(out / "report.md", deploy_markdown(data))
    return DeployResult(data, out)


# ---- inputs: model, quantization, table, board -----------------------------------------------------


def search_calibration(graph: Any, seed: int = 0, n: int = CALIB_IMAGES) -> np.ndarray:
    """The calibration images a default search of ``graph`` uses (its distilled images, same seed and range)."""
    from codesign import distill as dmod
    from codesign.input_range import resolve
    from codesign.models import ZOO
    from codesign.selfcheck import holdout_count

    entry = ZOO.get(graph.name)
    rng = entry.input_range if entry else None
    domain = resolve(graph, rng, "the zoo model's training range" if rng else "", seed)
    res = dmod.distill(graph, n_images=n + holdout_count(n), iterations=dmod.DEFAULT_ITERATIONS, seed=seed,
                       progress=False, clip=domain.range, scale=domain.scale)
    return res.images[:n]


def quantize_for_deploy(graph: Any, bc: BitConfig, calib: np.ndarray) -> QGraph:
    """``graph`` quantized with ``bc`` by the search's PTQ (codesign.quant.qgraph.SEARCH_PTQ)."""
    from codesign.quant.qgraph import quantize_model

    return quantize_model(graph, bc, calib, **SEARCH_PTQ)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m codesign.deploy", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Writes OUT/deploy.json, OUT/report.md and OUT/progress.jsonl (resume).")
    src = p.add_argument_group("what to deploy (--run, or --model with --bitconfig)")
    src.add_argument("--run", help="a search run folder: its quantized/ model, bitconfig.json and hw_table.csv")
    src.add_argument("--model", help="zoo name, IR directory or Keras file")
    src.add_argument("--bitconfig", help="bitconfig.json (per-layer W/A bits) for --model")
    src.add_argument("--calib", help=".npz with x: calibration images (default: the search's distilled images)")
    src.add_argument("--hw-table", help="hardware table for the predicted sum (default: the run's, else measured)")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--data", help="fashion-mnist | mnist: the test split, with labels (default fashion-mnist)")
    data.add_argument("--images", help="a folder of PNG/JPEG files or an .npz with x [N,H,W,C] (+ optional y)")
    p.add_argument("--n", type=int, default=1000, help="images to run (default 1000)")
    p.add_argument("--board", default="sim", choices=("sim", "pynq"), help="sim (Verilator) or pynq (default sim)")
    p.add_argument("--bits", default="4,8", help="the overlay's engine widths (default 4,8, as make ip)")
    p.add_argument("--ip-dir", help="generated IP directory (default build/ip)")
    p.add_argument("--bitstream", help="overlay .bit for --board pynq (default build/overlay)")
    p.add_argument("--dma-bw", type=float, default=8.0, help="sim DMA bandwidth, bytes/cycle (default 8)")
    p.add_argument("--dma-latency", type=int, default=32, help="sim DMA latency, cycles (default 32)")
    p.add_argument("--img2col", default="auto", choices=("auto", "host", "hw"), help="activation path (default auto)")
    p.add_argument("--batch", type=int, default=1,
                   help="images per layer job (default 1: per-image latency, compared with the table's prediction); "
                        "B > 1 measures throughput: descriptor, post-process and weight transfers are paid once per "
                        "batch, the host im2col path is used, each image is credited 1/B of the batch")
    p.add_argument("--input-range", metavar="LO,HI",
                   help="pixel range the model takes (default: the zoo model's, or its Rescaling layer's); images "
                        "outside it are refused, PNG/JPEG 0..255 are mapped onto it")
    p.add_argument("--out", help="output folder (default RUN/deploy, or runs/<model>/deploy)")
    p.add_argument("--quiet", action="store_true", help="no per-image progress lines")
    validate.add_model_options(p)
    return p


def _load_inputs(args: argparse.Namespace) -> tuple[Any, BitConfig, QGraph | None, Path | None]:
    """(float graph or None, BitConfig, quantized model when reusable, default table path)."""
    from codesign.quant.qserialize import load_qgraph

    if args.run:
        run = Path(args.run)
        if not run.is_dir():
            raise DeployError(f"--run {run} is not a folder (a search's --out).")
        table = run / "hw_table.csv"
        if (run / "quantized" / "qgraph.json").is_file() and not args.model:
            qg = load_qgraph(run / "quantized")
            return None, qg.bitconfig, qg, table if table.is_file() else None
        bcp = Path(args.bitconfig) if args.bitconfig else run / "bitconfig.json"
        if not args.model:
            raise DeployError(f"--run {run} has no quantized/ model (an older run); pass --model too, it is "
                              "quantized from the run's bitconfig.json and distilled images.")
        graph = validate.load_model(args.model, args)
        return graph, BitConfig.load(bcp).validated(graph), None, table if table.is_file() else None
    if not args.model or not args.bitconfig:
        raise DeployError("say what to deploy: --run RUN_FOLDER, or --model M with --bitconfig BITCONFIG.json.")
    graph = validate.load_model(args.model, args)
    bc = BitConfig.load(args.bitconfig)
    check_model_name(bc, graph.name)
    bc = bc.validated(graph)
    sibling = Path(args.bitconfig).parent / "quantized"
    if (sibling / "qgraph.json").is_file():
        qg = load_qgraph(sibling)
        if qg.bitconfig.to_dict()["layers"] == bc.to_dict()["layers"] and qg.name == graph.name:
            return graph, bc, qg, None
    return graph, bc, None, None


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point (wrapped by run_cli)."""
    from codesign.hw.overlay import overlay_spec
    from codesign.quant.dyadic import parse_bits_list

    raw = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(raw)
    validate.positive(args.n, "--n")
    validate.positive(args.batch, "--batch")
    if args.batch > 1 and args.img2col == "hw":
        raise DeployError(f"--batch {args.batch} runs every layer on the host im2col path (the hardware img2col core "
                          "holds one image's feature map); leave --img2col at auto or host, or use --batch 1.")
    validate.positive(args.dma_bw, "--dma-bw")
    validate.positive(args.dma_latency, "--dma-latency", allow_zero=True)
    bits = parse_bits_list(args.bits)
    graph, bc, qg, table_path = _load_inputs(args)
    name = qg.name if qg is not None else graph.name
    out = Path(args.out) if args.out else (Path(args.run) / "deploy" if args.run else Path("runs") / name / "deploy")
    validate.output_dir(out)
    validate.board_available(args.board, bits, args.ip_dir)
    spec = overlay_spec(bits, args.ip_dir)
    check_bitconfig(bc, name, spec)
    table = HwTable.load(args.hw_table) if args.hw_table else (HwTable.load(table_path) if table_path else None)
    if table is not None:
        predicted_cycles(table, bc)
    from codesign.deploy_inputs import check_images, input_range, load_images, read_npz

    shape = tuple(qg.tensors[qg.input].shape) if qg is not None else tuple(graph.input_shape)
    x, y, source = load_images(args.data, args.images, shape, input_range(args.input_range, name, graph), args.n)
    calib = None
    if args.calib:
        calib = check_images(read_npz(Path(args.calib))[0], shape, None, f"--calib {args.calib}")
    # -- the work starts here --
    if qg is None:
        distilled = Path(args.run) / "distill" / "images.npz" if args.run else None
        if calib is None and distilled is not None and distilled.is_file():  # the run's own calibration batch
            calib = np.load(distilled)["images"][:CALIB_IMAGES]
        if calib is None:
            cpath = out / "calib.npz"
            if cpath.is_file():
                calib = np.load(cpath)["x"]
            else:
                print("[deploy] distilling the search's calibration images (default search settings) ...",
                      file=sys.stderr)
                calib = search_calibration(graph)
                out.mkdir(parents=True, exist_ok=True)
                np.savez(cpath, x=calib)
        qg = quantize_for_deploy(graph, bc, calib)
    from codesign import oqa

    board = oqa.open_board(args.board, bits, Path(args.ip_dir) if args.ip_dir else None, args.dma_bw,
                           args.dma_latency, Path(args.bitstream) if args.bitstream else None)
    try:
        if table is None:
            table = _measure_table(graph, bc, board, spec, out)
        res = deploy(qg, board, spec, x, y, out, table, source, args.img2col, not args.quiet,
                     "python -m codesign.deploy " + " ".join(raw), args.batch)
    finally:
        board.close()
    lat = res.latency_ms
    top = res.data["top1"]
    print(f"{res.data['n_images']} images bit-exact; latency per image {lat['measured_total']:.3f} ms "
          f"(overlay {lat['measured_overlay']:.3f} ms, predicted {lat['predicted_sum'] or float('nan'):.3f} ms)"
          + (f"; top-1 {top:.2f} %" if top is not None else ""))
    print(out / "deploy.json")
    return 0


def _measure_table(graph: Any, bc: BitConfig, board: Board, spec: OverlaySpec, out: Path) -> HwTable | None:
    """Rows for the widths the BitConfig uses, measured by OQA on this board (cached in ``out``)."""
    path = out / "hw_table.csv"
    widths = sorted({lb.w_bits for lb in bc.layers.values()})
    if path.is_file():
        t = HwTable.load(path)
        if set(widths) <= set(t.bits):
            return t
    if graph is None:
        return None
    from codesign import oqa

    print(f"[deploy] measuring the hardware table at {widths} bits for the predicted sum ...", file=sys.stderr)
    result = oqa.measure_full(graph, widths, board, spec, progress=False)
    oqa.save_result(result, path)
    return result.table


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
