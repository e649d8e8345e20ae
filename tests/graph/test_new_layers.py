"""Concat, Crop2D, Normalization and unknown input H/W: float, gradient, integer and import parity.

Oracles: finite differences for the input gradient, the float model for the integer golden
model (a concat's codes must equal each input's real value rounded onto the output grid),
Keras itself for the importer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from ir_models import concat_net
from test_grad import assert_fd, probe

from codesign.errors import UnsupportedLayerError
from codesign.graph.execute import run_float
from codesign.quant.bitconfig import BitConfig
from codesign.quant.golden import GoldenModel
from codesign.quant.qgraph import quantize_model


@pytest.mark.unit
def test_float_shapes_and_values() -> None:
    g = concat_net()
    acts = run_float(g, np.random.default_rng(0).normal(size=(2, 10, 10, 2)), collect=True)
    cat = np.concatenate([acts["br_a_act"], acts["br_b_x40"], acts["stem_act"]], axis=-1)
    np.testing.assert_array_equal(acts["cat"], cat)
    np.testing.assert_array_equal(acts["crop"], cat[:, 1:-2, 0:-3, :])
    assert g["crop"].output_shape == (7, 7, 12)


@pytest.mark.unit
def test_gradient_through_concat_and_crop() -> None:
    g = concat_net()
    x = np.random.default_rng(1).normal(size=(2, 10, 10, 2))
    grad, loss = probe(g, x, ["crop", "fc"])
    assert_fd(grad, loss, x)


@pytest.mark.unit
def test_integer_concat_requantizes_each_input_onto_one_scale() -> None:
    g = concat_net()
    rng = np.random.default_rng(2)
    calib, x = rng.normal(size=(16, 10, 10, 2)), rng.normal(size=(8, 10, 10, 2))
    qg = quantize_model(g, BitConfig.uniform(g, 8), calib)
    gm = GoldenModel(qg)
    tr = gm.trace(qg.quantize_input(x))
    node = qg.node("cat")
    out_t = qg.tensors[node.output]
    real_in = np.concatenate([c.astype(np.float64) * qg.tensors[t].scale for c, t in zip(tr.inputs["cat"], node.inputs)],
                             axis=-1)
    want = np.clip(np.round(real_in / out_t.scale), out_t.qmin, out_t.qmax)
    # dyadic multipliers are exact to ~2^-31 relative; ties may round either way
    assert np.abs(tr.outputs["cat"] - want).max() <= 1
    assert np.mean(tr.outputs["cat"] != want) < 1e-3
    assert {qg.tensors[t].scale for t in node.inputs} != {out_t.scale}  # the inputs really differed
    crop = qg.node("crop")
    np.testing.assert_array_equal(tr.outputs["crop"], tr.outputs["cat"][:, 1:-2, 0:-3, :])
    assert qg.tensors[crop.output].scale == out_t.scale  # transparent: same grid
    agree = np.mean(gm.predict(x).argmax(-1) == run_float(g, x).argmax(-1))
    assert agree >= 0.75


@pytest.mark.unit
def test_new_ops_run_on_the_ps_path() -> None:
    """OQA times non-GEMM nodes on the CPU with the golden ops: concat and crop must run there."""
    from codesign.oqa import _time_ps

    g = concat_net()
    qg = quantize_model(g, BitConfig.uniform(g, 8), np.random.default_rng(3).normal(size=(4, 10, 10, 2)))
    tr = GoldenModel(qg).trace(qg.quantize_input(np.random.default_rng(4).normal(size=(1, 10, 10, 2))))
    kinds = {op.kind for op in _time_ps(qg, tr, 1)}
    assert {"concat", "crop"} <= kinds


@pytest.mark.unit
def test_serialize_round_trip(tmp_path) -> None:
    from codesign.graph.serialize import load_graph, save_graph

    g = concat_net()
    save_graph(g, tmp_path / "ir")
    back = load_graph(tmp_path / "ir")
    x = np.random.default_rng(5).normal(size=(2, 10, 10, 2)).astype(np.float32)
    np.testing.assert_array_equal(run_float(back, x), run_float(g, x))


# ---- Keras import ----------------------------------------------------------------------------


def _keras_net(tf: Any) -> Any:
    """Unknown H/W, Rescaling, Normalization, ZeroPadding2D, Cropping2D and a 3-way Concatenate."""
    L = tf.keras.layers
    inp = tf.keras.Input((None, None, 3), name="img")
    x = L.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(inp)
    norm = L.Normalization(axis=-1, mean=[0.1, -0.2, 0.3], variance=[0.5, 2.0, 1.5], name="norm")
    x = norm(x)
    x = L.ZeroPadding2D(((1, 0), (2, 1)), name="zpad")(x)
    a = L.Conv2D(4, 3, padding="same", name="ca")(x)
    b = L.Conv2D(2, 1, name="cb")(x)
    b = L.BatchNormalization(name="bn")(b)
    y = L.Concatenate(name="cat")([a, b, x])
    y = L.Cropping2D(((1, 2), (0, 1)), name="crop")(y)
    y = L.Conv2D(5, 3, strides=2, activation="relu", name="head")(y)
    y = L.GlobalAveragePooling2D(name="gap")(y)
    return tf.keras.Model(inp, L.Dense(3, name="fc")(y), name="newlayers")


@pytest.mark.tf
def test_keras_import_matches_keras(tf: Any) -> None:
    from codesign.graph.keras_import import from_keras

    tf.keras.utils.set_random_seed(0)
    model = _keras_net(tf)
    for w in model.weights:  # non-trivial BN statistics
        if "moving_variance" in w.name:
            w.assign(np.linspace(0.5, 2.0, w.shape[0]).astype(np.float32))
    g = from_keras(model, input_shape=(12, 11, 3))
    assert g.input_shape == (12, 11, 3)
    assert {"concat", "crop2d", "zeropad2d"} <= {ly.op for ly in g.layers}
    assert g["norm"].role == "normalization" and g["rescale"].role == "rescaling"
    x = np.random.default_rng(0).uniform(0, 255, (2, 12, 11, 3)).astype(np.float32)
    want = model(x, training=False).numpy()
    got = run_float(g, x)
    assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())


@pytest.mark.tf
def test_every_unsupported_layer_is_listed_at_once(tf: Any) -> None:
    from codesign.graph.keras_import import from_keras

    L = tf.keras.layers
    inp = tf.keras.Input((8, 8, 3))
    x = L.UpSampling2D(name="up")(inp)
    x = L.Conv2D(4, 3, name="conv")(x)
    x = L.LeakyReLU(name="leaky")(x)
    x = L.Conv2DTranspose(2, 3, name="deconv")(x)
    with pytest.raises(UnsupportedLayerError) as info:
        from_keras(tf.keras.Model(inp, x))
    msg = str(info.value)
    for name, cls in (("up", "UpSampling2D"), ("leaky", "LeakyReLU"), ("deconv", "Conv2DTranspose")):
        assert f"'{name}' ({cls})" in msg, msg
    assert "'conv'" not in msg and "3 layer(s)" in msg
