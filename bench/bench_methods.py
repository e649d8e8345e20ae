"""OHQ against the baselines on the trained small zoo models, on one simulated board.

For every model: distil 32 images from the BN statistics, measure the OQA hardware table on the
simulated board (every layer at every width, RTL counters), then run every method at every
size ratio and seed, and evaluate each chosen configuration the same way (quantized with the
same calibration on the distilled images, top-1 from the integer golden model on the
Fashion-MNIST test images, cycles/energy from the same table). Writes
``docs/results/methods.md`` (the ablation, the comparison, the issue-5 ratio table, timings),
``docs/results/pareto_<model>.png`` and the raw records to ``build/bench/methods/<model>.json``.

    .venv/bin/python bench/bench_methods.py                      # full run (make bench)
    .venv/bin/python bench/bench_methods.py --models resnet_s --seeds 0 --haq-episodes 20  # quick look
    .venv/bin/python bench/bench_methods.py --report-only        # re-render from build/bench/methods

Stochastic methods (OHQ's MQE masks, HAWQ-v3's Rademacher draws, HAQ's agent) run with every
seed in ``--seeds``; deterministic ones once. HAQ runs at ``--haq-ratios`` only (it is the
slow one: each episode quantizes and evaluates the model).
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

ABLATION = ("ohq-mqe-only", "ohq-oqa-only", "ohq", "hawq-v3")
ABLATION_LABEL = {"ohq-mqe-only": "MQE only", "ohq-oqa-only": "OQA only", "ohq": "MQE + OQA (OHQ)",
                  "hawq-v3": "Vanilla (HAWQ-v3)"}
MIXED = ("ohq", "ohq-b0.75", "ohq-mqe-only", "ohq-oqa-only", "direct", "zeroq", "hawq-v3", "haq")
OHQ_FRONT = ("ohq", "ohq-b0.75")  # OHQ's own knobs: the budget and beta (the paper's default 0.5, and 0.75)
LABEL = {"int8": "uniform INT8", "int4": "uniform INT4", "ohq": "OHQ (ours)", "ohq-b0.75": "OHQ (ours), beta 0.75",
         "ohq-mqe-only": "OHQ, MQE only",
         "ohq-oqa-only": "OHQ, OQA only", "direct": "Direct Eq.5 + OQA", "zeroq": "ZeroQ (KL + Pareto DP)",
         "hawq-v3": "HAWQ-v3 (Hessian trace + ILP)", "haq": "HAQ (DDPG, PTQ reward)"}
USES_DISTILLED = {"ohq", "ohq-b0.75", "ohq-mqe-only", "direct", "zeroq"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The bench CLI."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet_s,mobilenetv2_s,mobilenetv3_s")
    ap.add_argument("--ratios", default="0.25,0.5,0.75,0.8")
    ap.add_argument("--bits", default="4,8", help="candidate widths (default 4,8: the demo overlay)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default=",".join(MIXED))
    ap.add_argument("--haq-episodes", type=int, default=40, help="HAQ episodes per search (default 40; HAQ itself searches for hundreds of episodes)")
    ap.add_argument("--haq-val", type=int, default=200, help="labelled images per HAQ reward (default 200)")
    ap.add_argument("--haq-ratios", default="0.5")
    ap.add_argument("--val-images", type=int, default=2000)
    ap.add_argument("--train-images", type=int, default=256, help="labelled train images (HAWQ-v3 Hessian, HAQ reward)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="models evaluated in parallel")
    ap.add_argument("--tables", help="directory with <model>.csv OQA tables from `python -m codesign.oqa` to reuse "
                    "instead of measuring (they must cover the widths)")
    ap.add_argument("--append", action="store_true",
                    help="add/replace the records of --methods in the saved raw results (reuses their distilled images)")
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
    """Top-1 (integer golden model), size and table cost of a config; memoised by widths."""

    def __init__(self, graph: Any, table: Any, calib: np.ndarray, val: tuple[np.ndarray, np.ndarray], quant: dict) -> None:
        self.graph, self.table, self.calib, self.val, self.quant = graph, table, calib, val, quant
        self.cache: dict[tuple, float] = {}
        self.seconds = 0.0

    def __call__(self, bc: Any) -> dict[str, float]:
        from codesign.search import hw_cost, top1

        key = tuple((n, bc[n].w_bits, bc[n].a_bits) for n in sorted(bc.layers))
        if key not in self.cache:
            t0 = time.perf_counter()
            self.cache[key] = top1(self.graph, bc, self.calib, self.val, self.quant)
            self.seconds += time.perf_counter() - t0
        cyc, en = hw_cost(self.graph, self.table, bc)
        clock = float(self.table.meta.get("clock_mhz", 100.0))
        return {"top1": self.cache[key], "size_mbit": bc.size_mbit(self.graph), "cycles": cyc,
                "latency_ms": cyc / (clock * 1e3), "energy_uj": en}


def measure_table(graph: Any, bits: list[int]) -> tuple[Any, float]:
    """The OQA table of ``graph`` at ``bits`` (plus 8) on the simulated board, and its wall time."""
    from codesign import oqa

    t0 = time.perf_counter()
    widths = sorted(set(bits) | {8})
    board = oqa.open_board("sim", widths, None, 8.0, 32)
    try:
        res = oqa.measure_full(graph, widths, board, board.spec, progress=False)
    finally:
        board.close()
    return res.table, time.perf_counter() - t0


def run_model(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every method x ratio x seed on one model; returns JSON-able records."""
    from codesign.baselines import get_method
    from codesign.baselines.base import Problem
    from codesign.datasets import load_dataset
    from codesign.distill import distill
    from codesign.ilp import Budgets, InfeasibleBudgetError, ratio_to_size
    from codesign.models import ZOO, resolve_model
    from codesign.quant.bitconfig import BitConfig

    bits, ratios, seeds = ints(args.bits), floats(args.ratios), ints(args.seeds)
    graph = resolve_model(model)
    old = json.loads((RAW / f"{model}.json").read_text()) if args.append and (RAW / f"{model}.json").is_file() else None
    cached = RAW / f"{model}_distilled.npz"
    if old is not None and cached.is_file():
        images, distill_s, reduction = np.load(cached)["images"], old["distill_s"], old["distill_reduction"]
    else:
        t0 = time.perf_counter()
        dres = distill(graph, seed=0, progress=False, clip=ZOO[model].input_range)
        images, distill_s, reduction = dres.images, time.perf_counter() - t0, dres.reduction
        RAW.mkdir(parents=True, exist_ok=True)
        np.savez(cached, images=images)
    if args.tables:
        from codesign.hwtable import HwTable

        table, oqa_s = HwTable.load(Path(args.tables) / f"{model}.csv"), 0.0
        table.check_model(graph, sorted(set(bits) | {8}))
    else:
        table, oqa_s = measure_table(graph, bits)
    xv, yv = load_dataset("fashion-mnist", "test")
    xt, yt = load_dataset("fashion-mnist", "train")
    val = (xv[: args.val_images], yv[: args.val_images])
    train = (xt[: args.train_images], yt[: args.train_images])
    quant = Problem(graph, table, bits, Budgets(), images).quant
    ev = Evaluator(graph, table, images, val, quant)
    records: list[dict[str, Any]] = []
    for name, bc in (("int8", BitConfig.uniform(graph, 8)), (f"int{min(bits)}", BitConfig.uniform(graph, min(bits)))):
        records.append({"method": name, "ratio": None, "seed": 0, "method_s": 0.0, "data": "distilled (calibration)",
                        "wa": f"{bc[graph.quantizable()[0].name].w_bits}/{bc[graph.quantizable()[0].name].a_bits}",
                        **ev(bc)})
    methods = [m for m in args.methods.split(",") if m]
    for mname in methods:
        method = get_method(mname, **({"episodes": args.haq_episodes, "val_images": args.haq_val} if mname == "haq" else {}))
        m_ratios = floats(args.haq_ratios) if mname == "haq" else ratios
        m_seeds = seeds if method.stochastic else seeds[:1]
        for ratio in m_ratios:
            budgets = Budgets(size_mbit=ratio_to_size(graph, ratio, bits))
            for seed in m_seeds:
                prob = Problem(graph, table, bits, budgets, images, train=train, seed=seed)
                try:
                    res = method.search(prob)
                except InfeasibleBudgetError as err:
                    records.append({"method": mname, "ratio": ratio, "seed": seed, "error": str(err)})
                    continue
                records.append({"method": mname, "ratio": ratio, "seed": seed,
                                "method_s": _first_seconds(mname, res.info, res.search_seconds),
                                "data": res.data_used, "wa": "mixed",
                                "bits": {n: res.bitconfig[n].w_bits for n in res.bitconfig.layers}, **ev(res.bitconfig)})
                print(f"[{model}] {mname:13s} r={ratio:.2f} seed={seed} top1={records[-1]['top1']:.2f} "
                      f"lat={records[-1]['latency_ms']:.3f} ms ({res.search_seconds:.1f} s)", flush=True)
    if old is not None:
        mine = {r["method"] for r in records}
        records = [r for r in old["records"] if r["method"] not in mine] + records
        oqa_s = old["oqa_s"]
    argv = " ".join(sys.argv[1:])
    out = {"model": model, "bits": bits, "distill_s": distill_s, "distill_reduction": reduction,
           "commands": ([*old.get("commands", [])] if old is not None else []) + [argv],
           "oqa_s": oqa_s, "eval_s": ev.seconds, "table_meta": table.meta, "records": records,
           "val_images": len(val[0]), "train_images": len(train[0])}
    RAW.mkdir(parents=True, exist_ok=True)
    (RAW / f"{model}.json").write_text(json.dumps(out, indent=1, default=float))
    return out


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
    runs merged with ``--append`` consistent, so only ``method_s`` is stored.
    """
    for r in res["records"]:
        if "method_s" in r:
            r["search_s"] = r["method_s"] + (res["distill_s"] if r["method"] in USES_DISTILLED else 0.0)
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


def plot_pareto(res: dict[str, Any], path: Path) -> Path:
    """Top-1 against latency, every method/ratio/seed; OHQ's front drawn as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    recs = _ok(res["records"])
    markers = dict(zip(["int8", "int4", *MIXED], "s^o*vDPXh"))
    for m in dict.fromkeys(r["method"] for r in recs):
        pts = [(r["latency_ms"], r["top1"]) for r in recs if r["method"] == m]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=LABEL.get(m, m), marker=markers.get(m, "o"),
                   s=60 if m == "ohq" else 30, alpha=0.8, zorder=3 if m == "ohq" else 2)
        if m in OHQ_FRONT:
            f = pareto([(r["latency_ms"], r["top1"]) for r in recs if r["method"] in OHQ_FRONT])
            ax.step([p[0] for p in f], [p[1] for p in f], where="post", lw=1.2, alpha=0.7, zorder=1)
    ax.set_xlabel("latency (ms at 100 MHz, sim-board counters)")
    ax.set_ylabel("top-1 (%), Fashion-MNIST test")
    ax.set_title(f"{res['model']}: top-1 vs latency, widths {res['bits']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report(results: list[dict[str, Any]], args: argparse.Namespace, wall: float | None) -> str:
    """The markdown page."""
    lines = ["# OHQ vs baselines on the simulated board (issue 6, and the issue-5 ratio table)", "",
             "Commands: " + "; ".join(f"`.venv/bin/python bench/bench_methods.py {c}`".replace(" `", "`")
                                      for c in _commands(results)),
             f"Machine: {platform.machine()}, {os.cpu_count()} cores" + (f"; whole run {wall / 60:.1f} min wall." if wall else "."),
             "", "Every configuration is quantized with the same PTQ (MSE activation clip and MSE weight clip, "
             "GPTQ rounding, calibrated on the 32 distilled images) and evaluated with the integer golden model; "
             "latency and energy are sums of the sim-board OQA table rows (RTL cycle counters, 100 MHz). "
             "Mean ± std over seeds for the stochastic methods.", ""]
    for res in results:
        lines += _model_section(res)
    lines += _goal_section(results)
    return "\n".join(lines) + "\n"


def _commands(results: list[dict[str, Any]]) -> list[str]:
    """The bench invocations that produced the records (``--append`` runs add to the first)."""
    cmds = [c for res in results for c in res.get("commands", [])] or [" ".join(sys.argv[1:])]
    return list(dict.fromkeys(cmds))


def _model_section(res: dict[str, Any]) -> list[str]:
    recs = _ok(res["records"])
    model = res["model"]
    by = lambda m, r: [x for x in recs if x["method"] == m and x["ratio"] == r]  # noqa: E731
    ref8 = by("int8", None)[0]
    low = next(x for x in recs if x["method"].startswith("int") and x["method"] != "int8")
    out = [f"## {model}", "",
           f"Distillation {res['distill_s']:.1f} s (loss reduction {res['distill_reduction']:.0f}x); OQA table on the "
           f"sim board {_oqa_text(res)} (widths {sorted(set(res['bits']) | {8})}); evaluation "
           f"{res['val_images']} test images, {res['eval_s']:.1f} s in all.", "",
           "### Ratio sweep (issue 5): OHQ vs uniform", "",
           f"| ratio | size (Mbit) | latency (ms) | vs INT8 | top-1 | vs INT8 ({ref8['top1']:.2f}) | vs {low['method'].upper()} ({low['top1']:.2f}) |",
           "|---|---|---|---|---|---|---|"]
    ratios = sorted({x["ratio"] for x in recs if x["ratio"] is not None})
    for r in ratios:
        o = by("ohq", r)
        if not o:
            continue
        top = [x["top1"] for x in o]
        lat = [x["latency_ms"] for x in o]
        out.append(f"| {r:.2f} | {_ms([x['size_mbit'] for x in o], '{:.4f}')} | {_ms(lat, '{:.3f}')} | "
                   f"{100 * (statistics.mean(lat) / ref8['latency_ms'] - 1):+.1f} % | {_ms(top)} | "
                   f"{statistics.mean(top) - ref8['top1']:+.2f} | {statistics.mean(top) - low['top1']:+.2f} |")
    out += ["", "### (a) Ablation: size (Mbit) / top-1 (%)", "",
            "| method | " + " | ".join(f"ratio {r:.2f}" for r in ratios) + " |", "|---|" + "---|" * len(ratios)]
    for m in ABLATION:
        cells = []
        for r in ratios:
            xs = by(m, r)
            cells.append(f"{_ms([x['size_mbit'] for x in xs], '{:.3f}')} / {_ms([x['top1'] for x in xs])}" if xs else "—")
        out.append(f"| {ABLATION_LABEL[m]} | " + " | ".join(cells) + " |")
    out += ["", "### (b) Comparison at ratio 0.50", "",
            "| method | W/A | data | size (Mbit) | latency (ms) | energy (uJ) | top-1 (%) | search (s) | seeds |",
            "|---|---|---|---|---|---|---|---|---|"]
    rows = [("int8", None), (low["method"], None)] + [(m, 0.5) for m in MIXED]
    for m, r in rows:
        xs = by(m, r)
        if not xs:
            continue
        out.append(f"| {LABEL.get(m, m)} | {xs[0]['wa']} | {xs[0]['data']} | {_ms([x['size_mbit'] for x in xs], '{:.4f}')} | "
                   f"{_ms([x['latency_ms'] for x in xs], '{:.3f}')} | {_ms([x['energy_uj'] for x in xs], '{:.1f}')} | "
                   f"{_ms([x['top1'] for x in xs])} | {_ms([x['search_s'] for x in xs], '{:.1f}')} | {len(xs)} |")
    errs = [x for x in res["records"] if "error" in x]
    if errs:
        out += ["", "Infeasible: " + "; ".join(f"{x['method']} @ {x['ratio']}: {x['error']}" for x in errs)]
    out += ["", f"![pareto](pareto_{model}.png)", ""]
    return out


def _oqa_text(res: dict[str, Any]) -> str:
    if res["oqa_s"] > 0:
        return f"measured in {res['oqa_s']:.1f} s"
    return "reused from --tables (measured by `python -m codesign.oqa --board sim`)"


def _mean_search_s(recs: list[dict[str, Any]], method: str, ratio: float = 0.5, key: str = "search_s") -> float | None:
    xs = [r[key] for r in recs if r["method"] == method and r["ratio"] == ratio]
    return statistics.mean(xs) if xs else None


def _ratio(ohq: float | None, ohq_no_distill: float | None, other: float | None) -> str:
    """'1/x (1/y without distillation)': OHQ's search time as a fraction of another method's."""
    if not (ohq and other):
        return "—"
    return f"1/{other / ohq:.1f} (1/{other / max(ohq_no_distill or 1e-9, 1e-9):.0f} counting MQE + ILP only)"


def _goal_section(results: list[dict[str, Any]]) -> list[str]:
    out = ["## Goals", "", "OHQ's front: every `ohq` and `ohq-b0.75` run (all ratios and seeds). A baseline point is "
           "covered when some front point has latency <= and top-1 >= it.", "",
           "| model | baseline points OHQ's front covers | OHQ search / HAWQ-v3 | OHQ search / HAQ |", "|---|---|---|---|"]
    for res in results:
        recs = _ok(res["records"])
        front = pareto([(r["latency_ms"], r["top1"]) for r in recs if r["method"] in OHQ_FRONT])
        base = [r for r in recs if not r["method"].startswith("ohq")]
        cov = sum(covered(front, (r["latency_ms"], r["top1"])) for r in base)
        missed = sorted({f"{r['method']}@{r['ratio']}" for r in base if not covered(front, (r["latency_ms"], r["top1"]))})

        o, h, q = (_mean_search_s(recs, m) for m in ("ohq", "hawq-v3", "haq"))
        o_nd = _mean_search_s(recs, "ohq", key="method_s")  # MQE + ILP only
        out.append(f"| {res['model']} | {cov}/{len(base)}" + (f" (not: {', '.join(missed)})" if missed else "") + " | "
                   + _ratio(o, o_nd, h) + " | " + _ratio(o, o_nd, q) + " |")
    out += ["", "Targets: OHQ's front at or above every baseline on every model; OHQ's search time <= 1/5 of "
            "HAWQ-v3's and <= 1/20 of HAQ's (OHQ's time includes distillation; HAWQ-v3/HAQ use labelled "
            "data instead; the OQA table is measured once and shared by every hardware-aware method).", ""]
    return out


def main(argv: list[str] | None = None) -> int:
    """Run (or re-render) the benchmark."""
    args = parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    t0 = time.perf_counter()
    if args.report_only:
        results = [json.loads((RAW / f"{m}.json").read_text()) for m in models if (RAW / f"{m}.json").is_file()]
        wall = None
    elif args.jobs > 1 and len(models) > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as ex:
            results = list(ex.map(run_model, models, [args] * len(models)))
        wall = time.perf_counter() - t0
    else:
        results = [run_model(m, args) for m in models]
        wall = time.perf_counter() - t0
    results = [_with_search_time(r) for r in results]
    text = report(results, args, wall)
    print(text)
    if not args.no_write:
        for res in results:
            plot_pareto(res, PLOTS / f"pareto_{res['model']}.png")
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(text)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
