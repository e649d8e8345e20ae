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
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codesign import validate
from codesign.board.base import Board, BoardTimeout
from codesign.cpu_estimate import METHOD as A9_METHOD
from codesign.cpu_estimate import a9_from_host, host_gflops
from codesign.digest import array_digest
from codesign.errors import BitConfigError, CodesignError, run_cli
from codesign.hw.overlay import OverlaySpec
from codesign.hwtable import HwTable
from codesign.netrun import ImageRun, LayerMeasure, NetworkRunner
from codesign.quant.bitconfig import BitConfig
from codesign.quant.qgraph import SEARCH_PTQ, QGraph

FORMAT = "codesign-deploy"
FORMAT_VERSION = 1
PROGRESS = "progress.jsonl"
STAGE_NAMES = {"CYC_TRANSFER_IN": "transfer_in", "CYC_COMPUTE": "compute", "CYC_POSTPROC": "postproc",
               "CYC_WRITEBACK": "writeback", "CYC_TOTAL": "total"}
CALIB_IMAGES = 32  # the search's default --images


class DeployError(CodesignError):
    """The deployment was given inputs it cannot use."""


# ---- checks (before any work) --------------------------------------------------------------------


def engines_text(spec: OverlaySpec) -> str:
    """'4-bit (32 lanes x 16), 8-bit (32 lanes x 8)'."""
    return ", ".join(f"{e.bits}-bit ({e.lanes} lanes x {e.tree})" for e in spec.engines)


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


def predicted_cycles(table: HwTable, bc: BitConfig) -> dict[str, tuple[int, int]]:
    """The ILP's cost per layer: the table row at max(W, A) bits (what codesign.search sums), as
    (overlay cycles, bus cycles); their sum is the row's ``cycles_deployed``."""
    out = {}
    missing = []
    for name, lb in bc.layers.items():
        try:
            row = table.get(name, max(lb.w_bits, lb.a_bits))
        except (KeyError, CodesignError):
            missing.append(f"{name}@{max(lb.w_bits, lb.a_bits)}")
            continue
        out[name] = (int(row.cycles_total), int(row.cycles_bus))
    if missing:
        raise DeployError(f"the hardware table has no row for {', '.join(missing[:8])}"
                          f"{'...' if len(missing) > 8 else ''}; measure it for these widths "
                          "(python -m codesign.oqa) or leave --hw-table out.")
    return out


# ---- resumable per-image results ------------------------------------------------------------------


def qgraph_digest(qg: QGraph) -> str:
    """Digest of a quantized model's integers, scales and widths (what the deployment depends on)."""
    h = [qg.name, qg.input, qg.output]
    for t in qg.tensors.values():
        h.append(f"{t.name}|{t.shape}|{t.scale!r}|{t.bits}|{t.signed}")
    for n in qg.nodes:
        h.append(f"{n.name}|{n.kind}|{n.inputs}|{n.output}|{sorted((k, str(v)) for k, v in n.attrs.items())}")
        h += [f"{k}:{array_digest(np.asarray(v))}" for k, v in sorted(n.params.items())]
    import hashlib

    return hashlib.sha256("\n".join(h).encode()).hexdigest()[:16]


def atomic_write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)
    return path


class Progress:
    """``progress.jsonl``: a key line, then one line per finished image (fsynced, so a crash keeps them).

    The key covers the quantized model, the overlay, the board and the activation path; each
    image's record carries the digest of its pixels, so a rerun with more images (or other
    ones) reuses exactly the records of identical images.
    """

    def __init__(self, out: Path, key: str) -> None:
        self.path = out / PROGRESS
        self.key = key
        self.done: dict[int, dict[str, Any]] = {}
        if self.path.is_file():
            lines = self.path.read_text().splitlines()
            try:
                head = json.loads(lines[0]) if lines else {}
            except json.JSONDecodeError:
                head = {}
            if head.get("key") == key:
                for line in lines[1:]:
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:  # a torn last line: that image runs again
                        continue
                    self.done[int(rec["index"])] = rec
        if not self.done:
            atomic_write(self.path, json.dumps({"key": key}) + "\n")
        else:  # drop a torn tail so appends start on a fresh line
            atomic_write(self.path, "\n".join([json.dumps({"key": key}), *(json.dumps(r) for r in self.done.values())])
                         + "\n")

    def add(self, rec: dict[str, Any]) -> None:
        """Append one image's record durably."""
        with open(self.path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.done[int(rec["index"])] = rec


def _record(run: ImageRun, label: int | None) -> dict[str, Any]:
    logits = np.asarray(run.logits)
    return {"index": run.index, "logits": run.logits, "pred": int(logits.argmax()), "label": label,
            "wall_s": run.wall_s, "layers": [asdict(m) for m in run.layers], "ps_s": run.ps_s, "ps_kind": run.ps_kind}


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
           command: str = "") -> DeployResult:
    """Run ``x`` (float images) image by image on ``board``; write ``out``/deploy.json and report.md.

    Raises :class:`codesign.netrun.DeployMismatchError` at the first layer whose output differs from
    the golden model, :class:`BoardTimeout` when the board stops answering (finished images stay in
    ``out``/progress.jsonl and a rerun resumes).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    check_bitconfig(qg.bitconfig, qg.name, spec)
    pred = predicted_cycles(table, qg.bitconfig) if table is not None else None
    key = json.dumps([qgraph_digest(qg), spec.config_hash, getattr(board, "name", "?"), img2col])
    prog = Progress(out, key)
    runner = NetworkRunner(qg, board, spec, img2col)
    t0 = time.perf_counter()
    digests = [array_digest(np.asarray(x[i], np.float64)) for i in range(len(x))]
    todo = [i for i in range(len(x)) if prog.done.get(i, {}).get("x_digest") != digests[i]]
    for k, i in enumerate(todo):
        try:
            run = runner.run_image(qg.quantize_input(x[i:i + 1]), i)
        except BoardTimeout as err:
            raise BoardTimeout(f"{err} -- {len(prog.done)} of {len(x)} images are done and kept in {out / PROGRESS}; "
                               "rerun the same command to resume.") from None
        prog.add({**_record(run, None if y is None else int(y[i])), "x_digest": digests[i]})
        if progress:
            print(f"[deploy] image {k + 1}/{len(todo)} (#{i}): class {prog.done[i]['pred']}, {run.wall_s:.2f} s",
                  file=sys.stderr)
    wall = time.perf_counter() - t0
    data = summarize(qg, board, spec, [prog.done[i] for i in range(len(x))], pred, table, source, img2col,
                     len(todo), wall)
    data["command"] = command
    atomic_write(out / "deploy.json", json.dumps(data, indent=1))
    from codesign.deploy_report import deploy_markdown

    atomic_write(out / "report.md", deploy_markdown(data))
    return DeployResult(data, out)


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def _layers(recs: list[dict[str, Any]], pred: dict[str, tuple[int, int]] | None, spec: OverlaySpec,
            clock_mhz: float) -> list[dict[str, Any]]:
    rows = []
    for j, first in enumerate(recs[0]["layers"]):
        ms = [LayerMeasure(**r["layers"][j]) for r in recs]
        total = [m.cycles["CYC_TOTAL"] for m in ms]
        eng = spec.engine(first["w_bits"])
        meas = {STAGE_NAMES[k]: _mean([m.cycles[k] for m in ms]) for k in STAGE_NAMES}
        p, pb = (None, None) if pred is None else pred[first["layer"]]
        bus = [m.bus_cycles for m in ms if m.bus_cycles is not None]
        mb = _mean(bus) if bus else None
        rows.append({
            "layer": first["layer"], "kind": first["kind"], "w_bits": first["w_bits"], "a_bits": first["a_bits"],
            "out_bits": first["out_bits"], "engine": f"{eng.bits}-bit ({eng.lanes} lanes x {eng.tree})",
            "path": first["path"], "jobs": first["jobs"], "predicted_cycles": p, "measured_cycles": meas,
            "measured_cycles_min_max": [min(total), max(total)],
            "error_pct": None if p is None else 100.0 * (p - meas["total"]) / meas["total"],
            "bus_cycles": mb, "predicted_bus_cycles": pb,
            "error_with_bus_pct": (None if p is None or pb is None or mb is None
                                   else 100.0 * (p + pb - meas["total"] - mb) / (meas["total"] + mb)),
            "driver_ms": _mean([m.driver_s * 1e3 for m in ms]),
            "overlay_ms": meas["total"] / (clock_mhz * 1e3),
        })
    return rows


def summarize(qg: QGraph, board: Board, spec: OverlaySpec, recs: list[dict[str, Any]], pred: dict[str, tuple[int, int]] | None,
              table: HwTable | None, source: str, img2col: str, ran: int, wall_s: float) -> dict[str, Any]:
    """deploy.json from the per-image records (means per image)."""
    clock = float(board.clock_mhz)
    n = len(recs)
    layers = _layers(recs, pred, spec, clock) if n else []
    overlay = sum(r["overlay_ms"] for r in layers)
    sim = getattr(board, "cycle", None) is not None  # the simulated board counts fabric cycles itself
    bus = sum(r["bus_cycles"] or 0.0 for r in layers) / (clock * 1e3)
    driver = sum(r["driver_ms"] for r in layers)
    ps_nodes = list(recs[0]["ps_s"]) if n else []
    ps_ms = {k: _mean([r["ps_s"][k] * 1e3 for r in recs]) for k in ps_nodes}
    ps = sum(ps_ms.values())
    gflops = host_gflops()
    pred_overlay = None if pred is None else sum(p for p, _b in pred.values()) / (clock * 1e3)
    predicted = None if pred is None else sum(p + b for p, b in pred.values()) / (clock * 1e3)
    labels = [r["label"] for r in recs]
    preds = [r["pred"] for r in recs]
    has_labels = n > 0 and all(v is not None for v in labels)
    host = "host CPU time on the simulated board's machine" if sim else "measured on the board's CPU"
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "model": qg.name, "board": getattr(board, "name", "?"),
        "device": spec.device, "clock_mhz": clock, "overlay": spec.name, "config_hash": f"0x{spec.config_hash:08x}",
        "engines": engines_text(spec), "img2col": img2col,
        "bitconfig": {k: {"w_bits": v.w_bits, "a_bits": v.a_bits} for k, v in qg.bitconfig.layers.items()},
        "default_act_bits": qg.bitconfig.default_act_bits,
        "images": source, "n_images": n, "bit_exact": n > 0,
        "predictions": preds, "labels": labels if has_labels else None, "logits": [r["logits"] for r in recs],
        "top1": float(np.mean(np.equal(preds, labels)) * 100) if has_labels else None,
        "latency_ms": {
            "measured_total": overlay + bus + driver + ps, "measured_overlay": overlay, "measured_ps": ps,
            "measured_dma_driver": bus + driver, "measured_bus": bus, "measured_driver": driver,
            "predicted_sum": predicted, "predicted_overlay": pred_overlay,
            "prediction_error_pct": (None if predicted is None or not overlay
                                     else 100 * (predicted - overlay - bus) / (overlay + bus)),
            "prediction_error_overlay_pct": (None if pred_overlay is None or not overlay
                                             else 100 * (pred_overlay - overlay) / overlay),
            "a9_estimate_ps": a9_from_host(ps / 1e3, gflops) * 1e3 if sim else None,
            "a9_estimate_total": (overlay + bus + a9_from_host((ps + driver) / 1e3, gflops) * 1e3) if sim else None,
        },
        "latency_notes": {
            "measured_overlay": "sum of the layers' CYC_TOTAL counters (start to done of each job) at the board clock",
            "measured_bus": ("simulated fabric cycles of each layer outside its jobs' counters (AXI-lite descriptor and "
                             "post-process writes, DMA set-up, done polls)" if sim else
                             "wall time inside board calls minus the overlay's counted time"),
            "measured_driver": f"driver work outside board calls (lowering, im2col, packing): {host}",
            "measured_ps": f"ops the overlay does not run, golden integer ops with NumPy: {host}",
            "measured_total": "overlay + bus + driver + PS",
            "predicted_sum": ("sum over layers of the hardware table's cycles_total + cycles_bus at max(W, A) bits "
                              "(the ILP's cost), at the board clock; compared with measured_overlay + measured_bus in "
                              "prediction_error_pct"),
            "predicted_overlay": ("the table's cycles_total alone; compared with measured_overlay in "
                                  "prediction_error_overlay_pct"),
            "a9_estimate": (A9_METHOD + f"; host matmul {gflops:.1f} GFLOP/s measured here; a9_estimate_total = "
                            "overlay + bus + A9 estimate of driver and PS") if sim else None,
        },
        "layers": layers,
        "ps_ops": [{"node": k, "kind": recs[0]["ps_kind"][k], "host_ms": v} for k, v in ps_ms.items()],
        "table": None if table is None else {k: table.meta.get(k) for k in ("model", "board", "overlay", "protocol")},
        "run": {"images_run_now": ran, "wall_s": wall_s,
                "images_per_s": ran / wall_s if ran and wall_s > 0 else None},
    }


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
                     "python -m codesign.deploy " + " ".join(raw))
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
