"""Export fidelity per model: QKeras and hls4ml (g++ C-sim) against the integer golden model.

For every zoo model (and a CIFAR-style ResNet-8 with an AveragePooling2D + Flatten + Dense
head, built here in Keras with seeded random weights and imported through codesign's Keras
importer), the search's export stage (``codesign.export.runner.run_exports``) writes the
QKeras model and the hls4ml project and checks both against the golden model:

* small models (at most ``CSIM_MAX_MACS``): ``--images`` images, QKeras and the hls4ml g++
  C-sim (each C-sim build of a 32x32 model takes minutes of g++);
* ImageNet-shape models: ``--big-images`` images (the NumPy golden model and QKeras run
  224x224 images; the C-sim build is skipped by the export stage itself above
  ``CSIM_MAX_MACS``, and the row says so).

The configs (``--configs``) are a search-like mixed 4/8 config (default) and uniform INT8.

Each (model, config) row runs in its own process with a wall-time cap (``--cap-s``); a row
that hits it keeps what finished (each format is recorded as soon as it is checked) and says
what was cut.

    PYTHONPATH=. .venv/bin/python bench/bench_export.py [--models resnet_s,...] [--images 64]

Writes ``docs/results/export.md`` (one row per model and config).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "docs" / "results" / "export.md"
SMALL = ("resnet8_cifar", "resnet_s", "mobilenetv2_s", "mobilenetv3_s")
IMAGENET = ("resnet18", "mobilenetv3_small", "mobilenetv2", "mobilenetv3_large", "resnet50")
CONFIGS = ("uniform INT8", "mixed 4/8")
CALIB_IMAGES = 16


def resnet8_cifar(seed: int = 0):
    """CIFAR-10 ResNet-8 (16/32/64) with the AveragePooling2D(8) + Flatten + Dense head of reference CNNs."""
    import tensorflow as tf

    from codesign.models.keras_zoo import cifar_resnet8

    tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    model = cifar_resnet8()
    rng = np.random.default_rng(seed)
    for layer in model.layers:  # BN statistics of a trained net, not the (0, 1) defaults
        if isinstance(layer, layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.2, b.shape),
                               rng.normal(0, 0.3, m.shape), rng.uniform(0.5, 2, v.shape)])
    return model


def load(name: str):
    """IR graph of a zoo model or of the ResNet-8 built here."""
    if name == "resnet8_cifar":
        from codesign.graph.keras_import import from_keras

        return from_keras(resnet8_cifar(), name=name)
    from codesign.models import load_model

    return load_model(name)


def mixed_4_8(graph):
    """Every other quantizable layer at 4 bit (w and a), the rest at 8: a search-like mixed config."""
    from codesign.quant.bitconfig import BitConfig, LayerBits

    names = [ly.name for ly in graph.quantizable()]
    return BitConfig({n: LayerBits(4 if i % 2 else 8, 4 if i % 2 else 8) for i, n in enumerate(names)},
                     model=graph.name).validated(graph)


def is_small(name: str) -> bool:
    """Models the export stage C-simulates (the CIFAR ResNet-8 and the Fashion-MNIST zoo)."""
    return name in SMALL


def measure_row(name: str, config: str, n_images: int, out_json: Path) -> None:
    """One (model, config): each format's result is written to ``out_json`` as soon as it is checked."""
    from codesign.export.runner import run_exports
    from codesign.quant.bitconfig import BitConfig
    from codesign.quant.qgraph import SEARCH_PTQ, quantize_model

    g = load(name)
    x = np.random.default_rng(0).uniform(0, 1, (n_images, *g.input_shape)).astype(np.float32)
    bc = BitConfig.uniform(g, 8) if config == "uniform INT8" else mixed_4_8(g)
    qg = quantize_model(g, bc, x[:CALIB_IMAGES], **SEARCH_PTQ)
    row: dict = {"model": name, "config": config, "images": n_images}
    for fmt in ("qkeras", "hls4ml"):
        print(f"{name} / {config}: {fmt} ...", flush=True)
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            (res,) = run_exports(Path(d), qg, [fmt], x)
            row[f"{fmt}_s"] = time.perf_counter() - t0
        row[fmt] = res.fidelity if res.ok else f"FAILED at {res.layer or '?'}: {res.warning}"
        if fmt == "hls4ml":
            row["layers_off"] = {k: v for k, v in res.details.get("node_max_lsb", {}).items() if v}
        out_json.write_text(json.dumps(row))


def run_row(name: str, config: str, n_images: int, cap_s: float) -> dict:
    """Run :func:`measure_row` in a child process, stopped after ``cap_s`` seconds."""
    with tempfile.TemporaryDirectory() as d:
        out_json = Path(d) / "row.json"
        cmd = [sys.executable, __file__, "--row", name, "--config", config, "--images", str(n_images),
               "--row-json", str(out_json)]
        t0 = time.perf_counter()
        cut = ""
        # own session: on the cap, the g++ of an hls4ml build goes down with its parent
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            _, err = proc.communicate(timeout=cap_s)
            if proc.returncode:
                cut = f"crashed (exit {proc.returncode}): {' '.join(err.strip().splitlines()[-1:])}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            cut = f"cut at the {cap_s:.0f} s cap"
        row = json.loads(out_json.read_text()) if out_json.is_file() else {"model": name, "config": config}
    row["seconds"] = time.perf_counter() - t0
    for fmt in ("qkeras", "hls4ml"):
        row.setdefault(fmt, f"not measured: {cut or 'no result'}")
    row.setdefault("images", n_images)
    print(row, flush=True)
    return row


def table(rows: list[dict], command: str) -> str:
    """The markdown of docs/results/export.md."""
    lines = ["# Export fidelity against the integer golden model", "",
             f"Command: `{command}`", "",
             "Uniform [0, 1) images. QKeras: the written `qkeras_model.h5` reloaded, float input, logits in output "
             "LSB. hls4ml: g++ C-sim of the written io_parallel project, output codes, and every node's output "
             "through hls4ml's trace. Both through the search's export stage "
             "(`codesign.export.runner.run_exports`), one process per row with a wall-time cap.", "",
             "| model | config | images | QKeras vs golden | hls4ml vs golden | nodes off in C-sim | QKeras s | "
             "hls4ml s |",
             "|---|---|---:|---|---|---|---:|---:|"]
    for r in rows:
        off = r.get("layers_off") if str(r["hls4ml"]).startswith("hls4ml C-sim vs") else None
        off_text = "not measured" if off is None else (", ".join(f"{k} {v:g} LSB" for k, v in off.items()) or "none")
        secs = [f"{r[k]:.0f}" if k in r else "—" for k in ("qkeras_s", "hls4ml_s")]
        lines.append(f"| {r['model']} | {r['config']} | {r['images']} | {r['qkeras']} | {r['hls4ml']} | {off_text} | "
                     f"{secs[0]} | {secs[1]} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    """Measure every row and write docs/results/export.md."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(SMALL + IMAGENET))
    ap.add_argument("--images", type=int, default=64, help="images per small model (default 64)")
    ap.add_argument("--big-images", type=int, default=8, help="images per ImageNet-shape model (default 8)")
    ap.add_argument("--cap-s", type=float, default=1200, help="wall-time cap per row, seconds (default 1200)")
    ap.add_argument("--configs", default="mixed 4/8", help=f"comma-separated, of: {', '.join(CONFIGS)}")
    ap.add_argument("--row", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--row-json", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.row:  # child process of run_row
        measure_row(args.row, args.config, args.images, args.row_json)
        return 0
    configs = [c.strip() for c in args.configs.split(",")]
    if not set(configs) <= set(CONFIGS):
        ap.error(f"--configs takes {', '.join(CONFIGS)}")
    rows = []
    for m in args.models.split(","):
        n = args.images if is_small(m) else args.big_images
        rows += [run_row(m, c, n, args.cap_s) for c in configs]
    command = (f"PYTHONPATH=. nice -n 10 .venv/bin/python bench/bench_export.py --models {args.models} "
               f"--images {args.images} --big-images {args.big_images} --cap-s {args.cap_s:.0f} --configs '{args.configs}'")
    from codesign import atomic

    atomic.write_text(RESULTS, table(rows, command))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
