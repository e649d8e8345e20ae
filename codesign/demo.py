"""``make demo``: the default small model through the pipeline that exists today.

It loads the trained Fashion-MNIST ResNet from the zoo (committed IR, no TensorFlow
needed), quantizes it at uniform INT8, INT4 and a mixed 8/4 configuration, runs the integer
golden model on the test set and prints size and top-1 against float. The OHQ search
(distillation, OQA on the simulated board, MQE, ILP) replaces this once it lands.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from codesign.errors import run_cli
from codesign.graph.execute import run_float
from codesign.quant.bitconfig import BitConfig, LayerBits
from codesign.quant.golden import GoldenModel
from codesign.quant.qgraph import quantize_model


def _top1(probs: np.ndarray, y: np.ndarray) -> float:
    return float((probs.argmax(1) == y).mean() * 100)


def _batched(fn, x: np.ndarray, bs: int = 250) -> np.ndarray:
    return np.concatenate([fn(x[i : i + bs]) for i in range(0, len(x), bs)])


def mixed_config(graph, hi: int = 8, lo: int = 4) -> BitConfig:
    """First and last layer at ``hi`` bits, the rest at ``lo`` (a common hand-made baseline)."""
    q = graph.quantizable()
    layers = {ly.name: LayerBits(lo, lo) for ly in q}
    for ly in (q[0], q[-1]):
        layers[ly.name] = LayerBits(hi, hi)
    return BitConfig(layers, model=graph.name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo and write runs/demo/summary.json."""
    from codesign.datasets import load_dataset
    from codesign.models import load_model

    ap = argparse.ArgumentParser(prog="python -m codesign.demo")
    ap.add_argument("--model", default="resnet_s")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--out", default="runs/demo")
    args = ap.parse_args(argv)
    con = Console()
    graph = load_model(args.model)
    x_tr, _ = load_dataset(args.dataset, "train")
    x_te, y_te = load_dataset(args.dataset, "test")
    x_te, y_te = x_te[: args.n_test], y_te[: args.n_test]
    calib = x_tr[np.random.default_rng(0).choice(len(x_tr), 64, replace=False)]
    t0 = time.perf_counter()
    float_top1 = _top1(_batched(lambda b: run_float(graph, b), x_te), y_te)
    results = [{"config": "float32", "size_mbit": sum(ly.num_params for ly in graph) * 32 / 1e6, "top1": float_top1}]
    configs = {"INT8": BitConfig.uniform(graph, 8), "INT4": BitConfig.uniform(graph, 4), "mixed 8/4": mixed_config(graph)}
    for name, bc in configs.items():
        qg = quantize_model(graph, bc, calib)
        gm = GoldenModel(qg)
        results.append({"config": name, "size_mbit": bc.size_mbit(graph), "top1": _top1(_batched(gm.predict, x_te), y_te)})
    table = Table(title=f"{graph.name} on {args.dataset} ({len(y_te)} test images, integer golden model)")
    for col in ("config", "weight size (Mbit)", "top-1 (%)"):
        table.add_column(col)
    for r in results:
        table.add_row(r["config"], f"{r['size_mbit']:.3f}", f"{r['top1']:.2f}")
    con.print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({"model": graph.name, "results": results,
                                                  "seconds": time.perf_counter() - t0}, indent=2))
    con.print(f"wrote {out / 'summary.json'}  ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
