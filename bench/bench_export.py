"""Export fidelity per model: QKeras and hls4ml (g++ C-sim) against the integer golden model.

For every zoo model (and a CIFAR-style ResNet-8 with an AveragePooling2D + Flatten + Dense
head, built here in Keras with seeded random weights and imported through codesign's Keras
importer) and two configurations (uniform INT8 and the search's kind of mixed 4/8 config),
the search's export stage (``codesign.export.runner.run_exports``) writes the QKeras model
and the hls4ml project and checks both against the golden model on 64 images. Models above
``CSIM_MAX_MACS`` are exported without the C-sim build (the reason is recorded).

    .venv/bin/python bench/bench_export.py [--models resnet_s,mobilenetv2_s,...] [--images 64]

Writes ``docs/results/export.md`` (one row per model and config).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "docs" / "results" / "export.md"
SMALL = ("resnet_s", "mobilenetv2_s", "mobilenetv3_s", "resnet8_cifar")
IMAGENET = ("resnet18", "mobilenetv3_small", "mobilenetv2", "mobilenetv3_large", "resnet50")


def resnet8_cifar(seed: int = 0):
    """CIFAR-10 ResNet-8 (16/32/64) with the AveragePooling2D(8) + Flatten + Dense head of reference CNNs."""
    import tensorflow as tf

    from codesign.models.keras_zoo import basic_block, conv_bn

    tf.keras.utils.set_random_seed(seed)
    layers = tf.keras.layers
    inp = layers.Input((32, 32, 3), name="input")
    x = conv_bn(inp, 16, 3, name="stem")
    for stage, filters in enumerate((16, 32, 64)):
        x = basic_block(x, filters, 1 if stage == 0 else 2, name=f"s{stage + 1}")
    x = layers.AveragePooling2D(8, name="head_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    out = layers.Dense(10, activation="softmax", name="fc")(x)
    model = tf.keras.Model(inp, out, name="resnet8_cifar")
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


def measure(name: str, n_images: int) -> list[dict]:
    """Rows for one model: uniform INT8 and mixed 4/8."""
    from codesign.export.runner import run_exports
    from codesign.quant.bitconfig import BitConfig
    from codesign.quant.qgraph import SEARCH_PTQ, quantize_model

    g = load(name)
    x = np.random.default_rng(0).uniform(0, 1, (n_images, *g.input_shape)).astype(np.float32)
    rows = []
    for cfg_name, bc in (("uniform INT8", BitConfig.uniform(g, 8)), ("mixed 4/8", mixed_4_8(g))):
        qg = quantize_model(g, bc, x[:16], **SEARCH_PTQ)
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            res = {r.format: r for r in run_exports(Path(d), qg, ["qkeras", "hls4ml"], x)}
            seconds = time.perf_counter() - t0
        worst = {k: v for k, v in res["hls4ml"].details.get("node_max_lsb", {}).items() if v}
        rows.append({"model": name, "config": cfg_name,
                     "qkeras": res["qkeras"].fidelity if res["qkeras"].ok else "FAILED: " + res["qkeras"].warning,
                     "hls4ml": res["hls4ml"].fidelity if res["hls4ml"].ok else "FAILED: " + res["hls4ml"].warning,
                     "layers_off": ", ".join(f"{k} {v:g} LSB" for k, v in worst.items()) or "none",
                     "seconds": seconds})
        print(rows[-1], flush=True)
    return rows


def main() -> int:
    """Measure and write docs/results/export.md."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(SMALL + IMAGENET))
    ap.add_argument("--images", type=int, default=64)
    args = ap.parse_args()
    rows = [r for m in args.models.split(",") for r in measure(m, args.images)]
    lines = ["# Export fidelity against the integer golden model", "",
             f"Command: `.venv/bin/python bench/bench_export.py --models {args.models} --images {args.images}`",
             "(uniform [0, 1) images; QKeras: float input, logits in output LSB; hls4ml: g++ C-sim of the written "
             "project, output codes, and per node through hls4ml's trace).", "",
             "| model | config | QKeras vs golden | hls4ml C-sim vs golden | nodes off in C-sim | export s |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['config']} | {r['qkeras']} | {r['hls4ml']} | {r['layers_off']} | "
              f"{r['seconds']:.0f} |" for r in rows]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    from codesign import atomic

    atomic.write_text(RESULTS, "\n".join(lines) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
