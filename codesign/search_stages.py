"""The stages of ``python -m codesign.search`` as library functions: plain typed arguments, cached in a run folder.

distill (BN statistics) -> OQA hardware table (board counters) -> the method's sensitivity
(stage ``mqe``) -> its allocation (stage ``ilp``) -> exports -> deployment. The method is one
of :data:`codesign.methods.SEARCH_METHODS`, run on a :class:`codesign.methods.base.Problem`:
the search and ``bench/bench_methods.py`` run the same code. Each stage records a key of its
inputs in the run folder (:mod:`codesign.runcache`) and writes its outputs atomically.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codesign import atomic, report_tables
from codesign.digest import array_digest
from codesign.graph.ir import Graph
from codesign.hwtable import HwTable
from codesign.input_range import InputDomain
from codesign.methods.base import LayerSensitivity, Problem, SensitivityMethod
from codesign.quant.bitconfig import BitConfig
from codesign.quant.qgraph import QuantOptions
from codesign.runcache import RunFolder, fingerprint
from codesign.ui import Console

console = Console(stderr=True)


@dataclass(frozen=True)
class BoardOptions:
    """Where OQA measures and deployment runs: ``sim`` (Verilator overlay from ``ip_dir``) or ``pynq``."""

    board: str = "sim"
    ip_dir: str | None = None  # generated IP cores of the sim overlay (default build/ip)
    dma_bw: float = 8.0  # sim board DMA bandwidth, bytes/cycle
    dma_latency: int = 32  # sim board DMA latency, cycles


@dataclass(frozen=True)
class DistillOptions:
    """How the distilled images are made (codesign.distill)."""

    images: int = 32  # calibration images; the self-check's hold-out is distilled beside them
    iterations: int | None = None  # None: codesign.distill's default
    seed: int = 0
    allow_no_bn: bool = False  # models without BN: seeded Gaussian inputs


def table_bits(bits: list[int]) -> list[int]:
    """Widths OQA measures: the candidates plus 8 (the uniform-INT8 reference)."""
    return sorted(set(bits) | {8})


def stage_distill(run: RunFolder, graph: Graph, gfp: str, domain: InputDomain, opts: DistillOptions,
                  progress: bool = False) -> np.ndarray:
    """Distilled images from BN statistics (cached as distill/images.npz), self-check hold-out included.

    ``opts.images`` calibrate; ``selfcheck.holdout_count`` more are distilled in the same batch
    and kept aside for the INT8-vs-float self-check.
    """
    from codesign import distill as dmod
    from codesign.selfcheck import holdout_count

    iters = opts.iterations or dmod.DEFAULT_ITERATIONS
    n = opts.images + holdout_count(opts.images)
    key = fingerprint(["distill", gfp, n, iters, dmod.DEFAULT_LR, dmod.LR_FLOOR, opts.seed, opts.allow_no_bn,
                       domain.range, f"{domain.scale:.6g}"])
    files = ["distill/images.npz"]
    if run.cached("distill", key, files):
        return np.load(run.path / files[0])["images"]
    res = dmod.distill(graph, n_images=n, iterations=iters, seed=opts.seed, allow_no_bn=opts.allow_no_bn,
                       progress=progress, clip=domain.range, scale=domain.scale)
    if res.fallback:
        console.print("[yellow]model has no BatchNorm: using seeded Gaussian inputs (--allow-no-bn)[/]")
    with atomic.atomic_dir(run.path / "distill") as tmp:
        dmod.save_loss_curve(res, tmp)
    run.done("distill", key, res.seconds, reduction=res.reduction, fallback=res.fallback)
    return res.images


def stage_oqa(run: RunFolder, graph: Graph, gfp: str, bits: list[int], board: BoardOptions, seed: int = 0,
              hw_table: str | None = None, progress: bool = False) -> HwTable:
    """The hardware table at ``table_bits(bits)``: copied from ``hw_table`` (checked), or measured on the board (OQA)."""
    dst = run.path / "hw_table.csv"
    if hw_table:
        table = HwTable.load(hw_table)
        atomic.copy_file(hw_table, dst)
        run.done("oqa", fingerprint(["given", str(hw_table)]), 0.0, source=str(hw_table))
        return table
    widths = table_bits(bits)
    key = fingerprint(["oqa", gfp, widths, board.board, seed, board.dma_bw, board.dma_latency])
    if run.cached("oqa", key, ["hw_table.csv"]):
        return HwTable.load(dst)
    from codesign import oqa

    t0 = time.perf_counter()
    dev = oqa.open_board(board.board, widths, Path(board.ip_dir) if board.ip_dir else None, board.dma_bw,
                         board.dma_latency)
    try:
        result = oqa.measure_full(graph, widths, dev, dev.spec, seed=seed, progress=progress)
    finally:
        dev.close()
    with atomic.atomic_files(run.path) as tmp:
        oqa.save_result(result, tmp / dst.name)
    run.done("oqa", key, time.perf_counter() - t0, board=board.board)
    return result.table


def stage_sensitivity(run: RunFolder, problem: Problem, method: SensitivityMethod, gfp: str,
                      direct: bool = False) -> LayerSensitivity:
    """The method's sensitivity on the distilled images (stage ``mqe``, sensitivity.csv).

    ``direct``: also the direct Eq. 5 sensitivity at the lowest candidate width, its Spearman
    rank correlation with the method's scores and the speed-up (report.md).
    """
    from codesign.mqe import Sensitivity, direct_sensitivity, save_sensitivity_csv, spearman
    from codesign.quant.qgraph import quantize_model

    low = min(problem.candidates)
    key = fingerprint(["mqe", gfp, array_digest(problem.distilled), type(method).__name__, method.sensitivity_key(),
                       problem.seed, direct, sorted(problem.candidates), problem.quant])
    if run.cached("mqe", key, ["sensitivity.csv"]):
        return LayerSensitivity.from_json(run.stages["mqe"]["sensitivity"])
    t0 = time.perf_counter()
    sens = method.sensitivity(problem)
    layers = problem.layers
    columns = [Sensitivity(layers, np.array([col[n] for n in layers]), sens.seconds, name, {})
               for name, col in sens.columns().items()]
    extra: dict[str, Any] = {"mqe_seconds": sens.seconds}
    if direct:
        d = direct_sensitivity(problem.graph, problem.distilled, problem.distilled, low_bits=low,
                               progress=problem.progress,
                               quantize=lambda g, bc, x: quantize_model(g, bc, x, **problem.quant))
        columns.append(d)
        extra.update(direct_seconds=d.seconds, spearman=spearman(np.array([sens.scores[n] for n in d.layers]), d.scores),
                     speedup=d.seconds / max(sens.seconds, 1e-9))
    with atomic.atomic_path(run.path / "sensitivity.csv") as tmp:
        save_sensitivity_csv(tmp, columns)
    run.done("mqe", key, time.perf_counter() - t0, sensitivity=sens.to_json(), **extra)
    return sens


def stage_allocate(run: RunFolder, problem: Problem, method: SensitivityMethod, sens: LayerSensitivity,
                   meta: dict[str, Any]) -> BitConfig:
    """The method's allocation (stage ``ilp``); writes bitconfig.json (with ``meta``) and ilp_solution.json."""
    from codesign.ilp import first_last_pins, table_costs

    t0 = time.perf_counter()
    res = method.allocate(problem, sens)
    seconds = time.perf_counter() - t0
    ilp = res.ilp
    if ilp is None:
        raise TypeError(f"method {method.name!r} solves no ILP; the search runs the ILP methods only")
    bc = res.bitconfig
    bc.meta.update(meta)
    with atomic.atomic_path(run.path / "bitconfig.json") as tmp:
        bc.save(tmp)
    opts = problem.ilp
    pins = first_last_pins(table_costs(problem.graph, problem.table), opts.pin_first_last) \
        if opts.pin_first_last is not None else {}
    sol = {"method": method.name, "bits": ilp.bits, "a_bits": ilp.a_bits, "objective": ilp.objective,
           "size_mbit": ilp.size_mbit, "latency_cycles": ilp.latency_cycles, "energy_uj": ilp.energy_uj,
           "status": ilp.status, "solve_seconds": ilp.solve_seconds, "build_seconds": ilp.build_seconds,
           "omega": ilp.omega, "budgets": problem.budgets.active(), "ties": [list(t) for t in opts.ties],
           "pins": pins, "solver": ilp.solver,
           # ``ohq`` refines the ILP's choice with measurements: ``chosen`` is what bitconfig.json holds
           "chosen": {n: lb.w_bits for n, lb in bc.layers.items()},
           "refine": {k: v for k, v in res.info.items() if k.startswith("refine_")}}
    atomic.write_text(run.path / "ilp_solution.json", json.dumps(sol, indent=2))
    run.done("ilp", fingerprint({k: v for k, v in sol.items() if not k.endswith("seconds")}), seconds,
             solve_seconds=ilp.solve_seconds, solver=ilp.solver)
    return bc


def stage_export(run: RunFolder, graph: Graph, bc: BitConfig, calib: np.ndarray, gfp: str, quant: QuantOptions,
                 formats: list[str], csim: bool = True, progress: bool = False) -> list[Any]:
    """The requested export formats of the chosen config, each checked against the golden model.

    Never raises for a failing format: its result carries the warning (format, layer, why).
    """
    from codesign.export import runner
    from codesign.quant.qgraph import quantize_model

    key = fingerprint(["export", gfp, bc.to_dict()["layers"], array_digest(calib), quant, formats, csim])
    files = [runner.SUMMARY_FILE] if formats else []
    if formats and run.cached("export", key, files):
        return runner.load_results(run.path)
    t0 = time.perf_counter()
    qg = quantize_model(graph, bc, calib, **quant)
    results = runner.run_exports(run.path, qg, formats, calib, csim=csim,
                                 progress=(lambda f: console.print(f"exporting {f} ...")) if progress else None)
    run.done("export", key, time.perf_counter() - t0, formats=formats)
    return results


def stage_deploy(run: RunFolder, graph: Graph, table: HwTable, configs: dict[str, BitConfig], images: np.ndarray,
                 holdout: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None, board: BoardOptions,
                 bits: list[int], n_images: int | None, quant: QuantOptions, progress: bool = False) -> list[str]:
    """Deploy the chosen (first) config and the INT8 reference on the board (codesign.deploy_search); report lines.

    ``n_images`` None: the default count; 0: save the chosen model only, deploy nothing.
    """
    from codesign import deploy_search as ds

    ohq = next(iter(configs))
    ds.save_chosen(run.path, graph, configs[ohq], images, quant)
    n = ds.DEFAULT_IMAGES if n_images is None else n_images
    if n == 0:
        return []
    problem = ds.board_problem(board.board, table_bits(bits), board.ip_dir)
    if problem:
        return ds.skipped(f"{problem} (pass --deploy-images 0 to leave deployment out)")
    ref = "uniform INT8" if "uniform INT8" in configs else list(configs)[1]
    x, y, source = ds.deploy_images(val, holdout, images, n)
    t0 = time.perf_counter()
    data = ds.deploy_configs(run.path, graph, table, {ohq: configs[ohq], ref: configs[ref]}, images, x, y, source,
                             board.board, table_bits(bits), board.ip_dir, board.dma_bw, board.dma_latency,
                             quant, progress=progress)
    run.done("deploy", fingerprint([n, source]), time.perf_counter() - t0)
    return ds.section(data, ohq, ref)


def self_check(graph: Graph, images: np.ndarray, holdout: np.ndarray, domain: InputDomain,
               quant: QuantOptions) -> list[str]:
    """INT8-vs-float top-1 agreement on the held-out distilled images; warns below the threshold."""
    from codesign import selfcheck

    agreement = selfcheck.int8_agreement(graph, images, holdout, quant) if len(holdout) else None
    warning = selfcheck.verdict(agreement) if agreement is not None else None
    if warning:
        console.print(f"[bold yellow]warning:[/] {warning}")
    source = domain.source + (" (pass --input-range to set it)" if domain.estimated else "")
    return report_tables.input_check(source, agreement, warning, selfcheck.AGREEMENT_WARN)


__all__ = ["BoardOptions", "DistillOptions", "self_check", "stage_allocate", "stage_deploy", "stage_distill",
           "stage_export", "stage_oqa", "stage_sensitivity", "table_bits"]
