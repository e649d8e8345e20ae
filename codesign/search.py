"""``python -m codesign.search``: the OHQ search end to end, on the board or the simulated board.

distill (BN statistics) -> OQA hardware table (board counters) -> 8-bit quantization + MQE
-> ILP -> evaluation against uniform INT8 and the lowest uniform width -> exports.

Every stage writes its outputs into the run folder together with a key of the arguments it
depends on (``stages.json``); a rerun with the same arguments reuses finished stages, and
report.md marks them as cached with the time they originally took. Every output is written
atomically (:mod:`codesign.atomic`). The exports run last; a failing export is a warning and
the exit code is :data:`EXIT_EXPORT_WARNINGS` (the search result and report.md stand).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from codesign import atomic, report_tables, validate
from codesign.digest import array_digest
from codesign.errors import CodesignError, DatasetError, run_cli
from codesign.graph.ir import Graph
from codesign.hwtable import HwTable
from codesign.input_range import InputDomain
from codesign.quant.bitconfig import BitConfig
from codesign.quant.dyadic import parse_bits_list
from codesign.quant.qgraph import SEARCH_PTQ, QuantOptions
from codesign.ui import Console

console = Console(stderr=True)
EVAL_BATCH = 32  # images per golden-model call: small batches keep im2col in cache (2x faster than 500)
EXIT_EXPORT_WARNINGS = 3  # the search completed and report.md is written, but an export format failed


class SearchError(CodesignError):
    """The search was given arguments it cannot use."""


# ------------------------------------------------------------------------------------------
# stage cache
# ------------------------------------------------------------------------------------------


def fingerprint(obj: Any) -> str:
    """Short stable hash of JSON-able data."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def graph_fingerprint(graph: Graph) -> str:
    """Hash of a model's structure and weights (so a retrained model invalidates the cache)."""
    h = hashlib.sha256()
    for ly in graph.layers:
        h.update(f"{ly.name}|{ly.op}|{ly.inputs}|{ly.attrs()}".encode())
        for k in sorted(ly.params):
            h.update(np.ascontiguousarray(ly.params[k]).tobytes())
    return h.hexdigest()[:16]


@dataclass
class RunFolder:
    """The run directory and its per-stage cache keys."""

    path: Path
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    reused: set[str] = field(default_factory=set)  # stages this invocation took from the cache

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """Create or reopen a run folder."""
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        f = p / "stages.json"
        stages = json.loads(f.read_text()) if f.is_file() else {}
        return cls(p, stages)

    def cached(self, stage: str, key: str, files: Sequence[str]) -> bool:
        """True when ``stage`` finished with the same key and its files still exist (then it counts as reused)."""
        s = self.stages.get(stage)
        hit = s is not None and s.get("key") == key and all((self.path / f).exists() for f in files)
        if hit:
            self.reused.add(stage)
        return hit

    def done(self, stage: str, key: str, seconds: float, **info: Any) -> None:
        """Record a finished stage (with the UTC time it finished)."""
        finished = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        self.stages[stage] = {"key": key, "seconds": round(seconds, 3), "finished": finished, **info}
        self.reused.discard(stage)
        self.save()

    def save(self) -> None:
        """Write stages.json."""
        atomic.write_text(self.path / "stages.json", json.dumps(self.stages, indent=2, default=str))

    def start(self, model_key: str) -> list[str]:
        """Begin a run of the model with fingerprint ``model_key``.

        A folder last used for another model loses that run's exports, ``quantized/`` and
        report.md first, so nothing in it describes a model it no longer holds. Returns what
        was removed.
        """
        from codesign.export.runner import clear_exports

        previous = self.stages.get("model", {}).get("key")
        removed = []
        if previous is not None and previous != model_key:
            removed = clear_exports(self.path) + [f for f in ("report.md",) if atomic.remove(self.path / f)]
        self.stages["model"] = {"key": model_key}
        self.save()
        return removed

    def status(self, stage: str) -> str:
        """'computed', or 'cached (computed <time>)' for a stage reused from an earlier run."""
        if stage not in self.reused:
            return "computed"
        return f"cached (computed {self.stages[stage].get('finished', 'in an earlier run')})"

    def seconds(self, stage: str) -> float:
        """Wall time the stage took when it was computed."""
        return float(self.stages.get(stage, {}).get("seconds", 0.0))


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
    ap.add_argument("--beta", type=float, default=0.5, help="weight of sensitivity vs hardware cost (default 0.5)")
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
    ap.add_argument("--alpha", type=float, default=0.5, help="MQE mask fraction (default 0.5)")
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
    if not 0.0 <= ns.beta <= 1.0:
        raise SearchError(f"--beta must be in [0, 1], got {ns.beta}.")
    if not 0.0 < ns.alpha < 1.0:
        raise SearchError(f"--alpha must be in (0, 1), got {ns.alpha}.")
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
        HwTable.load(args.hw_table).check_model(graph, table_bits(args))
    if not args.hw_table or args.deploy_images:  # measuring, or an explicitly asked deployment, needs the board
        validate.board_available(args.board, table_bits(args), args.ip_dir)
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


# ------------------------------------------------------------------------------------------
# stages
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


def stage_distill(run: RunFolder, graph: Graph, args: Args, gfp: str, domain: InputDomain) -> np.ndarray:
    """Distilled images from BN statistics (cached as distill/images.npz), self-check hold-out included.

    ``--images`` calibrate; ``selfcheck.holdout_count`` more are distilled in the same batch
    and kept aside for the INT8-vs-float self-check.
    """
    from codesign import distill as dmod
    from codesign.selfcheck import holdout_count

    iters = args.distill_iters or dmod.DEFAULT_ITERATIONS
    n = args.images + holdout_count(args.images)
    key = fingerprint(["distill", gfp, n, iters, dmod.DEFAULT_LR, dmod.LR_FLOOR, args.seed, args.allow_no_bn,
                       domain.range, f"{domain.scale:.6g}"])
    files = ["distill/images.npz"]
    if run.cached("distill", key, files):
        return np.load(run.path / files[0])["images"]
    res = dmod.distill(graph, n_images=n, iterations=iters, seed=args.seed, allow_no_bn=args.allow_no_bn,
                       progress=not args.quiet, clip=domain.range, scale=domain.scale)
    if res.fallback:
        console.print("[yellow]model has no BatchNorm: using seeded Gaussian inputs (--allow-no-bn)[/]")
    with atomic.atomic_dir(run.path / "distill") as tmp:
        dmod.save_loss_curve(res, tmp)
    run.done("distill", key, res.seconds, reduction=res.reduction, fallback=res.fallback)
    return res.images


def table_bits(args: Args) -> list[int]:
    """Widths OQA measures: the candidates plus 8 (the uniform-INT8 reference)."""
    return sorted(set(args.bits) | {8})


def stage_oqa(run: RunFolder, graph: Graph, args: Args, gfp: str) -> HwTable:
    """The hardware table: copied from --hw-table, or measured on the board (OQA)."""
    dst = run.path / "hw_table.csv"
    if args.hw_table:
        table = HwTable.load(args.hw_table)  # checked by check_inputs before any work
        atomic.copy_file(args.hw_table, dst)
        run.done("oqa", fingerprint(["given", str(args.hw_table)]), 0.0, source=str(args.hw_table))
        return table
    bits = table_bits(args)
    key = fingerprint(["oqa", gfp, bits, args.board, args.seed, args.dma_bw, args.dma_latency])
    if run.cached("oqa", key, ["hw_table.csv"]):
        return HwTable.load(dst)
    from codesign import oqa

    t0 = time.perf_counter()
    board = oqa.open_board(args.board, bits, Path(args.ip_dir) if args.ip_dir else None, args.dma_bw, args.dma_latency)
    try:
        result = oqa.measure_full(graph, bits, board, board.spec, seed=args.seed, progress=not args.quiet)
    finally:
        board.close()
    with atomic.atomic_files(run.path) as tmp:
        oqa.save_result(result, tmp / dst.name)
    table = result.table
    run.done("oqa", key, time.perf_counter() - t0, board=args.board)
    return table


def quant_kwargs(args: Args) -> QuantOptions:
    """Calibration options shared by every quantization of a run."""
    return {"method": args.calib, "weight_clip": args.weight_clip, "weight_round": args.weight_round}


def stage_mqe(run: RunFolder, graph: Graph, images: np.ndarray, args: Args, gfp: str) -> dict[str, float]:
    """8-bit quantization on the distilled data, then MQE (and optionally the direct Eq. 5)."""
    from codesign.mqe import direct_sensitivity, mqe_sensitivity, save_sensitivity_csv, spearman
    from codesign.quant.qgraph import quantize_model

    key = fingerprint(["mqe", gfp, array_digest(images), args.alpha,
                       args.seed, args.direct, min(args.bits), quant_kwargs(args)])
    csv_path = run.path / "sensitivity.csv"
    if run.cached("mqe", key, ["sensitivity.csv"]):
        info = run.stages["mqe"]
        return {k: float(v) for k, v in info["omega"].items()}
    t0 = time.perf_counter()
    qg8 = quantize_model(graph, BitConfig.uniform(graph, 8), images, **quant_kwargs(args))
    res = [mqe_sensitivity(qg8, images, alpha=args.alpha, seed=args.seed, progress=not args.quiet)]
    extra: dict[str, Any] = {"mqe_seconds": res[0].seconds}
    if args.direct:
        d = direct_sensitivity(graph, images, images, low_bits=min(args.bits), progress=not args.quiet,
                               quantize=lambda g, bc, x: quantize_model(g, bc, x, **quant_kwargs(args)))
        res.append(d)
        extra.update(direct_seconds=d.seconds, spearman=spearman(res[0].scores, d.scores),
                     speedup=d.seconds / max(res[0].seconds, 1e-9))
    with atomic.atomic_path(csv_path) as tmp:
        save_sensitivity_csv(tmp, res)
    run.done("mqe", key, time.perf_counter() - t0, omega=res[0].as_dict(), **extra)
    return res[0].as_dict()


def stage_ilp(run: RunFolder, graph: Graph, table: HwTable, sens: dict[str, float], args: Args) -> BitConfig:
    """Solve the bit allocation; writes search.lp, ilp_solution.json and bitconfig.json."""
    from codesign import ilp

    costs = ilp.from_hw_table(graph, table, sens, args.bits)
    size = args.size_limit if args.size_limit is not None else ilp.ratio_to_size(graph, args.ratio, args.bits)
    budgets = ilp.Budgets(size_mbit=size, latency_cycles=args.latency_limit, energy_uj=args.energy_limit)
    ties = ilp.residual_ties(graph) if args.tie_residuals else []
    pins = ilp.first_last_pins(costs, args.pin_first_last) if args.pin_first_last else {}
    # the LP file is a by-product written by PuLP (none from the built-in solver), not a result
    res = ilp.solve(costs, args.bits, budgets, beta=args.beta, ties=ties, pin=pins, lp_path=run.path / "search.lp",
                    solver=args.solver)
    bc = res.to_bitconfig(graph, meta={"method": "ohq", "budget_size_mbit": size, "beta": args.beta,
                                       "candidates": args.bits})
    with atomic.atomic_path(run.path / "bitconfig.json") as tmp:
        bc.save(tmp)
    sol = {"bits": res.bits, "a_bits": res.a_bits, "objective": res.objective, "size_mbit": res.size_mbit,
           "latency_cycles": res.latency_cycles, "energy_uj": res.energy_uj, "status": res.status,
           "solve_seconds": res.solve_seconds, "build_seconds": res.build_seconds, "omega": res.omega,
           "budgets": budgets.active(), "ties": ties, "pins": pins, "solver": res.solver}
    atomic.write_text(run.path / "ilp_solution.json", json.dumps(sol, indent=2))
    run.done("ilp", fingerprint({k: v for k, v in sol.items() if not k.endswith("seconds")}),
             res.solve_seconds + res.build_seconds, solve_seconds=res.solve_seconds, solver=res.solver)
    return bc


@dataclass
class ConfigReport:
    """What one bit configuration costs and how well it classifies."""

    name: str
    wa: str
    size_mbit: float
    cycles: float
    latency_ms: float
    energy_uj: float
    top1: float | None = None


def hw_cost(graph: Graph, table: HwTable, bc: BitConfig) -> tuple[float, float]:
    """Summed cycles and energy of a config from the table (row at max(w, a) bits per layer)."""
    from codesign.budgets import Budgets
    from codesign.ilp import table_costs

    pairs = {n: (lb.w_bits, lb.a_bits) for n, lb in bc.layers.items()}
    totals = Budgets().totals(table_costs(graph, table), pairs)
    cyc, en = totals["latency_cycles"], totals["energy_uj"]
    if cyc is None or en is None:
        for n, (w, a) in pairs.items():
            table.get(n, max(w, a))  # raises KeyError naming the missing (layer, bits) row
        raise KeyError("the hardware table lacks a row of this config")
    return cyc, en


def _wa(bc: BitConfig) -> str:
    """'8/8' for a uniform config, 'mixed' otherwise."""
    pairs = {(lb.w_bits, lb.a_bits) for lb in bc.layers.values()}
    if len(pairs) == 1:
        w, a = pairs.pop()
        return f"{w}/{a}"
    return "mixed"


def top1(graph: Graph, bc: BitConfig, calib: np.ndarray, val: tuple[np.ndarray, np.ndarray],
         qkw: QuantOptions) -> float:
    """Top-1 (%) of ``graph`` quantized with ``bc`` (calibrated on ``calib``), integer golden model."""
    from codesign.quant.golden import GoldenModel
    from codesign.quant.qgraph import quantize_model

    gm = GoldenModel(quantize_model(graph, bc, calib, **qkw))
    x, y = val
    pred = np.concatenate([gm.predict(x[i : i + EVAL_BATCH]).argmax(1) for i in range(0, len(x), EVAL_BATCH)])
    return float((pred == y).mean() * 100)


def evaluate(graph: Graph, table: HwTable, configs: dict[str, BitConfig], calib: np.ndarray,
             val: tuple[np.ndarray, np.ndarray] | None, clock_mhz: float, qkw: QuantOptions) -> list[ConfigReport]:
    """Size, cycles, ms, energy and (with data) top-1 of each config, golden model for accuracy."""
    out = []
    for name, bc in configs.items():
        cyc, en = hw_cost(graph, table, bc)
        rep = ConfigReport(name, _wa(bc), bc.size_mbit(graph), cyc, cyc / (clock_mhz * 1e3), en)
        if val is not None:
            rep.top1 = top1(graph, bc, calib, val, qkw)
        out.append(rep)
    return out


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


def write_plots(run: RunFolder, graph: Graph, table: HwTable, bc: BitConfig) -> list[Path]:
    """Per-layer sensitivity, cycles, energy and chosen-bits PNGs."""
    import csv

    from codesign import plots

    layers = [ly.name for ly in graph.quantizable()]
    with (run.path / "sensitivity.csv").open() as f:
        rows = list(csv.DictReader(f))
    series = {k: np.array([float(r[k]) for r in rows]) for k in rows[0] if k != "layer" and not k.endswith("_rank")}
    bits = table.bits
    cyc = {b: np.array([table.get(n, b).cycles_total for n in layers], float) for b in bits}
    en = {b: np.array([table.get(n, b).energy_uj for n in layers], float) for b in bits}
    sizes = [graph[n].params["kernel"].size for n in layers]
    with atomic.atomic_files(run.path) as tmp:
        plots.plot_sensitivity(layers, series, tmp / "sensitivity.png")
        plots.plot_per_bits(layers, cyc, "cycles", "per-layer cycles (board counters)", tmp / "cycles.png", log=True)
        plots.plot_per_bits(layers, en, "energy (uJ)", "per-layer energy", tmp / "energy.png", log=True)
        plots.plot_bits(layers, {n: bc[n].w_bits for n in layers}, tmp / "bits.png", sizes)
    return [run.path / f for f in ("sensitivity.png", "cycles.png", "energy.png", "bits.png")]


def stage_export(run: RunFolder, graph: Graph, bc: BitConfig, calib: np.ndarray, args: Args, gfp: str) -> list[Any]:
    """The requested export formats of the chosen config, each checked against the golden model.

    Never raises for a failing format: its result carries the warning (format, layer, why).
    """
    from codesign.export import runner
    from codesign.quant.qgraph import quantize_model

    formats = args.export_formats
    key = fingerprint(["export", gfp, bc.to_dict()["layers"], array_digest(calib), quant_kwargs(args), formats,
                       not args.no_csim])
    files = [runner.SUMMARY_FILE] if formats else []
    if formats and run.cached("export", key, files):
        return runner.load_results(run.path)
    t0 = time.perf_counter()
    qg = quantize_model(graph, bc, calib, **quant_kwargs(args))
    results = runner.run_exports(run.path, qg, formats, calib, csim=not args.no_csim,
                                 progress=None if args.quiet else lambda f: console.print(f"exporting {f} ..."))
    run.done("export", key, time.perf_counter() - t0, formats=formats)
    return results


def _pct_change(new: float, ref: float) -> str:
    """'37.8 % lower' / '2.1 % higher' of ``new`` against ``ref``."""
    if ref == 0:
        return "n/a"
    d = 100 * (1 - new / ref)
    return f"{abs(d):.1f} % {'lower' if d >= 0 else 'higher'}"


def write_report(run: RunFolder, graph: Graph, table: HwTable, reps: list[ConfigReport], args: Args,
                 exports: list[Any], extra: Sequence[str] = ()) -> Path:
    """report.md: the comparison table, stage times and provenance."""
    ohq, int8 = reps[0], reps[1]
    lines = [
        f"# OHQ search: {graph.name}",
        "",
        f"Command: `python -m codesign.search {' '.join(args.argv)}`",
        f"Board: {args.board}; device {table.meta.get('device', '?')}, clock {table.meta.get('clock_mhz', '?')} MHz; "
        f"candidate widths {args.bits}; hardware table: `hw_table.csv` ({table.meta.get('protocol', '')}); "
        f"ILP solver: {run.stages.get('ilp', {}).get('solver', '?')}.",
        "",
        "| config | W/A | size (Mbit) | cycles (jobs + bus) | latency (ms) | energy (uJ) | top-1 (%) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in reps:
        top1 = f"{r.top1:.2f}" if r.top1 is not None else "n/a"
        lines.append(f"| {r.name} | {r.wa} | {r.size_mbit:.4f} | {r.cycles:,.0f} | {r.latency_ms:.3f} | "
                     f"{r.energy_uj:.2f} | {top1} |")
    lines += ["", f"OHQ vs {int8.name}: size {ohq.size_mbit / int8.size_mbit:.2f}x, latency "
              f"{_pct_change(ohq.cycles, int8.cycles)}, energy {_pct_change(ohq.energy_uj, int8.energy_uj)}"
              + (f", top-1 {ohq.top1 - int8.top1:+.2f} points" if ohq.top1 is not None and int8.top1 is not None else "")
              + ".", "", *extra, "## Time per stage", "", "| stage | seconds | status |", "|---|---|---|"]
    for st in ("distill", "oqa", "mqe", "ilp", "evaluate", "export", "deploy"):
        if st in run.stages:
            status = run.status(st)
            if st == "oqa" and "source" in run.stages[st]:
                status = f"given (--hw-table {run.stages[st]['source']})"
            lines.append(f"| {st} | {run.seconds(st):.2f} | {status} |")
    lines.append(f"| whole run (this invocation) | {args.wall:.2f} | |")
    mqe = run.stages.get("mqe", {})
    if "spearman" in mqe:
        lines += ["", f"MQE vs direct Eq. 5 sensitivity: Spearman rho = {mqe['spearman']:.3f}; MQE "
                  f"{mqe['mqe_seconds']:.2f} s vs direct {mqe['direct_seconds']:.2f} s ({mqe['speedup']:.1f}x faster)."]
    lines += ["", *_export_section(exports, args)]
    exported = [f for r in exports for f in r.files] + (["quantized/ (integer model)", "exports.json"] if exports else [])
    lines += ["", "Files: bitconfig.json, hw_table.csv, sensitivity.csv, search.lp, ilp_solution.json, "
              "distill/, sensitivity.png, cycles.png, energy.png, bits.png" + "".join(f", {e}" for e in exported), ""]
    return atomic.write_text(run.path / "report.md", "\n".join(lines))


def _export_section(exports: list[Any], args: Args) -> list[str]:
    """report.md's export section: one line per format, failures as warnings."""
    lines = ["## Exports", ""]
    if not exports:
        return [*lines, "None requested (--export none)."]
    for r in exports:
        lines.append(f"- {'WARNING: ' if not r.ok else ''}{r.line()}")
    if any(not r.ok for r in exports):
        lines += ["", f"The search result above is complete; only the export failed (exit code {EXIT_EXPORT_WARNINGS}). "
                  "Rerun with `--export` listing the formats that work, or `--export none`."]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the search."""
    import sys

    args = parse_args(argv)
    args.ns.argv = list(sys.argv[1:] if argv is None else argv)
    from codesign import membudget

    membudget.set_budget_mb(args.max_memory_mb or None)
    t_all = time.perf_counter()
    graph = load_model(args)
    val = check_inputs(args, graph)
    run = RunFolder.open(args.out)
    gfp = graph_fingerprint(graph)
    removed = run.start(gfp)
    if removed:
        console.print(f"run folder {run.path} held another model: removed its {', '.join(removed)}")
    console.print(f"[bold]codesign search[/] {graph.name}: {len(graph.quantizable())} quantizable layers, "
                  f"widths {args.bits}, board {args.board} -> {run.path}")
    domain = input_domain(graph, args)
    distilled = stage_distill(run, graph, args, gfp, domain)
    images, holdout = distilled[: args.images], distilled[args.images :]
    table = stage_oqa(run, graph, args, gfp)
    sens = stage_mqe(run, graph, images, args, gfp)
    bc = stage_ilp(run, graph, table, sens, args)
    top = 8 if 8 in table.bits else max(table.bits)  # the uniform reference: INT8 where it was measured
    configs = {"OHQ (ours)": bc, f"uniform INT{top}": BitConfig.uniform(graph, top),
               f"uniform INT{min(args.bits)}": BitConfig.uniform(graph, min(args.bits))}
    clock = float(table.meta.get("clock_mhz", 100.0))
    t_eval = time.perf_counter()
    reps = evaluate(graph, table, configs, images, val, clock, quant_kwargs(args))
    run.done("evaluate", fingerprint([str(k) for k in configs]), time.perf_counter() - t_eval)
    check = self_check(graph, images, holdout, domain, args)
    write_plots(run, graph, table, bc)
    exports = stage_export(run, graph, bc, images, args, gfp)
    # after the export stage, which clears formats (and quantized/) it was not asked for
    deployed = stage_deploy(run, graph, table, configs, images, holdout, val, args)
    args.ns.wall = time.perf_counter() - t_all
    report = write_report(run, graph, table, reps, args, exports,
                          [*report_tables.per_layer_bits(graph, table, bc), *check, *deployed])
    _print_summary(reps, report, time.perf_counter() - t_all)
    for r in exports:
        console.print(f"[yellow]warning: {r.line()}[/]" if not r.ok else f"export {r.line()}")
    failed = [r.format for r in exports if not r.ok]
    if failed:
        console.print(f"[yellow]search completed with export warnings ({', '.join(failed)}): report {report}; "
                      f"exit code {EXIT_EXPORT_WARNINGS}[/]")
        return EXIT_EXPORT_WARNINGS
    return 0


def stage_deploy(run: RunFolder, graph: Graph, table: HwTable, configs: dict[str, BitConfig], images: np.ndarray,
                 holdout: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None, args: Args) -> list[str]:
    """Deploy the chosen config and the INT8 reference on the board (codesign.deploy_search); report lines."""
    from codesign import deploy_search as ds

    ohq = next(iter(configs))
    ds.save_chosen(run.path, graph, configs[ohq], images, quant_kwargs(args))
    n = ds.DEFAULT_IMAGES if args.deploy_images is None else args.deploy_images
    if n == 0:
        return []
    problem = ds.board_problem(args.board, table_bits(args), args.ip_dir)
    if problem:
        return ds.skipped(f"{problem} (pass --deploy-images 0 to leave deployment out)")
    ref = "uniform INT8" if "uniform INT8" in configs else list(configs)[1]
    x, y, source = ds.deploy_images(val, holdout, images, n)
    t0 = time.perf_counter()
    data = ds.deploy_configs(run.path, graph, table, {ohq: configs[ohq], ref: configs[ref]}, images, x, y, source,
                             args.board, table_bits(args), args.ip_dir, args.dma_bw, args.dma_latency,
                             quant_kwargs(args), progress=not args.quiet)
    run.done("deploy", fingerprint([n, source]), time.perf_counter() - t0)
    return ds.section(data, ohq, ref)


def self_check(graph: Graph, images: np.ndarray, holdout: np.ndarray, domain: InputDomain, args: Args) -> list[str]:
    """INT8-vs-float top-1 agreement on the held-out distilled images; warns below the threshold."""
    from codesign import selfcheck

    agreement = selfcheck.int8_agreement(graph, images, holdout, quant_kwargs(args)) if len(holdout) else None
    warning = selfcheck.verdict(agreement) if agreement is not None else None
    if warning:
        console.print(f"[bold yellow]warning:[/] {warning}")
    source = domain.source + (" (pass --input-range to set it)" if domain.estimated else "")
    return report_tables.input_check(source, agreement, warning, selfcheck.AGREEMENT_WARN)


def _print_summary(reps: list[ConfigReport], report: Path, seconds: float) -> None:
    from codesign.ui import Table

    t = Table(title="OHQ search summary")
    for c in ("config", "W/A", "size (Mbit)", "latency (ms)", "energy (uJ)", "top-1 (%)"):
        t.add_column(c)
    for r in reps:
        t.add_row(r.name, r.wa, f"{r.size_mbit:.4f}", f"{r.latency_ms:.3f}", f"{r.energy_uj:.2f}",
                  f"{r.top1:.2f}" if r.top1 is not None else "n/a")
    Console().print(t)
    Console().print(f"report: {report}  ({seconds:.1f} s)")


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
