"""CI: the default search (export on) of a Keras model with squeeze-excite, h-swish, ReLU6 and an
AveragePooling2D + Flatten + Dense head, and of a QKeras model; every export is checked here
against the golden model.

The models are built in Keras/QKeras and imported through codesign's Keras importer (``--model
file.keras`` / ``file.h5``). The hardware table is a fixture (``--hw-table``): the board is not the point.
The oracle is the integer golden model, run here on the run's integer model (``quantized/``,
whose widths must be the run's bitconfig.json) and the run's distilled images; the exports'
outputs are compared with it, not with figures the search wrote.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("hls4ml")
from test_search_cli import fixture_table

from codesign.export.runner import CHECK_IMAGES
from codesign.graph.keras_import import load_keras_file
from codesign.quant.bitconfig import BitConfig
from codesign.quant.golden import GoldenModel
from codesign.quant.qserialize import load_qgraph

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.tf, pytest.mark.csim,
              pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not on PATH")]


def se_hswish_keras(path: Path) -> Path:
    """h-swish stem, depthwise ReLU6 block with an SE gate (hard sigmoid), AveragePooling2D head."""
    import tensorflow as tf

    from codesign.models.keras_zoo import conv_bn, dw_bn, squeeze_excite

    tf.keras.utils.set_random_seed(0)
    layers = tf.keras.layers
    inp = layers.Input((16, 16, 1), name="input")
    x = conv_bn(inp, 8, 3, 2, name="stem", activation="hswish")
    y = conv_bn(x, 16, 1, name="expand", activation="relu6")
    y = dw_bn(y, 3, 1, name="block", activation="relu6")
    y = squeeze_excite(y, 8, name="se")
    y = conv_bn(y, 8, 1, name="project", activation=None)
    x = layers.Add(name="res")([x, y])
    x = layers.AveragePooling2D(4, name="head_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    out = layers.Dense(10, activation="softmax", name="fc")(x)
    model = tf.keras.Model(inp, out, name="se_hswish")
    # BN statistics away from the (0, 1) defaults so that distillation has something to match
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.2, b.shape),
                               rng.normal(0, 0.3, m.shape), rng.uniform(0.5, 2, v.shape)])
    model.save(path)
    return path


def qkeras_h5(path: Path) -> Path:
    """A QKeras model (quantized_bits/po2 kernels, QBatchNormalization, quantized_relu) saved as .h5."""
    import tensorflow as tf

    from codesign.tf_quiet import save_h5
    from tests.graph.test_qkeras_quantizers import qkeras_model

    save_h5(qkeras_model(tf), path)
    return path


MODELS = {"se_hswish": lambda d: se_hswish_keras(d / "se_hswish.keras"), "qkeras": lambda d: qkeras_h5(d / "q.h5")}


@pytest.fixture(scope="module", params=sorted(MODELS))
def run(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"export_e2e_{request.param}")
    model = MODELS[request.param](d)
    g = load_keras_file(model)
    fixture_table(g).save(d / "hw.csv")
    out = d / "run"
    cmd = [sys.executable, "-m", "codesign.search", "--quiet", "--model", str(model), "--hw-table", str(d / "hw.csv"),
           "--bits", "4,8", "--ratio", "0.5", "--images", "8", "--distill-iters", "20", "--input-range", "0,1",
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the first --images distilled images calibrate and check the exports; the rest are the
    # self-check's held-out images
    images = np.load(out / "distill" / "images.npz")["images"][:8]
    qg = load_qgraph(out / "quantized")  # the run's integer model: the exports must compute what it computes
    bc = BitConfig.load(out / "bitconfig.json")
    assert all(n.attrs["w_bits"] == bc[n.name].w_bits for n in qg.gemm_nodes())
    return out, qg, images


def test_report_and_exports_written(run) -> None:
    out, qg, _ = run
    report = (out / "report.md").read_text()
    assert "## Exports" in report and "WARNING" not in report
    if qg.name == "se_hswish":  # the ops the export had to learn made it into the searched model
        kinds = {n.kind for n in qg.nodes}
        assert {"hswish", "hsigmoid", "mul", "avgpool"} <= kinds or {"hsigmoid", "mul", "avgpool"} <= kinds
        assert any(n.attrs.get("act") == 3 for n in qg.nodes)  # a fused h-swish
    for f in ("qkeras_model.h5", "hls4ml_prj/README.md", "hls4ml_prj/build_prj.tcl", "quantized/qgraph.json",
              "exports.json"):
        assert (out / f).exists(), f
    summary = json.loads((out / "exports.json").read_text())
    assert [r["format"] for r in summary["results"]] == ["qkeras", "hls4ml"]
    assert all(not r["warning"] for r in summary["results"])


def test_qkeras_export_against_golden(run) -> None:
    from codesign.export.qkeras import load_qkeras, logits_model

    out, qg, images = run
    model = load_qkeras(out / "qkeras_model.h5")
    logits = logits_model(model).predict(images, verbose=0).astype(np.float64)
    gold = GoldenModel(qg).run(qg.quantize_input(images))
    diff = np.abs(logits / qg.tensors[qg.output].scale - gold)
    assert diff.max() <= 1.0 + 1e-3
    # the figure the report states is the one measured here
    report = (out / "report.md").read_text()
    stated = "0 LSB (bit-exact" if diff.max() < 1e-3 else f"{np.round(diff.max(), 3):g} LSB max"
    assert stated in report


def test_hls4ml_csim_against_golden(run) -> None:
    out, qg, images = run
    check = np.load(out / "hls4ml_prj" / "csim_check.npz")
    codes = qg.quantize_input(images[:CHECK_IMAGES])
    np.testing.assert_array_equal(check["input_codes"], codes)  # the run's own images, quantized as here
    np.testing.assert_array_equal(check["csim_codes"], GoldenModel(qg).run(codes))
    readme = (out / "hls4ml_prj" / "README.md").read_text()
    assert "0 LSB (bit-exact" in readme
    for n in qg.nodes:  # every node has its row with a measured error
        row = next(ln for ln in readme.splitlines() if ln.startswith(f"| {n.name} |"))
        assert row.rstrip(" |").endswith("| 0")
