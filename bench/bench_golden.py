"""Speed and memory of the integer golden model and the fake-quant path on ResNet-18 @ 224x224.

Targets (foundation issue): <= 2 s/image for the integer path, <= 1 s/image for fake-quant,
batch 1, on this 2-core machine. The measurement runs in a fresh subprocess that loads the
cached IR without TensorFlow, so peak RSS is that of the NumPy runtime alone.

    .venv/bin/python bench/bench_golden.py [--model resnet18] [--images 5] [--bits 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "golden.md"


def worker(model: str, images: int, bits: int) -> dict:
    """Load the IR (no TF), quantize, and time both paths at batch 1."""
    for name in ("tensorflow", "keras", "qkeras", "hls4ml"):
        sys.modules[name] = None  # type: ignore[assignment]  # prove the runtime is NumPy-only
    from codesign.models import load_model
    from codesign.quant.bitconfig import BitConfig
    from codesign.quant.fakequant import FakeQuantModel
    from codesign.quant.golden import GoldenModel
    from codesign.quant.qgraph import quantize_model

    g = load_model(model)
    rng = np.random.default_rng(0)
    calib = rng.uniform(0, 255, (4, *g.input_shape)).astype(np.float32)
    t0 = time.perf_counter()
    qg = quantize_model(g, BitConfig.uniform(g, bits), calib, method="minmax")
    t_quant = time.perf_counter() - t0
    x = rng.uniform(0, 255, (images, *g.input_shape)).astype(np.float32)
    xq = qg.quantize_input(x)
    out = {"model": model, "bits": bits, "images": images, "macs": g.total_macs(), "quantize_s": t_quant}
    for label, m in (("integer", GoldenModel(qg)), ("fakequant", FakeQuantModel(qg))):
        m.run(xq[:1])  # warm-up (BLAS threads, page faults)
        tracemalloc.start()
        times = []
        ys = []
        for i in range(images):
            t = time.perf_counter()
            ys.append(m.run(xq[i : i + 1]))
            times.append(time.perf_counter() - t)
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out[label] = {"s_per_image_median": float(np.median(times)), "s_per_image_min": float(min(times)),
                      "traced_peak_mb": peak / 2**20}
        out[f"{label}_outputs"] = np.concatenate(ys).tolist()
    yi, yf = np.array(out.pop("integer_outputs")), np.array(out.pop("fakequant_outputs"))
    out["fakequant_equal_frac"] = float((yi == yf).mean())
    out["fakequant_max_lsb"] = int(np.abs(yi - yf).max())
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> int:
    """Build/cache the IR, run the worker in a clean process, print and record the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--images", type=int, default=5)
    ap.add_argument("--bits", type=int, default=8)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.model, args.images, args.bits)))
        return 0
    from codesign.models import load_model

    load_model(args.model)  # builds + caches the IR (may use TensorFlow) in this process only
    cmd = [sys.executable, __file__, "--worker", "--model", args.model, "--images", str(args.images), "--bits", str(args.bits)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ})
    if proc.returncode:
        print(proc.stderr, file=sys.stderr)
        return proc.returncode
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    gi, gf = r["integer"], r["fakequant"]
    lines = [
        "# Integer golden model vs fake-quant: speed and memory",
        "",
        f"Command: `.venv/bin/python bench/bench_golden.py --model {args.model} --images {args.images} --bits {args.bits}`",
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, NumPy {np.__version__}; batch 1, "
        f"{r['macs'] / 1e9:.2f} GMAC/image, W{args.bits}A{args.bits}, median of {args.images} images after one warm-up.",
        "",
        "| path | s/image (median) | s/image (min) | target | traced peak (MiB) |",
        "|---|---|---|---|---|",
        f"| integer golden | {gi['s_per_image_median']:.3f} | {gi['s_per_image_min']:.3f} | ≤ 2 s | {gi['traced_peak_mb']:.0f} |",
        f"| fake-quant | {gf['s_per_image_median']:.3f} | {gf['s_per_image_min']:.3f} | ≤ 1 s | {gf['traced_peak_mb']:.0f} |",
        "",
        f"Peak RSS of the NumPy-only worker process (IR + quantized model + both runs): {r['peak_rss_mb']:.0f} MiB. "
        f"Quantization (BN fold + calibration on 4 images + weight quantization): {r['quantize_s']:.1f} s.",
        f"Fake-quant output codes equal to the integer model's: {100 * r['fakequant_equal_frac']:.2f} % "
        f"(max difference {r['fakequant_max_lsb']} LSB).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
