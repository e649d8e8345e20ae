"""OHQ against the baselines on the trained small zoo models, on one simulated board.

For every model: distil 32 images from the BN statistics, measure the OQA hardware table on the
simulated board (every layer at every width, RTL counters), then for every candidate-width set
(``--bit-sets``, default {4,8} and {2,4,8}) run every method at every budget and seed, and
evaluate each chosen configuration the same way: quantized with the same PTQ calibrated on the
distilled images, top-1 from the integer golden model on the Fashion-MNIST test images (all
10,000 by default), cycles/energy from the same table. The budget is a latency bound
``Lmin + f * (L8 - Lmin)`` between all layers at the narrowest width and INT8, at the
fractions ``--fractions`` (``--budget size``: the paper's size ratio instead). Every method
gets the same budgets.

Differences between methods are paired (same images): a baseline point counts as beating
``ohq`` only when no ``ohq`` point is at most as slow and not significantly less accurate
(McNemar's exact test, :mod:`codesign.methods.stats`); the report gives the paired bootstrap
CI of every such comparison. Writes ``docs/results/methods.md``,
``docs/results/pareto_<model>_<set>.png`` and the raw records to ``build/bench/methods/``.

    .venv/bin/python bench/bench_methods.py                      # full run (make bench)
    .venv/bin/python bench/bench_methods.py --models resnet_s --val-images 2000 --fractions 0.2,0.5,0.8
    .venv/bin/python bench/bench_methods.py --report-only        # re-render from build/bench/methods

Stochastic methods run with every seed in ``--seeds``; deterministic ones once. HAQ runs at
``--haq-fractions`` only (each episode quantizes and evaluates the model).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RAW = ROOT / "build" / "bench" / "methods"
DOC = ROOT / "docs" / "results" / "methods.md"
PLOTS = ROOT / "docs" / "results"

ABLATION = ("ohq-paper", "ohq-w-linear", "ohq-1draw", "ohq-mqe", "ohq-fisher", "ohq")
ABLATION_LABEL = {"ohq-paper": "paper OHQ (MQE alpha 0.5, linear Omega ILP)",
                  "ohq-w-linear": "+ per-width noise-matched masks (4 draws), paper's linear ILP",
                  "ohq-1draw": "+ objective min sum omega_i(b_i) under the budgets, 1 draw",
                  "ohq-mqe": "+ 4 draws averaged at equal cost (session-5 ohq)",
                  "ohq-fisher": "MQE replaced by the Fisher estimate of the PTQ's own b-bit weights, 4 probes",
                  "ohq": "+ measured refinement of the ILP's choice, 16 configurations (= ohq)"}
BASELINES = ("ohq-paper", "direct", "zeroq", "hawq-v3", "haq")
MIXED = ("ohq", "ohq-fisher", "ohq-mqe", "ohq-1draw", "ohq-w-linear", "ohq-paper", "direct", "zeroq", "hawq-v3", "haq")
OHQ_FRONT = ("ohq",)
LABEL = {"int8": "uniform INT8", "ohq": "OHQ (ours, improved)", "ohq-paper": "OHQ as in the paper",
         "ohq-fisher": "OHQ, Fisher + ILP (no refinement)", "ohq-mqe": "OHQ, per-width MQE (4 draws)",
         "ohq-1draw": "OHQ, 1 draw", "ohq-w-linear": "OHQ, per-width masks + linear ILP",
         "ohq-b0.75": "OHQ paper, beta 0.75", "ohq-mqe-only": "OHQ paper, MQE only", "ohq-oqa-only": "OHQ, OQA only",
         "direct": "Direct Eq.5 + OQA", "zeroq": "ZeroQ (KL + Pareto DP/ILP)",
         "hawq-v3": "HAWQ-v3 (Hessian trace + ILP)", "haq": "HAQ (DDPG, PTQ reward)"}
USES_DISTILLED = {"ohq", "ohq-fisher", "ohq-mqe", "ohq-1draw", "ohq-w-linear", "ohq-paper", "ohq-b0.75", "ohq-mqe-only", "direct", "zeroq"}
ALPHA = 0.05  # significance level of the paired comparisons


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The bench CLI."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet_s,mobilenetv2_s,mobilenetv3_s")
    ap.add_argument("--fractions", default="0.02,0.1,0.25,0.5,0.75,0.9",
                    help="budgets: latency Lmin + f (L8 - Lmin) (or the size ratio with --budget size)")
    ap.add_argument("--budget", choices=("latency", "size"), default="latency")
    ap.add_argument("--bit-sets", default="4,8;2,4,8", help="candidate-width sets, ';'-separated")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--methods", default=",".join(MIXED))
    ap.add_argument("--haq-episodes", type=int, default=40, help="HAQ episodes per search (default 40; HAQ itself searches for hundreds of episodes)")
    ap.add_argument("--haq-val", type=int, default=200, help="labelled images per HAQ reward (default 200)")
    ap.add_argument("--haq-fractions", default="0.5")
    ap.add_argument("--val-images", type=int, default=10000)
    ap.add_argument("--train-images", type=int, default=256, help="labelled train images (HAWQ-v3 Hessian, HAQ reward)")
    ap.add_argument("--distill-iterations", type=int, default=None, help="distillation steps (default: codesign.distill's)")
    ap.add_argument("--old-distill", type=int, default=0,
                    help="also distil with this many iterations (the previous default) and evaluate uniform INT8/INT-min "
                         "with those images, to show calibration quality side by side (0: skip)")
    ap.add_argument("--jobs", type=int, default=1, help="models evaluated in parallel (default 1: the cores are shared)")
    ap.add_argument("--tables", help="directory with <model>.csv OQA tables from `python -m codesign.oqa` to reuse "
                    "instead of measuring (they must cover the widths)")
    ap.add_argument("--ip-dir", help="IP folder from `python -m codesign.ip --bits ...` the sim board measures with: "
                    "DIR for every set, or 'SET=DIR;...' per set (e.g. '2,4,8=build/ip248'; other sets: build/ip)")
    ap.add_argument("--no-match-budgets", dest="match_budgets", action="store_false",
                    help="do not re-run ohq at each uncovered baseline point's latency")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="print, do not write docs/")
    return ap.parse_args(argv)


def floats(text: str) -> list[float]:
    """'0.25,0.5' -> [0.25, 0.5]."""
    return [float(v) for v in text.split(",") if v.strip()]


def ints(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]."""
    return [int(v) for v in text.split(",") if v.strip()]


# ---- one model -------------------------------------------------------------------------------------
class Evaluator:
    """Per-image correctness (integer golden model), size and table cost of a config; memoised by widths."""

    def __init__(self, graph: Any, calib: np.ndarray, val: tuple[np.ndarray, np.ndarray], quant: Any) -> None:
        self.graph, self.calib, self.val, self.quant = graph, calib, val, quant
        self.correct: dict[str, np.ndarray] = {}  # config key -> bool per test image
        self.seconds = 0.0

    def key(self, bc: Any) -> str:
        """A stable key of the widths (W/A per layer in model order)."""
        return ",".join(f"{bc[ly.name].w_bits}/{bc[ly.name].a_bits}" for ly in self.graph.quantizable())

    def __call__(self, bc: Any, table: Any, calib: np.ndarray | None = None) -> dict[str, Any]:
        from codesign.evaluate import hw_cost, predictions

        key = self.key(bc) + ("" if calib is None else "@alt-calib")
        if key not in self.correct:
            t0 = time.perf_counter()
            x, y = self.val
            self.correct[key] = predictions(self.graph, bc, self.calib if calib is None else calib, x, self.quant) == y
            self.seconds += time.perf_counter() - t0
        cyc, en = hw_cost(self.graph, table, bc)
        clock = float(table.meta.get("clock_mhz", 100.0))
        return {"top1": float(self.correct[key].mean() * 100), "config": key, "size_mbit": bc.size_mbit(self.graph),
                "cycles": cyc, "latency_ms": cyc / (clock * 1e3), "energy_uj": en}


def measure_table(graph: Any, bits: list[int], ip_dir: str | None = None) -> tuple[Any, float]:
    """The OQA table of ``graph`` at ``bits`` (plus 8) on the simulated board of ``ip_dir``, and its wall time."""
    from codesign import oqa

    t0 = time.perf_counter()
    widths = sorted(set(bits) | {8})
    board = oqa.open_board("sim", widths, None if ip_dir is None else Path(ip_dir), 8.0, 32)
    try:
        res = oqa.measure_full(graph, widths, board, board.spec, progress=False)
    finally:
        board.close()
    return res.table, time.perf_counter() - t0


def bit_sets(text: str) -> list[list[int]]:
    """'4,8;2,4,8' -> [[4, 8], [2, 4, 8]]."""
    return [sorted(set(ints(t))) for t in text.split(";") if t.strip()]


def budget_for(graph: Any, table: Any, bits: list[int], kind: str, frac: float) -> Any:
    """The budget at fraction ``frac`` between all-narrowest and all-8-bit (latency or size)."""
    from codesign.ilp import Budgets, ratio_to_size

    if kind == "size":
        return Budgets(size_mbit=ratio_to_size(graph, frac, bits))
    # the ILP's own per-layer latency (jobs + bus cycles, ``HwRow.cycles_deployed``), so f = 0 is
    # exactly the all-narrowest configuration
    names = [ly.name for ly in graph.quantizable()]
    lo = sum(float(table.get(n, min(bits)).cycles_deployed) for n in names)
    hi = sum(float(table.get(n, 8).cycles_deployed) for n in names)
    return Budgets(latency_cycles=lo + frac * (hi - lo))


def _key(bits: list[int]) -> str:
    return ",".join(map(str, bits))


def ip_dirs(text: str | None, sets: list[list[int]]) -> dict[str, str | None]:
    """Per set, the IP folder its table is measured on: ``DIR`` for every set, or ``SET=DIR;...`` (others: build/ip)."""
    if not text:
        return {_key(b): None for b in sets}
    if "=" not in text:
        return {_key(b): text for b in sets}
    given = {_key(sorted(set(ints(k)))): v.strip() for k, v in (part.split("=", 1) for part in text.split(";") if part.strip())}
    return {_key(b): given.get(_key(b)) for b in sets}


def set_tables(model: str, graph: Any, sets: list[list[int]], args: argparse.Namespace) -> tuple[dict[str, Any], list[list[int]]]:
    """``{set: (table, oqa seconds, ip dir)}`` and the sets kept: one OQA run per IP folder, covering its sets' widths.

    A set whose IP lacks a width (no 2-bit IP generated, say) is dropped with a message.
    """
    from codesign.hw.overlay import MissingIPError
    from codesign.hwtable import HwTable

    if args.tables:
        table = HwTable.load(Path(args.tables) / f"{model}.csv")
        table.check_model(graph, sorted({b for s in sets for b in s} | {8}))
        return {_key(b): (table, 0.0, None) for b in sets}, sets
    dirs = ip_dirs(args.ip_dir, sets)
    out: dict[str, Any] = {}
    kept = []
    for ip in dict.fromkeys(dirs.values()):
        mine = [b for b in sets if dirs[_key(b)] == ip]
        try:
            table, secs = measure_table(graph, sorted({w for b in mine for w in b} | {8}), ip)
        except MissingIPError as err:
            print(f"[{model}] {err} Dropping the set(s) {[_key(b) for b in mine]}.", flush=True)
            continue
        out.update({_key(b): (table, secs, ip) for b in mine})
        kept += mine
    return out, [b for b in sets if b in kept]


def run_model(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every bit set x method x budget x seed on one model; returns JSON-able records."""
    from codesign.datasets import load_dataset
    from codesign.distill import distill
    from codesign.ilp import InfeasibleBudgetError
    from codesign.methods import get_method
    from codesign.methods.base import Problem
    from codesign.models import ZOO, resolve_model
    from codesign.quant.bitconfig import BitConfig
    from codesign.quant.qgraph import SEARCH_PTQ

    sets, fracs, seeds = bit_sets(args.bit_sets), floats(args.fractions), ints(args.seeds)
    graph = resolve_model(model)
    t0 = time.perf_counter()
    dkw = {} if args.distill_iterations is None else {"iterations": args.distill_iterations}
    dres = distill(graph, seed=0, progress=False, clip=ZOO[model].input_range, **dkw)
    images, distill_s, reduction = dres.images, time.perf_counter() - t0, dres.reduction
    tables, sets = set_tables(model, graph, sets, args)
    xv, yv = load_dataset("fashion-mnist", "test")
    xt, yt = load_dataset("fashion-mnist", "train")
    val = (xv[: args.val_images], yv[: args.val_images])
    train = (xt[: args.train_images], yt[: args.train_images])
    quant = SEARCH_PTQ.copy()  # what every Problem quantizes with
    ev = Evaluator(graph, images, val, quant)
    records: list[dict[str, Any]] = []
    old: dict[str, Any] = {}
    if args.old_distill:
        t0 = time.perf_counter()
        ores = distill(graph, iterations=args.old_distill, seed=0, progress=False, clip=ZOO[model].input_range)
        old = {"iterations": args.old_distill, "seconds": time.perf_counter() - t0, "reduction": ores.reduction,
               "top1": {b: ev(BitConfig.uniform(graph, b), tables[_key(sets[0])][0], calib=ores.images)["top1"] for b in sorted({8, *(min(s) for s in sets)})}}
    for bits in sets:
        bset = _key(bits)
        table = tables[bset][0]
        for b in sorted({8, min(bits)}):
            records.append({"method": f"int{b}", "set": bset, "frac": None, "seed": 0, "method_s": 0.0,
                            "data": "distilled (calibration)", **ev(BitConfig.uniform(graph, b), table)})
        for mname in [m for m in args.methods.split(",") if m]:
            method = get_method(mname, **({"episodes": args.haq_episodes, "val_images": args.haq_val} if mname == "haq" else {}))
            m_fracs = floats(args.haq_fractions) if mname == "haq" else fracs
            for frac in m_fracs:
                budgets = budget_for(graph, table, bits, args.budget, frac)
                for seed in (seeds if method.stochastic else seeds[:1]):
                    prob = Problem(graph, table, bits, budgets, images, train=train, seed=seed)
                    rec: dict[str, Any] = {"method": mname, "set": bset, "frac": frac, "seed": seed}
                    try:
                        res = method.search(prob)
                    except InfeasibleBudgetError as err:
                        records.append({**rec, "error": str(err)})
                        continue
                    rec.update(method_s=_first_seconds(mname, res.info, res.search_seconds), data=res.data_used,
                               scores=res.scores, sens_s=_sens_seconds(res.info), **ev(res.bitconfig, table))
                    records.append(rec)
                    print(f"[{model} {{{bset}}}] {mname:13s} f={frac:.2f} seed={seed} top1={rec['top1']:.2f} "
                          f"lat={rec['latency_ms']:.3f} ms ({res.search_seconds:.1f} s)", flush=True)
        if args.match_budgets:
            _match_budgets(graph, table, bits, bset, records, images, train, seeds, ev, Problem)
    out = {"model": model, "sets": [",".join(map(str, s)) for s in sets], "budget": args.budget,
           "distill_s": distill_s, "distill_reduction": reduction, "distill_config": dres.config,
           "old_distill": old, "command": " ".join(sys.argv[1:]), "eval_s": ev.seconds,
           "oqa_s": sum(tables[k][1] for k in {_key(b) for b in sets}) if not args.tables else 0.0,
           "tables": {k: {"ip_dir": tables[k][2], "oqa_s": tables[k][1], "meta": tables[k][0].meta} for k in map(_key, sets)},
           "table_meta": tables[_key(sets[0])][0].meta, "records": records, "val_images": len(val[0]), "train_images": len(train[0])}
    RAW.mkdir(parents=True, exist_ok=True)
    stem = f"{model}@{'_'.join(''.join(map(str, b)) for b in sets)}"
    (RAW / f"{stem}.json").write_text(json.dumps(out, indent=1, default=float))
    np.savez_compressed(RAW / f"{stem}_correct.npz", **{k: np.packbits(v) for k, v in ev.correct.items()})
    return out


def raw_runs(model: str) -> list[Path]:
    """The raw JSON files of ``model``'s runs (``<model>@<sets>.json``, or the older ``<model>.json``), oldest first."""
    paths = [p for p in RAW.glob(f"{model}@*.json")] + [p for p in [RAW / f"{model}.json"] if p.is_file()]
    return sorted(paths, key=lambda p: p.stat().st_mtime)


def load_results(model: str) -> dict[str, Any] | None:
    """``model``'s runs merged: for each bit set the newest run that has it (runs over other test-set sizes dropped).

    Each record keeps its own run's distillation time (``distill_s``), which its search time adds.
    """
    runs = [json.loads(p.read_text()) for p in raw_runs(model)]
    if not runs:
        return None
    newest = runs[-1]
    merged = dict(newest, sets=[], records=[])
    for run in reversed(runs):
        if run["val_images"] != newest["val_images"]:
            continue
        for bset in run["sets"]:
            if bset not in merged["sets"]:
                merged["sets"].append(bset)
                merged["records"] += [dict(r, distill_s=run["distill_s"]) for r in run["records"] if r.get("set") == bset]
    return merged


def _match_budgets(graph: Any, table: Any, bits: list[int], bset: str, records: list[dict[str, Any]],
                   images: np.ndarray, train: Any, seeds: list[int], ev: Evaluator, problem_cls: Any) -> None:
    """Run ``ohq`` again with the latency each baseline point reached as its budget.

    ``ohq`` is a budgeted method: its front is one configuration per budget, and a fixed grid
    of budgets leaves gaps a baseline point can fall into. Giving ``ohq`` the baseline's own
    latency is the direct test of "is that point on or under ohq's front". Points ``ohq``
    already covers (an ``ohq`` point at most as slow and at least as accurate) are skipped.
    """
    from codesign.ilp import Budgets, InfeasibleBudgetError
    from codesign.methods import get_method

    method = get_method(OHQ_FRONT[0])
    mine = [r for r in records if r.get("set") == bset and "error" not in r]
    done: set[float] = set()
    for b in [r for r in mine if r["method"] in BASELINES or r["method"].startswith("int")]:
        ohq = [(r["latency_ms"], r["top1"]) for r in records if r.get("set") == bset and r["method"] in OHQ_FRONT
               and "error" not in r]
        if covered(ohq, (b["latency_ms"], b["top1"])) or b["cycles"] in done:
            continue
        done.add(b["cycles"])
        for seed in seeds:
            prob = problem_cls(graph, table, bits, Budgets(latency_cycles=b["cycles"]), images, train=train, seed=seed)
            try:
                res = method.search(prob)
            except InfeasibleBudgetError:
                continue
            records.append({"method": method.name, "set": bset, "frac": "match", "seed": seed,
                            "method_s": res.search_seconds, "data": res.data_used, "scores": res.scores,
                            "sens_s": _sens_seconds(res.info), **ev(res.bitconfig, table)})


def _sens_seconds(info: dict[str, Any]) -> float | None:
    """The sensitivity part of a search (MQE, per-width MQE, Eq. 5, ZeroQ's table), when the method reports it."""
    for k in ("mqe_seconds", "sensitivity_seconds"):
        if k in info:
            return float(info[k])
    return None


def _first_seconds(method: str, info: dict[str, Any], seconds: float) -> float:
    """Search time as a fresh run would take it (HAWQ-v3 reuses its traces across budgets)."""
    if method == "hawq-v3" and "trace_seconds" in info and info.get("trace_seconds", 0) > seconds:
        return seconds + float(info["trace_seconds"])
    return seconds


# ---- report ----------------------------------------------------------------------------------------
def _ms(vals: list[float], fmt: str = "{:.2f}") -> str:
    if not vals:
        return "—"
    if len(vals) == 1:
        return fmt.format(vals[0])
    return f"{fmt.format(statistics.mean(vals))} ± {fmt.format(statistics.stdev(vals))}"


def _ok(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in recs if "error" not in r]


def _with_search_time(res: dict[str, Any]) -> dict[str, Any]:
    """``search_s`` = the method's own time (``method_s``) + the model's distillation time (data-free methods).

    One distillation per model serves every data-free method; adding it at report time keeps
    merged runs (:func:`load_results`) consistent, so only ``method_s`` is stored.
    """
    for r in res["records"]:
        if "method_s" in r:
            r["search_s"] = r["method_s"] + (r.get("distill_s", res["distill_s"]) if r["method"] in USES_DISTILLED else 0.0)
    return res


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-dominated (latency low, top-1 high) points sorted by latency."""
    front: list[tuple[float, float]] = []
    for lat, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or acc > front[-1][1]:
            front.append((lat, acc))
    return front


def covered(front: list[tuple[float, float]], point: tuple[float, float], tol: float = 0.0) -> bool:
    """True when some front point has latency <= and top-1 >= (within ``tol`` points) of ``point``."""
    return any(lat <= point[0] * (1 + 1e-9) and acc >= point[1] - tol for lat, acc in front)


def plot_pareto(res: dict[str, Any], bset: str, path: Path) -> Path:
    """Top-1 against latency for one candidate set: every method's points and its own front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    recs = [r for r in _ok(res["records"]) if r["set"] == bset]
    markers = dict(zip(["int8", "int4", "int2", *MIXED], "s^vo*DPXhp<>d"))
    for m in dict.fromkeys(r["method"] for r in recs):
        pts = [(r["latency_ms"], r["top1"]) for r in recs if r["method"] == m]
        big = m in OHQ_FRONT
        sc = ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=LABEL.get(m, m.upper()),
                        marker=markers.get(m, "o"), s=60 if big else 28, alpha=0.85, zorder=3 if big else 2)
        if m in MIXED:
            f = pareto(pts)
            ax.step([p[0] for p in f], [p[1] for p in f], where="post", lw=2.0 if big else 0.8, alpha=0.7,
                    color=sc.get_facecolor()[0], zorder=1)
    ax.set_xlabel("latency (ms at 100 MHz, sim-board counters)")
    ax.set_ylabel(f"top-1 (%), Fashion-MNIST test ({res['val_images']} img)")
    ax.set_title(f"{res['model']}: top-1 vs latency, widths {{{bset}}}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_name(model: str, bset: str) -> str:
    return f"pareto_{model}_{bset.replace(',', '')}.png"


def load_correct(model: str) -> dict[str, np.ndarray]:
    """Per-config correctness vectors saved by ``run_model`` (packed bools per test image), over all of its runs."""
    out: dict[str, np.ndarray] = {}
    for path in raw_runs(model):
        npz = path.with_name(path.stem + "_correct.npz")
        if npz.is_file():
            with np.load(npz) as z:
                out.update({k: z[k] for k in z.files})
    return out


def _vec(correct: dict[str, np.ndarray], rec: dict[str, Any], n: int) -> np.ndarray:
    return np.unpackbits(correct[rec["config"]], count=n).astype(bool)


def coverage(res: dict[str, Any], bset: str, correct: dict[str, np.ndarray]) -> tuple[int, int, list[str]]:
    """Baseline points of one set that ``ohq`` covers within the paired test, and the ones it does not.

    A point is covered when some ``ohq`` point is at most as slow and the baseline is not
    significantly more accurate than it (McNemar exact, level ALPHA). Uncovered points are
    listed with the paired bootstrap CI of (baseline - best such ohq point) in points.
    """
    from codesign.methods.stats import paired_bootstrap, significantly_better

    recs = [r for r in _ok(res["records"]) if r["set"] == bset]
    ohq = [r for r in recs if r["method"] in OHQ_FRONT]
    base = [r for r in recs if r["method"] in BASELINES or r["method"].startswith("int")]
    n = res["val_images"]
    missed: list[str] = []
    for b in base:
        faster = [q for q in ohq if q["latency_ms"] <= b["latency_ms"] * (1 + 1e-9)]
        if any(not significantly_better(_vec(correct, b, n), _vec(correct, q, n), ALPHA) for q in faster):
            continue
        tag = f"{b['method']}@{b['frac']}"
        if faster:
            q = max(faster, key=lambda r: r["top1"])
            d = paired_bootstrap(_vec(correct, b, n), _vec(correct, q, n))
            tag += f" (+{d.diff:.2f} [{d.lo:.2f}, {d.hi:.2f}])"
        else:
            tag += " (faster than every ohq point)"
        missed.append(tag)
    return len(base) - len(missed), len(base), missed


def report(results: list[dict[str, Any]], wall: float | None) -> str:
    """The markdown page."""
    cmds = list(dict.fromkeys(r.get("command", "") for r in results))
    lines = ["# OHQ vs baselines on the simulated board (issues 6 and 17)", "",
             "Command: " + "; ".join(f"`.venv/bin/python bench/bench_methods.py {c}`".replace(" `", "`") for c in cmds),
             f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared)"
             + (f"; whole run {wall / 60:.1f} min wall." if wall else "."),
             "", "Every configuration is quantized with the same PTQ (MSE activation and weight clip, GPTQ rounding, "
             "calibrated on the 32 distilled images) and evaluated with the integer golden model on the same test "
             "images; latency and energy are sums of the sim-board OQA table rows (RTL cycle counters, 100 MHz). "
             "Budgets: " + ("latency `Lmin + f (L8 - Lmin)`" if results and results[0].get("budget") == "latency"
                            else "size ratio f") + ", the same for every method. Cells are `latency ms / top-1 %`.", ""]
    for res in results:
        lines += _model_section(res)
    lines += _goal_section(results)
    return "\n".join(lines) + "\n"


def _model_section(res: dict[str, Any]) -> list[str]:

    recs = _ok(res["records"])
    model = res["model"]
    out = [f"## {model}", "",
           f"Distillation {res['distill_s']:.1f} s ({res['distill_config'].get('iterations')} steps, loss reduction "
           f"{res['distill_reduction']:.0f}x); OQA table on the sim board {_oqa_text(res)}; evaluation "
           f"{res['val_images']} test images, {res['eval_s']:.0f} s in all.", ""]
    old = res.get("old_distill") or {}
    if old:
        new_top = {b: next((r["top1"] for r in recs if r["method"] == f"int{b}"), None) for b in old["top1"]}
        out += [f"Distillation, new ({res['distill_config'].get('iterations')} steps, {res['distill_s']:.1f} s) vs old "
                f"({old['iterations']} steps, {old['seconds']:.1f} s): uniform top-1 with each set of calibration images: "
                + ", ".join(f"INT{b} {new_top[b]:.2f} vs {v:.2f}" for b, v in old["top1"].items() if new_top[b] is not None), ""]
    for bset in res["sets"]:
        srecs = [r for r in recs if r["set"] == bset]
        fracs = sorted({r["frac"] for r in srecs if isinstance(r["frac"], float)})
        out += [f"### {model}, widths {{{bset}}}", "", "| method | " + " | ".join(f"f = {f:.2f}" for f in fracs)
                + " | search (s) |", "|---|" + "---|" * (len(fracs) + 1)]
        for m in ("int8", f"int{bset.split(',')[0]}"):
            xs = [r for r in srecs if r["method"] == m]
            if xs:
                out.append(f"| {LABEL.get(m, m.upper())} | " + " | ".join(
                    f"{xs[0]['latency_ms']:.3f} / {xs[0]['top1']:.2f}" for _ in fracs) + " | 0 |")
        for m in MIXED:
            xs = [r for r in srecs if r["method"] == m]
            if not xs:
                continue
            cells = []
            for f in fracs:
                ys = [r for r in xs if r["frac"] == f]
                cells.append(f"{_ms([y['latency_ms'] for y in ys], '{:.3f}')} / {_ms([y['top1'] for y in ys])}" if ys else "—")
            out.append(f"| {LABEL.get(m, m)} | " + " | ".join(cells) + f" | {_ms([x['search_s'] for x in xs], '{:.1f}')} |")
        extra = [r for r in srecs if r["frac"] == "match"]
        if extra:
            out += ["", f"`ohq` re-run at the latency of {len(extra)} baseline point(s) it did not already cover: "
                    + ", ".join(f"{r['latency_ms']:.3f} / {r['top1']:.2f}" for r in sorted(extra, key=lambda r: r["latency_ms"]))]
        out += ["", "Ablation (one change at a time, same budgets): " + "; ".join(
            f"{i + 1}. {ABLATION_LABEL[m]}" for i, m in enumerate(ABLATION)) + " (rows of the table above).", ""]
        sens = _sens_rows(srecs)
        if sens:
            out += ["| sensitivity | rho vs direct Eq. 5 (lowest width) | seconds | direct Eq. 5 / it |", "|---|---|---|---|"]
            direct_s = sens.get("direct", (None, None))[1]
            for m, (rho, sec) in sens.items():
                ratio = f"{direct_s / sec:.1f}x" if direct_s and sec else "—"
                out.append(f"| {LABEL.get(m, m)} | {'—' if rho is None else f'{rho:.2f}'} | {sec:.2f} | {ratio} |")
            out.append("")
        out += [f"![pareto {model} {bset}]({_plot_name(model, bset)})", ""]
    errs = [x for x in res["records"] if "error" in x]
    if errs:
        out += ["Infeasible: " + "; ".join(f"{x['method']} {{{x['set']}}} @ {x['frac']}: {x['error']}" for x in errs), ""]
    return out


def _sens_rows(srecs: list[dict[str, Any]]) -> dict[str, tuple[float | None, float]]:
    """Per method with a sensitivity: (Spearman rho of its scores vs direct Eq. 5, mean sensitivity seconds)."""
    from codesign.mqe import spearman

    direct = next((r for r in srecs if r["method"] == "direct" and r.get("scores")), None)
    out: dict[str, tuple[float | None, float]] = {}
    for m in ("direct", "ohq-paper", "ohq-1draw", "ohq-mqe", "ohq", "zeroq"):
        xs = [r for r in srecs if r["method"] == m and r.get("sens_s") is not None and r.get("scores")]
        if not xs:
            continue
        rho = None
        if direct is not None and m != "direct":
            names = list(direct["scores"])
            rho = statistics.mean(spearman(np.array([direct["scores"][n] for n in names]),
                                           np.array([x["scores"][n] for n in names])) for x in xs)
        out[m] = (rho, statistics.mean(x["sens_s"] for x in xs))
    return out


def _oqa_text(res: dict[str, Any]) -> str:
    if res["oqa_s"] > 0:
        return f"measured in {res['oqa_s']:.1f} s"
    return "reused from --tables (measured by `python -m codesign.oqa --board sim`)"


def _mean(recs: list[dict[str, Any]], method: str, key: str = "search_s") -> float | None:
    xs = [r[key] for r in recs if r["method"] == method and r.get(key) is not None]
    return statistics.mean(xs) if xs else None


def _goal_section(results: list[dict[str, Any]]) -> list[str]:
    out = ["## Goals", "", "Coverage: a baseline point (ohq-paper, Direct Eq. 5 + OQA, ZeroQ, HAWQ-v3, HAQ, uniform) is "
           f"covered when some `ohq` point is at most as slow and not significantly less accurate (McNemar exact, "
           f"alpha {ALPHA}); uncovered points show the paired bootstrap 95 % CI of (baseline - best ohq point at most "
           "as slow) in points. Search time includes distillation for the data-free methods.", "",
           "| model | widths | points covered | ohq search / HAWQ-v3 (target <= 1/5) | sensitivity cost direct / ohq (target >= 5x) | rho ohq vs direct (target >= 0.8) |",
           "|---|---|---|---|---|---|"]
    for res in results:
        correct = load_correct(res["model"])
        recs = _ok(res["records"])
        for bset in res["sets"]:
            srecs = [r for r in recs if r["set"] == bset]
            cov, tot, missed = coverage(res, bset, correct) if correct else (0, 0, ["(no per-image results)"])
            o, h = _mean(srecs, "ohq"), _mean(srecs, "hawq-v3")
            sens = _sens_rows(srecs)
            ds, os_ = sens.get("direct", (None, None))[1], sens.get("ohq", (None, None))[1]
            rho = sens.get("ohq", (None, None))[0]
            out.append(f"| {res['model']} | {{{bset}}} | {cov}/{tot}" + (f" (not: {'; '.join(missed)})" if missed else "")
                       + f" | {'—' if not (o and h) else f'1/{h / o:.1f}'} | {'—' if not (ds and os_) else f'{ds / os_:.1f}x'}"
                       + f" | {'—' if rho is None else f'{rho:.2f}'} |")
    out.append("")
    return out


def main(argv: list[str] | None = None) -> int:
    """Run (or re-render) the benchmark."""
    args = parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    t0 = time.perf_counter()
    if args.report_only:
        results = [r for r in map(load_results, models) if r is not None]
        wall = None
    elif args.jobs > 1 and len(models) > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as ex:
            results = list(ex.map(run_model, models, [args] * len(models)))
        wall = time.perf_counter() - t0
    else:
        results = [run_model(m, args) for m in models]
        wall = time.perf_counter() - t0
    results = [_with_search_time(r) for r in results]
    text = report(results, wall)
    print(text)
    if not args.no_write:
        for res in results:
            for bset in res["sets"]:
                plot_pareto(res, bset, PLOTS / _plot_name(res["model"], bset))
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(text)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
