"""A CIFAR-style ResNet-8 with an AveragePooling2D + Flatten + Dense head exports, checked against the golden model.

The model is built here in Keras (``codesign.models.keras_zoo.cifar_resnet8``, narrowed and at
16x16 so that its g++ C-sim builds in CI time), imported through the Keras importer, quantized
with a search-like mixed 4/8 config and exported by the search's export stage
(``run_exports``). The oracle is the integer golden model run here: the hls4ml C-sim must equal
it bit for bit, and the QKeras file's measured error must be the one the export states.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hls4ml")

from codesign.export.runner import CHECK_IMAGES, HLS4ML_DIR, QKERAS_FILE, run_exports
from codesign.quant.bitconfig import BitConfig, LayerBits
from codesign.quant.golden import GoldenModel
from codesign.quant.qgraph import SEARCH_PTQ, quantize_model

pytestmark = [pytest.mark.tf, pytest.mark.csim, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not on PATH")]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import tensorflow as tf

    from codesign.graph.keras_import import from_keras
    from codesign.models.keras_zoo import cifar_resnet8
    from tests.graph.test_keras_import import randomize_stats

    tf.keras.utils.set_random_seed(0)
    model = cifar_resnet8((16, 16, 3), classes=10, widths=(4, 8, 8))
    randomize_stats(model)
    g = from_keras(model)
    names = [ly.name for ly in g.quantizable()]
    bc = BitConfig({n: LayerBits(4 if i % 2 else 8, 4 if i % 2 else 8) for i, n in enumerate(names)},
                   model=g.name).validated(g)
    x = np.random.default_rng(1).uniform(0, 1, (24, *g.input_shape)).astype(np.float32)
    qg = quantize_model(g, bc, x[:16], **SEARCH_PTQ)
    out = tmp_path_factory.mktemp("resnet8")
    results = {r.format: r for r in run_exports(out, qg, ["qkeras", "hls4ml"], x)}
    return out, qg, x, results


def test_head_imports_as_an_average_pool(exported) -> None:
    _, qg, _, results = exported
    assert any(n.kind in ("avgpool", "gavgpool") for n in qg.nodes)  # the AveragePooling2D head
    assert all(r.ok for r in results.values()), [r.line() for r in results.values()]


def test_hls4ml_csim_equals_golden(exported) -> None:
    out, qg, x, _ = exported
    check = np.load(out / HLS4ML_DIR / "csim_check.npz")
    codes = qg.quantize_input(x[:CHECK_IMAGES])
    np.testing.assert_array_equal(check["input_codes"], codes)
    np.testing.assert_array_equal(check["csim_codes"], GoldenModel(qg).run(codes))
    readme = (out / HLS4ML_DIR / "README.md").read_text()
    for n in qg.nodes:
        row = next(ln for ln in readme.splitlines() if ln.startswith(f"| {n.name} |"))
        assert row.rstrip(" |").endswith("| 0"), row


def test_qkeras_error_is_the_one_stated(exported) -> None:
    from codesign.export.qkeras import load_qkeras, logits_model

    out, qg, x, results = exported
    logits = logits_model(load_qkeras(Path(out) / QKERAS_FILE)).predict(x, verbose=0).astype(np.float64)
    gold = GoldenModel(qg).run(qg.quantize_input(x))
    diff = np.abs(logits / qg.tensors[qg.output].scale - gold)
    diff[diff < 1e-3] = 0  # float32 noise of the dequantized logits
    stated = "0 LSB (bit-exact" if diff.max() == 0 else f"{np.round(diff.max(), 3):g} LSB max"
    assert stated in results["qkeras"].fidelity
    # the float32-multiplier slips move single codes, never the prediction of a whole class
    assert np.mean(logits.argmax(1) == gold.argmax(1)) >= 0.9
