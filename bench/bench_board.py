"""Peak memory and time of the search's on-board stages, as a PYNQ-Z2 would run them (issue 16).

For each model (default: ``resnet_s`` and ResNet-18 @ 224, the paper's model) a child process
imports only the on-board runtime (TensorFlow, matplotlib, rich, PyYAML, Jinja2 and tqdm are
blocked), sets the search's memory budget (``--max-memory-mb``, default 400) and runs:

* ``load``: the zoo IR;
* ``distill``: data-free distillation (``--images`` images; ``--iterations`` steps, default
  200 for resnet_s and 1 for ResNet-18, whose 200-step time is then extrapolated *and
  labelled so*);
* ``calibrate``: the 8-bit quantization on the distilled images (the search's PTQ options);
* ``mqe``: MQE sensitivities;
* ``ilp``: the bit-width ILP with the built-in solver (the board's fallback) on an analytic
  hardware table (cycles from MACs: the ILP's cost does not depend on the table's values).

Per stage: wall time, and the peak resident set size (VmHWM, reset before each stage via
``/proc/self/clear_refs``). Op counts are the GEMM multiply-accumulates the stage performs
(from the IR's layer MACs; PS ops and elementwise work left out), and the Cortex-A9 time
is an *estimate*, method stated in the page. Writes ``docs/results/board.md``.

    .venv/bin/python bench/bench_board.py [--models resnet_s,resnet18] [--max-memory-mb 400]
        [--images 32] [--resnet18-iterations 1] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from codesign import atomic
from codesign.cpu_estimate import A9_FLOP_PER_CYCLE, A9_MHZ, a9_seconds, sgemm_gflops

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "board.md"
BLOCKED = ("tensorflow", "keras", "tf_keras", "qkeras", "hls4ml", "torch", "matplotlib", "rich", "yaml", "jinja2",
           "tqdm")


# ---- child: one model ---------------------------------------------------------------------------------
def _vm(field: str) -> float:
    """A /proc/self/status field in MiB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def _stage(out: dict, name: str, fn):
    _reset_peak()
    t0 = time.perf_counter()
    value = fn()
    out[name] = {"seconds": time.perf_counter() - t0, "peak_rss_mb": _vm("VmHWM"), "rss_after_mb": _vm("VmRSS")}
    print(f"  {name}: {out[name]['seconds']:.2f} s, peak RSS {out[name]['peak_rss_mb']:.0f} MiB, after "
          f"{out[name]['rss_after_mb']:.0f} MiB", file=sys.stderr, flush=True)
    return value


def gemm_macs(graph) -> list[int]:
    """MACs per image of each quantizable (GEMM) layer, in graph order."""
    return [int(ly.macs(graph.in_shapes(ly))) for ly in graph.quantizable()]


def child(model: str, images: int, iterations: int, max_mb: float) -> dict:
    """Run the stages of one model in this (fresh) process; the result as a dict."""
    for name in BLOCKED:
        sys.modules[name] = None  # type: ignore[assignment]
    sys.path.insert(0, str(ROOT))
    from codesign import ilp, membudget
    from codesign.distill import distill
    from codesign.models import ZOO, load_model
    from codesign.mqe import mqe_sensitivity
    from codesign.quant.bitconfig import BitConfig
    from codesign.quant.qgraph import SEARCH_PTQ, quantize_model

    membudget.set_budget_mb(max_mb)
    out: dict = {"model": model, "images": images, "iterations": iterations, "max_memory_mb": max_mb,
                 "rss_start_mb": _vm("VmRSS")}
    graph = _stage(out, "load", lambda: load_model(model))
    clip = ZOO[model].input_range if model in ZOO else None
    res = _stage(out, "distill", lambda: distill(graph, n_images=images, iterations=iterations, progress=False,
                                                 clip=clip))
    qkw = {"method": SEARCH_PTQ["method"], "weight_clip": SEARCH_PTQ["weight_clip"],
           "weight_round": SEARCH_PTQ["weight_round"]}
    qg8 = _stage(out, "calibrate", lambda: quantize_model(graph, BitConfig.uniform(graph, 8), res.images, **qkw))
    sens = _stage(out, "mqe", lambda: mqe_sensitivity(qg8, res.images, progress=False))
    macs = gemm_macs(graph)
    costs = [ilp.LayerCost(ly.name, int(ly.params["kernel"].size), float(s),
                           {b: m / (8 * 64 // b) + 50.0 for b in (4, 8)}, {b: m * b * 1e-7 for b in (4, 8)})
             for ly, m, s in zip(graph.quantizable(), macs, sens.scores)]
    reach = ilp.feasible_range(costs, [4, 8])
    budgets = ilp.Budgets(size_mbit=ilp.ratio_to_size(costs, 0.5, [4, 8]),
                          latency_cycles=sum(reach["latency_cycles"]) / 2)
    sol = _stage(out, "ilp", lambda: ilp.solve(costs, [4, 8], budgets, solver="builtin"))
    # Op counts (GEMM MACs): distillation runs forward + input gradient per image and step (and the
    # statistics forward again when micro-batched); MQE one traced forward plus, per layer, the rest of
    # the network from that layer; calibration one forward (8 bit: no GPTQ grams).
    micro = int(res.config["micro_batch"])
    forward = sum(macs)
    suffix = sum(sum(macs[i:]) for i in range(len(macs)))
    passes = 3 if micro < images else 2
    out.update(
        input="x".join(map(str, graph.input_shape)), layers=len(macs), forward_macs=forward,
        distill_micro_batch=micro, mqe_batch=int(sens.params["batch_size"]), ilp_solver=sol.solver,
        macs={"distill": passes * forward * images * iterations, "calibrate": forward * images,
              "mqe": (forward + suffix) * images},
        distill_loss_reduction=res.reduction,
        # clear_refs also resets the rusage high-water mark, so the process peak is the largest stage peak
        peak_rss_process_mb=max(out[st]["peak_rss_mb"] for st in ("load", "distill", "calibrate", "mqe", "ilp")),
    )
    return out


# ---- parent: run the children, measure this machine, write the page ---------------------------------------
def render(rows: list[dict], command: str, gflops: float, load: tuple[float, float, float]) -> str:
    """The results page (markdown)."""
    lines = [
        "# On-board stages: peak memory and time (issue 16)",
        "",
        f"Command: `{command}`",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, NumPy "
        f"{np.__version__}; float32 matmul {gflops:.1f} GFLOP/s measured (1024^3, best of 5); load average "
        f"{load[0]:.1f} at start (shared machine: times are upper bounds).",
        "Each model runs in a fresh process that imports only the on-board runtime (TensorFlow, matplotlib, rich, "
        "PyYAML, Jinja2 and tqdm blocked) with the search's memory budget set. Peak RSS per stage is the "
        "process's VmHWM, reset before the stage, so it includes what earlier stages left resident (model, images, "
        "the 8-bit model).",
        "",
        "| model | input | stage | wall (s) | peak RSS (MiB) | GEMM MACs | A9 estimate at NEON peak (s) "
        "| A9 estimate at this machine's efficiency (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for st in ("load", "distill", "calibrate", "mqe", "ilp"):
            m = r["macs"].get(st)
            est = a9_seconds(m, r[st]["seconds"], gflops) if m else None
            lines.append(f"| {r['model']} | {r['input']} | {st} | {r[st]['seconds']:.2f} | {r[st]['peak_rss_mb']:.0f} | "
                         f"{'-' if m is None else f'{m / 1e9:.2f} G'} | {'-' if est is None else f'{est[0]:.1f}'} | "
                         f"{'-' if est is None else f'{est[1]:.0f}'} |")
    lines += ["", "| model | images | distill iterations | distill micro-batch | MQE batch | ILP solver | process peak "
              "RSS (MiB) | within the budget |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['images']} | {r['iterations']} | {r['distill_micro_batch']} | "
                     f"{r['mqe_batch']} | {r['ilp_solver']} | {r['peak_rss_process_mb']:.0f} | "
                     f"{'yes' if r['peak_rss_process_mb'] <= r['max_memory_mb'] else 'NO'} "
                     f"(budget {r['max_memory_mb']:.0f}) |")
    for r in rows:
        if r["iterations"] < 200:
            per = r["distill"]["seconds"] / max(r["iterations"], 1)
            lines += ["", f"{r['model']}: distillation ran {r['iterations']} step(s) here ({per:.1f} s each); the "
                      f"default 200 steps would take about {per * 200 / 60:.0f} min on this machine (extrapolated, "
                      "not measured)."]
    lines += [
        "",
        "**Cortex-A9 estimate (not measured; no board here).** GEMM MACs are counted from the IR (per layer "
        "`macs`, times the passes each stage makes: distillation 2 per image and step, 3 when micro-batched "
        "(statistics pass, then forward + input gradient); calibration 1; MQE one traced forward plus, for each "
        "layer, the network from that layer on). The PYNQ-Z2's A9 runs at 650 MHz and its NEON unit has a 64-bit "
        f"datapath, i.e. 2 fp32 multiply-accumulates = {A9_FLOP_PER_CYCLE:.0f} FLOP per cycle, "
        f"{A9_MHZ * A9_FLOP_PER_CYCLE / 1e3:.1f} GFLOP/s peak (one core; NumPy's BLAS on the board may use both). "
        "The first estimate is 2 x MACs at that peak (a lower bound); the second divides it by the fraction of "
        "peak the same stage reaches on this machine (its GEMM FLOP/s over the measured matmul FLOP/s), assuming "
        "the A9 keeps the same efficiency. Both leave out PS ops, im2col copies and elementwise work, so the board "
        "is slower still; the real figure needs a board run.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run each model in a child process and write docs/results/board.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet_s,resnet18")
    ap.add_argument("--max-memory-mb", type=float, default=400.0)
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=200, help="distillation steps (resnet_s and other small models)")
    ap.add_argument("--resnet18-iterations", type=int, default=1)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        iters = args.resnet18_iterations if args.child == "resnet18" else args.iterations
        print(json.dumps(child(args.child, args.images, iters, args.max_memory_mb)))
        return 0
    load = os.getloadavg()
    rows = []
    for model in args.models.split(","):
        print(f"== {model}", file=sys.stderr, flush=True)
        cmd = [sys.executable, __file__, "--child", model, "--images", str(args.images), "--iterations",
               str(args.iterations), "--resnet18-iterations", str(args.resnet18_iterations), "--max-memory-mb",
               str(args.max_memory_mb)]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        if proc.returncode != 0:
            print(f"{model} failed (exit {proc.returncode})", file=sys.stderr)
            return 1
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    gflops = sgemm_gflops()
    given = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--no-write"]
    page = render(rows, " ".join([".venv/bin/python bench/bench_board.py", *given]), gflops, load)
    print(page)
    if not args.no_write:
        atomic.write_text(RESULTS, page)
    return 0 if all(r["peak_rss_process_mb"] <= r["max_memory_mb"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
