"""``python -m codesign.search``: the OHQ search end to end, on the board or the simulated board.

distill (BN statistics) -> OQA hardware table (board counters) -> the method's sensitivity
(default ``ohq``: per-width Fisher estimate; ``--method ohq-paper``: the paper's MQE) -> its ILP ->
evaluation against uniform INT8 and the lowest uniform width -> exports -> deployment.

This module is the command line only. The stages are :mod:`codesign.search_stages` (each
cached in the run folder, :mod:`codesign.runcache`); the method runs on a
:class:`codesign.methods.base.Problem` from the registry (:data:`codesign.methods.SEARCH_METHODS`),
the same code ``bench/bench_methods.py`` measures; evaluation is :mod:`codesign.evaluate`, the
report :mod:`codesign.report`. Every output is written atomically (:mod:`codesign.atomic`). The
exports run last; a failing export is a warning and the exit code is :data:`EXIT_EXPORT_WARNINGS`
(the search result and report.md stand).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codesign import report_tables, validate
from codesign.errors import CodesignError, DatasetError, run_cli
from codesign.evaluate import evaluate
from codesign.graph.ir import Graph
from codesign.hwtable import HwTable
from codesign.input_range import InputDomain
from codesign.methods import DEFAULT_METHOD, SEARCH_METHODS
from codesign.methods.base import IlpOptions, Problem
from codesign.quant.bitconfig import BitConfig
from codesign.quant.dyadic import parse_bits_list
from codesign.quant.qgraph import SEARCH_PTQ, QuantOptions
from codesign.report import EXIT_EXPORT_WARNINGS, RunInfo, print_summary, write_plots, write_report
from codesign.runcache import RunFolder, fingerprint, graph_fingerprint
from codesign.search_stages import (
    BoardOptions,
    DistillOptions,
    self_check,
    stage_allocate,
    stage_deploy,
    stage_distill,
    stage_export,
    stage_oqa,
    stage_sensitivity,
    table_bits,
)
from codesign.ui import Console

console = Console(stderr=True)


class SearchError(CodesignError):
    """The search was given arguments it cannot use."""


# ------------------------------------------------------------------------------------------
# arguments
# ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The CLI."""
    ap = argparse.ArgumentParser(prog="python -m codesign.search", description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="zoo name, .h5/.keras file or IR directory")
    ap.add_argument("--weights", help="weights file for --model (an .h5 with the same architecture)")
    ap.add_argument("--board", default="sim", choices=("sim", "pynq"), help="where OQA measures (default: sim)")
    ap.add_argument("--bits", default="4,8", help="candidate widths, e.g. 2,4,6,8 (default 4,8)")
    budget = ap.add_mutually_exclusive_group()
    budget.add_argument("--size-limit", type=float, metavar="MBIT", help="weight size budget in Mbit")
    budget.add_argument("--ratio", type=float, default=None,
                        help="size budget as R in [0,1] between uniform-lowest and uniform-highest width (default 0.5)")
    ap.add_argument("--latency-limit", type=float, metavar="CYCLES", help="latency budget (sum of the layers' cycles, jobs + bus, as the table's rows)")
    ap.add_argument("--energy-limit", type=float, metavar="UJ", help="energy budget in microjoules")
    ap.add_argument("--method", default=DEFAULT_METHOD, choices=tuple(SEARCH_METHODS),
                    help=f"bit-allocation method (codesign.methods; default {DEFAULT_METHOD}: per-width sensitivity, "
                         "min sum omega_i(b_i) under the budgets; ohq-paper: the paper's MQE + linear Omega ILP)")
    ap.add_argument("--beta", type=float, default=None,
                    help="weight of sensitivity vs hardware cost in the paper's Omega (ohq-paper, ohq-w-linear; "
                         "default 0.5)")
    ap.add_argument("--tie-residuals", action="store_true", help="layers summed by one residual add share a width")
    ap.add_argument("--pin-first-last", type=int, metavar="BITS", help="pin the first and last layer to BITS")
    ap.add_argument("--hw-table", help="use this OQA table instead of measuring (CSV from python -m codesign.oqa)")
    ap.add_argument("--ip-dir", help="generated IP cores for the sim overlay (default build/ip, from `make ip`)")
    ap.add_argument("--dma-bw", type=float, default=8.0, help="sim board DMA bandwidth, bytes/cycle (default 8)")
    ap.add_argument("--dma-latency", type=int, default=32, help="sim board DMA latency, cycles (default 32)")
    ap.add_argument("--val-data", help="fashion-mnist | mnist | path.npz with x, y: report top-1")
    ap.add_argument("--val-images", type=int, default=2000, help="validation images used (default 2000)")
    ap.add_argument("--images", type=int, default=32, help="distilled images (default 32)")
    ap.add_argument("--deploy-images", type=int, default=None, metavar="N",
                    help="deploy the chosen config and uniform INT8 on the board on N images (the first --val-data "
                         "images, else distilled ones), bit-exact, latency measured; 0 disables (default 8; skipped "
                         "with a note when the board cannot be opened)")
    ap.add_argument("--distill-iters", type=int, default=None, help="distillation iterations (default: codesign.distill)")
    ap.add_argument("--alpha", type=float, default=None,
                    help="MQE mask fraction (ohq-paper, ohq-b0.75, ohq-mqe-only; default 0.5)")
    ap.add_argument("--calib", default=SEARCH_PTQ["method"], choices=("minmax", "percentile", "mse"),
                    help="activation calibration on the distilled data (default mse)")
    ap.add_argument("--weight-clip", default=SEARCH_PTQ["weight_clip"], choices=("max", "mse"),
                    help="per-channel weight scale rule (default mse: least-squares clip)")
    ap.add_argument("--weight-round", default=SEARCH_PTQ["weight_round"], choices=("nearest", "gptq"),
                    help="weight rounding onto the grid (default gptq: error compensation on the distilled data)")
    ap.add_argument("--input-range", metavar="LO,HI",
                    help="pixel range of the model's inputs; distilled images are kept inside it "
                         "(default: the zoo model's training range, none for model files; 'none' disables)")
    ap.add_argument("--direct", action="store_true", help="also compute the direct Eq. 5 sensitivity and its rank correlation")
    ap.add_argument("--allow-no-bn", action="store_true", help="models without BN: distill from Gaussian inputs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export", default=None, metavar="FORMATS",
                    help="export formats: a comma-separated list of qkeras, hls4ml, or none (default qkeras,hls4ml); "
                         "each export is checked against the golden model; a failing format is a warning "
                         f"and the exit code is {EXIT_EXPORT_WARNINGS}")
    ap.add_argument("--no-export", action="store_true", help="same as --export none")
    ap.add_argument("--no-csim", action="store_true",
                    help="write the hls4ml project without compiling its g++ C-sim to check it against the golden model")
    ap.add_argument("--out", default=None, help="run folder (default runs/<model>)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--solver", default="auto", choices=("auto", "cbc", "coin", "builtin"),
                    help="ILP solver: PuLP's bundled CBC, a system cbc, or the built-in exact one "
                         "(default auto: the first of these that runs here)")
    ap.add_argument("--max-memory-mb", type=float, default=400.0, metavar="MB",
                    help="memory budget: distillation, MQE and calibration run in micro-batches sized to stay "
                         "under it (default 400, for a 512 MB PYNQ-Z2; 0: no bound, full batches)")
    validate.add_model_options(ap)
    return ap


@dataclass
class Args:
    """Validated arguments."""

    ns: argparse.Namespace
    bits: list[int]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ns, name)


def parse_args(argv: Sequence[str] | None) -> Args:
    """Parse and validate (bad values raise user errors, not tracebacks)."""
    from codesign.export.runner import parse_formats

    ns = build_parser().parse_args(argv)
    bits = parse_bits_list(ns.bits)
    if ns.no_export and ns.export not in (None, "none"):
        raise SearchError(f"--no-export contradicts --export {ns.export}; give one of them.")
    ns.export_formats = parse_formats("none" if ns.no_export else ns.export)
    if ns.ratio is None and ns.size_limit is None:
        ns.ratio = 0.5
    ns.method_settings = _method_settings(ns)
    if ns.images < 2:
        raise SearchError("--images must be at least 2 (batch statistics need a batch).")
    _check_numbers(ns, bits)
    if ns.out is None:
        ns.out = f"runs/{Path(ns.model).stem}"
    validate.output_dir(ns.out)
    ns.input_range, ns.input_range_source = _input_range(ns.input_range, ns.model)
    from codesign.solvers import resolve

    resolve(ns.solver)  # a solver that cannot run here is a user error before any stage runs
    if not ns.max_memory_mb >= 0:
        raise SearchError(f"--max-memory-mb must be >= 0 (0: no bound), got {ns.max_memory_mb}.")
    return Args(ns, bits)


def _check_numbers(ns: argparse.Namespace, bits: list[int]) -> None:
    """Budgets, board model and counts: refused here, before the model is even loaded."""
    validate.fraction(ns.ratio, "--ratio")
    validate.positive(ns.size_limit, "--size-limit")
    validate.positive(ns.latency_limit, "--latency-limit")
    validate.positive(ns.energy_limit, "--energy-limit")
    validate.positive(ns.dma_bw, "--dma-bw")
    validate.positive(ns.dma_latency, "--dma-latency", allow_zero=True)
    validate.positive(ns.val_images, "--val-images")
    validate.positive(ns.deploy_images, "--deploy-images", allow_zero=True)
    if ns.distill_iters is not None:
        validate.positive(ns.distill_iters, "--distill-iters", allow_zero=True)
    validate.pins_in_candidates(ns.pin_first_last, bits)
    validate.input_shape(ns.input_shape)


def check_inputs(args: Args, graph: Graph) -> tuple[np.ndarray, np.ndarray] | None:
    """Model-dependent checks before any work: the hardware table (or the board); returns --val-data."""
    if args.hw_table:
        HwTable.load(args.hw_table).check_model(graph, table_bits(args.bits))
    if not args.hw_table or args.deploy_images:  # measuring, or an explicitly asked deployment, needs the board
        validate.board_available(args.board, table_bits(args.bits), args.ip_dir)
    val = load_val(args)
    if val is not None:
        validate.val_data(*val, graph, args.val_data)
    return val


def _input_range(text: str | None, model: str) -> tuple[tuple[float, float] | None, str]:
    """--input-range 'LO,HI' | 'none' | None (zoo default) -> ((lo, hi) or None, where it came from)."""
    if text is None:
        from codesign.models import ZOO

        entry = ZOO.get(model)
        rng = entry.input_range if entry else None
        return rng, ("the zoo model's training range" if rng else "")
    if text.strip().lower() == "none":
        return None, "none"
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise SearchError(f"--input-range must be 'LO,HI' (e.g. 0,1) or 'none', got {text!r}.") from None
    if not lo < hi:
        raise SearchError(f"--input-range needs LO < HI, got {text!r}.")
    return (lo, hi), "--input-range"


def _method_settings(ns: argparse.Namespace) -> dict[str, float]:
    """--beta/--alpha for the methods that take them; given to another method they are a user error."""
    takes = SEARCH_METHODS[ns.method]
    out: dict[str, float] = {}
    for name, flag in (("beta", "--beta"), ("alpha", "--alpha")):
        value = getattr(ns, name)
        if value is None:
            continue
        if name not in takes:
            users = ", ".join(m for m, s in SEARCH_METHODS.items() if name in s)
            raise SearchError(f"{flag} does not apply to --method {ns.method}; it sets {users}.")
        out[name] = float(value)
    if "beta" in out and not 0.0 <= out["beta"] <= 1.0:
        raise SearchError(f"--beta must be in [0, 1], got {out['beta']}.")
    if "alpha" in out and not 0.0 < out["alpha"] < 1.0:
        raise SearchError(f"--alpha must be in (0, 1), got {out['alpha']}.")
    return out


# ------------------------------------------------------------------------------------------
# model, data and problem
# ------------------------------------------------------------------------------------------


def load_model(args: Args) -> Graph:
    """Resolve --model (and --weights) to an IR graph with finite weights."""
    if not args.weights:
        return validate.load_model(args.model, args.ns)
    graph = _keras_with_weights(args.model, args.weights, validate.input_shape(args.input_shape), args.trust_model)
    validate.finite_weights(graph)
    return graph


def _keras_with_weights(spec: str, weights: str, input_shape: tuple[int, int, int] | None = None,
                        trust_model: bool = False) -> Graph:
    """Build the Keras model named by ``spec`` (zoo name or model file), load ``weights``, import."""
    from codesign.errors import ModelFileError
    from codesign.graph.keras_import import from_keras
    from codesign.models import ZOO

    if spec in ZOO:
        from codesign.models.keras_zoo import build

        model = build(spec)
    else:
        from codesign.graph.keras_files import load_keras_model

        model = load_keras_model(spec, trust_model=trust_model)
    try:
        model.load_weights(weights)
    except (OSError, ValueError) as err:
        raise ModelFileError(f"weights file {weights} does not match model {spec!r} ({err}).") from None
    return from_keras(model, name=spec if spec in ZOO else None, input_shape=input_shape)


def input_domain(graph: Graph, args: Args) -> InputDomain:
    """Where distilled images live (codesign.input_range); warns loudly when only estimated."""
    from codesign.input_range import resolve

    domain = resolve(graph, args.input_range, args.input_range_source, args.seed)
    if domain.estimated:
        console.print(f"[bold yellow]warning:[/] model {graph.name!r} does not say which pixel range it takes (no "
                      f"--input-range, no Rescaling/Normalization layer); input scale {domain.source}. Pass "
                      "--input-range LO,HI (e.g. 0,255 or 0,1) if you know the range the model was trained on.")
    return domain


def quant_kwargs(args: Args) -> QuantOptions:
    """Calibration options shared by every quantization of a run."""
    return {"method": args.calib, "weight_clip": args.weight_clip, "weight_round": args.weight_round}


def make_problem(args: Args, graph: Graph, table: HwTable, images: np.ndarray, run: RunFolder) -> Problem:
    """The search problem: budgets from --size-limit/--ratio and the hardware limits, ILP options, data."""
    from codesign.ilp import Budgets, ratio_to_size, residual_ties

    size = args.size_limit if args.size_limit is not None else ratio_to_size(graph, args.ratio, args.bits)
    budgets = Budgets(size_mbit=size, latency_cycles=args.latency_limit, energy_uj=args.energy_limit)
    ties = tuple(tuple(t) for t in residual_ties(graph)) if args.tie_residuals else ()
    # the LP file is a by-product written by PuLP (none from the built-in solver), not a result
    ilp = IlpOptions(ties=ties, pin_first_last=args.pin_first_last, solver=args.solver, lp_path=run.path / "search.lp")
    return Problem(graph, table, list(args.bits), budgets, images, seed=args.seed, quant=quant_kwargs(args),
                   progress=not args.quiet, ilp=ilp)


def load_val(args: Args) -> tuple[np.ndarray, np.ndarray] | None:
    """The labelled validation subset, or None without --val-data."""
    if not args.val_data:
        return None
    from codesign.datasets import load_dataset

    try:
        x, y = load_dataset(args.val_data, "test")
    except DatasetError:
        raise
    except (OSError, ValueError) as err:
        raise DatasetError(f"--val-data {args.val_data!r} could not be read ({err}).") from None
    return x[: args.val_images], y[: args.val_images]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the search."""
    import sys

    from codesign.export.runner import clear_exports
    from codesign.methods import search_method

    args = parse_args(argv)
    command = " ".join(sys.argv[1:] if argv is None else argv)
    from codesign import membudget

    membudget.set_budget_mb(args.max_memory_mb or None)
    t_all = time.perf_counter()
    graph = load_model(args)
    val = check_inputs(args, graph)
    method = search_method(args.method, **args.method_settings)
    run = RunFolder.open(args.out)
    gfp = graph_fingerprint(graph)
    removed = run.start(gfp, clear_exports)
    if removed:
        console.print(f"run folder {run.path} held another model: removed its {', '.join(removed)}")
    console.print(f"[bold]codesign search[/] {graph.name}: {len(graph.quantizable())} quantizable layers, "
                  f"widths {args.bits}, method {args.method}, board {args.board} -> {run.path}")
    progress = not args.quiet
    domain = input_domain(graph, args)
    distilled = stage_distill(run, graph, gfp, domain,
                              DistillOptions(args.images, args.distill_iters, args.seed, args.allow_no_bn), progress)
    images, holdout = distilled[: args.images], distilled[args.images :]
    board = BoardOptions(args.board, args.ip_dir, args.dma_bw, args.dma_latency)
    table = stage_oqa(run, graph, gfp, args.bits, board, args.seed, args.hw_table, progress)
    problem = make_problem(args, graph, table, images, run)
    sens = stage_sensitivity(run, problem, method, gfp, args.direct)
    settings = {k: getattr(method, k) for k in SEARCH_METHODS[args.method]}  # e.g. ohq-paper's beta, alpha
    bc = stage_allocate(run, problem, method, sens, {"budget_size_mbit": problem.budgets.size_mbit,
                                                     "candidates": args.bits, **settings})
    top = 8 if 8 in table.bits else max(table.bits)  # the uniform reference: INT8 where it was measured
    configs = {"OHQ (ours)": bc, f"uniform INT{top}": BitConfig.uniform(graph, top),
               f"uniform INT{min(args.bits)}": BitConfig.uniform(graph, min(args.bits))}
    clock = float(table.meta.get("clock_mhz", 100.0))
    t_eval = time.perf_counter()
    reps = evaluate(graph, table, configs, images, val, clock, quant_kwargs(args))
    run.done("evaluate", fingerprint([str(k) for k in configs]), time.perf_counter() - t_eval)
    check = self_check(graph, images, holdout, domain, quant_kwargs(args))
    write_plots(run, graph, table, bc)
    exports = stage_export(run, graph, bc, images, gfp, quant_kwargs(args), args.export_formats,
                           csim=not args.no_csim, progress=progress)
    # after the export stage, which clears formats (and quantized/) it was not asked for
    deployed = stage_deploy(run, graph, table, configs, images, holdout, val, board, args.bits, args.deploy_images,
                            quant_kwargs(args), progress)
    info = RunInfo(command, args.board, args.bits, args.method, time.perf_counter() - t_all)
    report = write_report(run, graph, table, reps, info, exports,
                          [*report_tables.per_layer_bits(graph, table, bc), *check, *deployed])
    print_summary(reps, report, time.perf_counter() - t_all)
    for r in exports:
        console.print(f"[yellow]warning: {r.line()}[/]" if not r.ok else f"export {r.line()}")
    failed = [r.format for r in exports if not r.ok]
    if failed:
        console.print(f"[yellow]search completed with export warnings ({', '.join(failed)}): report {report}; "
                      f"exit code {EXIT_EXPORT_WARNINGS}[/]")
        return EXIT_EXPORT_WARNINGS
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
