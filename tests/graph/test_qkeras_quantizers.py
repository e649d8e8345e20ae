"""QKeras models keep their quantizers: grids in the IR, a derived BitConfig, golden == QKeras.

The oracle is QKeras itself: its quantizers applied to the kernels, and ``model.predict``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from codesign.errors import UnsupportedLayerError

pytestmark = pytest.mark.tf

# QKeras rounds ties to even, the golden model half up; float32 BN/conv sums near a rounding
# boundary go either way. Both move an output by at most one code (measured on this model:
# max 1 LSB, 0.4 % of logits; see docs/quantization.md).
MAX_LSB = 1
MIN_EQUAL = 0.98


def qkeras_model(tf: Any) -> Any:
    """Input quantizer, po2/auto/fixed kernels, QBN (po2 statistics), relu/bits activations, quantized logits."""
    import qkeras

    from tests.graph.test_keras_import import randomize_stats

    tf.keras.utils.set_random_seed(0)
    k = tf.keras
    inp = k.Input((12, 12, 3), name="img")
    x = qkeras.QActivation("quantized_bits(8,0,keep_negative=False)", name="in_q")(inp)
    x = qkeras.QConv2D(8, 3, padding="same", kernel_quantizer="quantized_bits(4,0,1,alpha='auto_po2')",
                       bias_quantizer="quantized_bits(8,3)", name="c1")(x)
    x = qkeras.QBatchNormalization(name="bn1")(x)
    x = qkeras.QActivation("quantized_relu(4,2)", name="a1")(x)
    x = qkeras.QDepthwiseConv2D(3, padding="same", depthwise_quantizer="quantized_bits(6,0,1,alpha='auto')",
                                name="dw")(x)
    x = qkeras.QActivation("quantized_relu(6,2)", name="a2")(x)
    x = qkeras.QConv2D(8, 1, kernel_quantizer="quantized_po2(4)", name="pw")(x)
    x = qkeras.QActivation("quantized_bits(8,3)", name="a3")(x)
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    x = qkeras.QActivation("quantized_bits(8,3)", name="gq")(x)
    x = qkeras.QDense(5, kernel_quantizer="quantized_bits(8,0,1)", name="fc")(x)
    out = qkeras.QActivation("quantized_bits(8,4)", name="logits_q")(x)
    model = k.Model(inp, out, name="qmodel")
    randomize_stats(model)
    return model


@pytest.fixture(scope="module")
def qmodel(tf: Any) -> Any:
    """The QKeras model, built once."""
    pytest.importorskip("qkeras")
    return qkeras_model(tf)


def test_quantizers_become_grids_and_bitconfig(qmodel: Any) -> None:
    """Kernels are QKeras' quantized kernels; widths and scales are the quantizers'."""
    from codesign.graph.keras_import import from_keras
    from codesign.quant.bitconfig import derived_bitconfig

    g = from_keras(qmodel)
    c1 = qmodel.get_layer("c1")
    want = np.asarray(c1.kernel_quantizer_internal(c1.kernel))
    np.testing.assert_array_equal(g["c1"].params["kernel"], want)
    bc = derived_bitconfig(g)
    assert (bc["c1"].w_bits, bc["c1"].a_bits) == (4, 8)  # 4-bit kernel, reads the 8-bit input quantizer
    assert (bc["dw"].w_bits, bc["dw"].a_bits) == (6, 4)
    assert bc["pw"].a_bits == 6 and bc["fc"].a_bits == 8
    assert g.hints.tensors["a1"].scale == 2.0**-2 and not g.hints.tensors["a1"].signed  # quantized_relu(4,2)
    assert g.hints.tensors["pw"].scale == 2.0**-4 and g.hints.tensors["pw"].signed  # quantized_bits(8,3)
    # po2 kernel: every code is a power of two times the channel's smallest magnitude
    codes = np.abs(g["pw"].params["kernel"].reshape(-1, 8) / g.hints.weights["pw"].scale)
    assert np.all(np.log2(codes) == np.round(np.log2(codes)))
    assert 2 ** (bc["pw"].w_bits - 1) - 1 >= codes.max()


def test_golden_reproduces_qkeras(qmodel: Any) -> None:
    """The golden model of the import under the derived BitConfig gives QKeras' logits (<= 1 LSB)."""
    from codesign.graph.keras_import import from_keras
    from codesign.quant.bitconfig import derived_bitconfig
    from codesign.quant.golden import GoldenModel
    from codesign.quant.qgraph import quantize_model

    g = from_keras(qmodel)
    x = np.random.default_rng(0).uniform(0, 1, (128, 12, 12, 3)).astype(np.float32)
    qg = quantize_model(g, derived_bitconfig(g), x[:32])
    assert qg.tensors[qg.output].scale == 2.0**-3
    codes = GoldenModel(qg).run(qg.quantize_input(x))
    ref = qmodel.predict(x, verbose=0) / qg.tensors[qg.output].scale
    assert np.all(ref == np.round(ref))  # QKeras' logits are on the grid the import found
    diff = np.abs(codes - ref)
    assert diff.max() <= MAX_LSB
    assert np.mean(diff == 0) >= MIN_EQUAL


def test_hints_survive_save_and_bn_fold(qmodel: Any, tmp_path: Path) -> None:
    """graph.json keeps the grids; folding the BN scales the weight step with the kernel."""
    from codesign.graph.keras_import import from_keras
    from codesign.graph.serialize import load_graph, save_graph
    from codesign.quant.fold import bn_coefficients, fold_batchnorm

    g = from_keras(qmodel)
    back = load_graph(save_graph(g, tmp_path / "ir"))
    assert back.hints.to_dict() == g.hints.to_dict()
    folded = fold_batchnorm(g)
    a, _ = bn_coefficients(g["bn1"])
    np.testing.assert_allclose(folded.hints.weights["c1"].scale, g.hints.weights["c1"].scale * np.abs(a))


def test_inspect_emits_bitconfig(qmodel: Any, tmp_path: Path) -> None:
    """`codesign inspect model.h5 --emit-bitconfig F` writes the quantizers' widths and shows them."""
    from codesign.graph.keras_import import from_keras
    from codesign.quant.bitconfig import derived_bitconfig

    path = tmp_path / "q.h5"
    qmodel.save(path)
    out = tmp_path / "bc.json"
    proc = subprocess.run([sys.executable, "-m", "codesign", "inspect", str(path), "--emit-bitconfig", str(out)],
                          capture_output=True, text=True, check=True)
    assert "quantized_relu(4,2)" in proc.stdout and "W/A bits" in proc.stdout
    want = derived_bitconfig(from_keras(qmodel)).to_dict()["layers"]
    assert json.loads(out.read_text())["layers"] == want


def test_po2_activation_is_refused_by_name(tf: Any) -> None:
    """A quantizer with no uniform integer grid is refused, naming the layer and the quantizer."""
    import qkeras

    from codesign.graph.keras_import import from_keras

    inp = tf.keras.Input((4, 4, 2))
    x = qkeras.QConv2D(2, 1, kernel_quantizer="quantized_bits(4,0,1)", name="c")(inp)
    out = qkeras.QActivation("quantized_relu_po2(4)", name="po2act")(x)
    with pytest.raises(UnsupportedLayerError, match=r"po2act.*quantized_relu_po2"):
        from_keras(tf.keras.Model(inp, out))


def test_other_widths_fall_back_to_calibration(qmodel: Any) -> None:
    """A BitConfig with other widths than the quantizers' calibrates those layers/tensors itself."""
    from codesign.graph.keras_import import from_keras
    from codesign.quant.bitconfig import BitConfig
    from codesign.quant.qgraph import quantize_model

    g = from_keras(qmodel)
    x = np.random.default_rng(0).uniform(0, 1, (32, 12, 12, 3)).astype(np.float32)
    qg = quantize_model(g, BitConfig.uniform(g, 8), x)
    c1 = qg.node("c1")
    assert not np.allclose(c1.params["w_scale"], g.hints.weights["c1"].scale)  # 4-bit grid not used at 8 bit
    assert qg.tensors["a1"].bits == 8 and qg.tensors["a1"].scale != g.hints.tensors["a1"].scale
    assert qg.tensors["pw"].scale == g.hints.tensors["pw"].scale  # 8-bit quantizer at 8 bits: kept
