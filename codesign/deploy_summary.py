"""deploy.json from per-image records: latency split, per-layer table, the ILP's prediction.

Means per image. The prediction is the hardware table's rows at each layer's width summed (the
ILP's cost, :func:`predicted_cycles`); it is compared with the measured overlay + bus time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from codesign.board.base import Board
from codesign.cpu_estimate import METHOD as A9_METHOD
from codesign.cpu_estimate import a9_from_host, host_gflops
from codesign.errors import CodesignError
from codesign.hw.overlay import OverlaySpec
from codesign.hwtable import HwTable
from codesign.netrun import LayerMeasure
from codesign.quant.bitconfig import BitConfig
from codesign.quant.qgraph import QGraph

FORMAT = "codesign-deploy"
FORMAT_VERSION = 1
STAGE_NAMES = {"CYC_TRANSFER_IN": "transfer_in", "CYC_COMPUTE": "compute", "CYC_POSTPROC": "postproc",
               "CYC_WRITEBACK": "writeback", "CYC_TOTAL": "total"}


class DeployError(CodesignError):
    """The deployment was given inputs it cannot use."""


def engines_text(spec: OverlaySpec) -> str:
    """'4-bit (32 lanes x 16), 8-bit (32 lanes x 8)'."""
    return ", ".join(f"{e.bits}-bit ({e.lanes} lanes x {e.tree})" for e in spec.engines)


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
              table: HwTable | None, source: str, img2col: str, ran: int, wall_s: float,
              batch: int = 1) -> dict[str, Any]:
    """deploy.json from the per-image records (means per image; a batch's figures are shared by its images)."""
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
        "engines": engines_text(spec), "img2col": img2col if batch == 1 else "host (batched)", "batch": batch,
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
            "batch": (None if batch == 1 else
                      f"{batch} images per layer job (throughput): every figure is the batch's divided by the images "
                      "in it; the hardware table's rows are one-image jobs, so no prediction is compared"),
        },
        "layers": layers,
        "ps_ops": [{"node": k, "kind": recs[0]["ps_kind"][k], "host_ms": v} for k, v in ps_ms.items()],
        "table": None if table is None else {k: table.meta.get(k) for k in ("model", "board", "overlay", "protocol")},
        "run": {"images_run_now": ran, "wall_s": wall_s,
                "images_per_s": ran / wall_s if ran and wall_s > 0 else None},
    }


__all__ = ["FORMAT", "FORMAT_VERSION", "STAGE_NAMES", "DeployError", "engines_text", "predicted_cycles", "summarize"]
