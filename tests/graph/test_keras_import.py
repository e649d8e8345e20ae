"""Keras/QKeras -> IR import: float parity of the IR against Keras itself (the oracle)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from codesign.errors import ModelFileError, ShapeError, UnsupportedLayerError

APP_TOL = 1e-4
SMALL_TOL = 1e-5
# Input value range per keras.applications model: MobileNetV3 rescales 0..255 pixels itself.
APPLICATIONS = {
    "ResNet50": (-1.0, 1.0),
    "MobileNetV2": (-1.0, 1.0),
    "MobileNetV3Small": (0.0, 255.0),
    "MobileNetV3Large": (0.0, 255.0),
}


# ---- helpers ---------------------------------------------------------------------------------


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    """max|got - want| / max|want| (the parity metric of these tests)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    scale = float(np.max(np.abs(want)))
    return float(np.max(np.abs(got - want))) / (scale if scale > 0 else 1.0)


def randomize_stats(model: Any, seed: int = 0) -> None:
    """Give every BN statistic and bias non-trivial values, so a wrong mean/var/beta/bias shows."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        name = w.name.split("/")[-1]
        shape = tuple(w.shape)
        if name.startswith("moving_variance"):
            w.assign(rng.uniform(0.5, 2.0, shape).astype(np.float32))
        elif name.startswith("gamma"):
            w.assign(rng.uniform(0.5, 1.5, shape).astype(np.float32))
        elif name.startswith(("moving_mean", "beta", "bias")):
            w.assign(rng.normal(0.0, 0.3, shape).astype(np.float32))


def batch(shape: tuple[int, ...], lo: float = -1.0, hi: float = 1.0, n: int = 2, seed: int = 1) -> np.ndarray:
    """A random float32 batch of ``n`` inputs."""
    return np.random.default_rng(seed).uniform(lo, hi, (n, *shape)).astype(np.float32)


def keras_outputs(model: Any, x: np.ndarray) -> list[np.ndarray]:
    """Keras' own inference outputs as a list of arrays."""
    out = model(x, training=False)
    return [np.asarray(o) for o in (out if isinstance(out, list | tuple) else [out])]


def assert_outputs_match(model: Any, graph: Any, x: np.ndarray, tol: float) -> None:
    """Every model output of the IR equals Keras' within ``tol`` (relative to max|Keras|)."""
    from codesign.graph.execute import run_float

    acts = run_float(graph, x, collect=True)
    want = keras_outputs(model, x)
    assert len(graph.outputs) == len(want)
    for name, ref in zip(graph.outputs, want):
        assert rel_err(acts[name], ref) <= tol, f"output {name!r}: rel err {rel_err(acts[name], ref):.2e}"


def assert_layers_match(tf: Any, model: Any, graph: Any, x: np.ndarray, tol: float) -> int:
    """Every Keras layer output that the IR keeps under the same name matches; returns the count.

    A layer with a fused activation is compared through its ``<name>_act`` IR tensor.
    """
    from codesign.graph.execute import run_float

    acts = run_float(graph, x, collect=True)
    probes = {}
    for layer in model.layers:
        fused = type(layer).__name__ not in ("Activation", "QActivation")
        act = layer.get_config().get("activation") if fused else None
        ir_name = f"{layer.name}_act" if act not in (None, "linear") else layer.name
        if ir_name in acts and type(layer).__name__ != "InputLayer":
            probes[ir_name] = layer.output
    probe = tf.keras.Model(model.inputs, list(probes.values()))
    for ir_name, ref in zip(probes, keras_outputs(probe, x)):
        err = rel_err(acts[ir_name], ref)
        assert err <= tol, f"layer {ir_name!r}: rel err {err:.2e}"
    return len(probes)


def keras_logits(tf: Any, model: Any, graph: Any, x: np.ndarray) -> tuple[str, np.ndarray]:
    """(IR name, Keras value) of the tensor that feeds the final softmax.

    When Keras fused the softmax into a Dense (``activation='softmax'``), Keras never exposes the
    logits, so they are recomputed from the Dense's Keras input and its weights.
    """
    softmax = [ly for ly in graph.layers if ly.op == "softmax"][-1]
    pre = softmax.inputs[0]
    layer = model.get_layer(pre)
    if layer.get_config().get("activation") == "softmax":
        feats = np.asarray(tf.keras.Model(model.inputs, layer.input)(x, training=False), dtype=np.float64)
        kernel, bias = (np.asarray(w, dtype=np.float64) for w in layer.get_weights())
        return pre, feats @ kernel + bias
    return pre, np.asarray(tf.keras.Model(model.inputs, layer.output)(x, training=False))


# ---- keras.applications ----------------------------------------------------------------------


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("app", sorted(APPLICATIONS))
def test_application_parity(tf: Any, keras_application: Any, app: str) -> None:
    """Softmax output and pre-softmax logits of the IR match Keras within 1e-4 relative."""
    from codesign.graph.execute import run_float
    from codesign.graph.keras_import import from_keras

    model = keras_application(app)
    graph = from_keras(model)
    x = batch((224, 224, 3), *APPLICATIONS[app])
    acts = run_float(graph, x, collect=True)
    assert rel_err(acts[graph.outputs[0]], keras_outputs(model, x)[0]) <= APP_TOL
    pre, logits = keras_logits(tf, model, graph, x)
    assert rel_err(acts[pre], logits) <= APP_TOL, f"logits {pre!r}"
    # Names survive import: every Keras BN is an IR BN of the same name (BN stats match by name).
    keras_bn = {ly.name for ly in model.layers if type(ly).__name__ == "BatchNormalization"}
    assert keras_bn == {ly.name for ly in graph.layers if ly.op == "batchnorm"}


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("app", ["MobileNetV3Small", "MobileNetV3Large"])
def test_mobilenetv3_hard_activations_are_fused(keras_application: Any, app: str) -> None:
    """No x+3 / relu6 / *1/6 chains survive: only the Rescaling stays an Affine."""
    from codesign.graph.keras_import import from_keras

    model = keras_application(app)
    graph = from_keras(model)
    affines = [ly.name for ly in graph.layers if ly.op == "affine"]
    assert affines == [ly.name for ly in model.layers if type(ly).__name__ == "Rescaling"]
    kinds = {ly.kind for ly in graph.layers if ly.op == "activation"}
    assert {"hswish", "hsigmoid"} <= kinds
    assert "relu6" not in kinds


# ---- hand-built user models ------------------------------------------------------------------


def _functional_all_layers(tf: Any) -> Any:
    """A functional model touching every supported Keras layer type and fused activation."""
    L = tf.keras.layers
    inp = tf.keras.Input((15, 15, 4), name="image")
    x = L.Rescaling(scale=[0.5, 1.0, 2.0, 1.5], offset=0.1, name="rescale")(inp)
    x = L.ZeroPadding2D(((1, 0), (2, 1)), name="pad")(x)
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False, activation="relu", name="conv_s2")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.Conv2D(8, 3, padding="same", groups=2, activation="hard_sigmoid", name="conv_g2")(x)
    x = L.BatchNormalization(center=False, name="bn_nocenter")(x)
    x = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, activation="relu6", name="dw")(x)
    x = L.BatchNormalization(scale=False, name="bn_noscale")(x)
    x = L.SeparableConv2D(12, 3, padding="valid", depth_multiplier=2, activation="sigmoid", name="sep")(x)
    r = L.ReLU(name="relu")(x)
    r6 = L.ReLU(6.0, name="relu6")(x * 8.0)
    a = L.Activation("relu6", name="act_relu6")(x - 0.5)
    h = L.Activation("hard_sigmoid", name="act_hsig")(x)
    s = L.Activation("sigmoid", name="act_sig")(x)
    lin = L.Activation("linear", name="act_lin")(x)
    x = L.Add(name="add3")([r, r6, a])
    x = L.Multiply(name="mul")([x, h])
    x = L.Add(name="add2")([x, s + lin])
    # MobileNetV3's spelling of hard-swish: x * (relu6(x + 3) * (1/6)).
    hs = L.ReLU(6.0, name="hsig_relu6")(x + 3.0) * (1.0 / 6.0)
    x = L.Multiply(name="hswish")([x, hs])
    x = L.Dropout(0.5, name="drop")(x)
    x = (3.0 - x) / 2.0 + 2.0 * x
    mp = L.MaxPooling2D(2, strides=1, padding="same", name="maxpool")(x)
    ap = L.AveragePooling2D(3, strides=2, padding="same", name="avgpool")(mp)
    gap = L.GlobalAveragePooling2D(keepdims=True, name="gap_keep")(ap)
    se = L.Conv2D(12, 1, activation="relu", name="se_conv")(gap)
    x = L.Multiply(name="se_mul")([ap, se])
    gmp = L.GlobalMaxPooling2D(name="gmp")(x)
    flat = L.Flatten(name="flat")(x)
    y = L.Reshape((2, -1), name="reshape")(flat)
    y = L.Dense(5, activation="relu", name="fc_seq")(y)
    y = L.Flatten(name="flat2")(y)
    logits = L.Dense(6, name="fc")(L.Dropout(0.1)(gmp))
    probs = L.Softmax(name="softmax")(logits)
    probs2 = L.Dense(3, activation="softmax", name="fc_softmax")(y)
    return tf.keras.Model(inp, [probs, probs2, logits], name="all_layers")


@pytest.mark.tf
def test_functional_every_layer_type(tf: Any) -> None:
    """Every supported layer type imports and matches Keras layer by layer (random BN stats)."""
    from codesign.graph.keras_import import from_keras

    tf.keras.utils.set_random_seed(0)
    model = _functional_all_layers(tf)
    randomize_stats(model)
    graph = from_keras(model)
    x = batch((15, 15, 4), seed=3)
    assert_outputs_match(model, graph, x, SMALL_TOL)
    assert assert_layers_match(tf, model, graph, x, SMALL_TOL) > 25
    ops = {ly.op for ly in graph.layers}
    assert ops == {
        "input", "affine", "zeropad2d", "conv2d", "batchnorm", "activation", "add", "multiply",
        "pool2d", "globalpool", "flatten", "reshape", "dense", "softmax",
    }
    # Fused activations and separable halves get names derived from the Keras layer.
    assert graph["conv_s2_act"].kind == "relu" and graph["conv_s2_act"].inputs == ["conv_s2"]
    assert graph["sep_dw"].groups == graph["sep_dw"].filters // 2 and graph["sep"].inputs == ["sep_dw"]
    assert graph["dw"].groups == 8 and graph["dw"].filters == 16
    assert graph["hswish"].kind == "hswish"
    assert "drop" not in graph and "act_lin" not in graph


@pytest.mark.tf
def test_sequential_and_nested(tf: Any) -> None:
    """Sequential (with and without Input), nested Sequential/functional and a shared sub-model."""
    from codesign.graph.keras_import import from_keras

    L = tf.keras.layers
    tf.keras.utils.set_random_seed(1)
    seq = tf.keras.Sequential(
        [
            tf.keras.Input((12, 12, 3)),
            L.Conv2D(8, 3, strides=2, padding="same", name="s_conv"),
            L.BatchNormalization(name="s_bn"),
            L.ReLU(6.0, name="s_relu6"),
            L.DepthwiseConv2D(3, padding="same", depth_multiplier=3, use_bias=False, name="s_dw"),
            L.SeparableConv2D(10, 3, strides=2, padding="same", name="s_sep"),
            L.MaxPooling2D(name="s_pool"),
            L.GlobalAveragePooling2D(name="s_gap"),
            L.Dropout(0.2, name="s_drop"),
            L.Dense(4, activation="softmax", name="s_fc"),
        ],
        name="seq",
    )
    randomize_stats(seq)
    graph = from_keras(seq)
    x = batch((12, 12, 3), seed=4)
    assert_outputs_match(seq, graph, x, SMALL_TOL)
    assert assert_layers_match(tf, seq, graph, x, SMALL_TOL) >= 8

    built = tf.keras.Sequential([L.Conv2D(4, 3, name="b_conv"), L.Flatten(name="b_flat")], name="built")
    built.build((None, 6, 6, 2))
    assert_outputs_match(built, from_keras(built), batch((6, 6, 2)), SMALL_TOL)

    # Nested: a Sequential block used twice (shared) and a functional block, inside a functional model.
    block = tf.keras.Sequential(
        [L.Conv2D(6, 3, padding="same", name="blk_conv"), L.BatchNormalization(name="blk_bn"), L.ReLU(name="blk_relu")],
        name="block",
    )
    sub_in = tf.keras.Input((None, None, 6))
    sub_out = L.Add(name="sub_add")([sub_in, L.Conv2D(6, 1, name="sub_conv")(sub_in)])
    sub = tf.keras.Model(sub_in, sub_out, name="sub")
    inp = tf.keras.Input((8, 8, 6), name="outer_in")
    y = block(inp)
    y = sub(y)
    y = block(y)
    out = L.GlobalMaxPooling2D(name="outer_gmp")(y)
    outer = tf.keras.Model(inp, out, name="outer")
    randomize_stats(outer)
    graph = from_keras(outer)
    assert_outputs_match(outer, graph, batch((8, 8, 6), seed=5), SMALL_TOL)
    # Nested layers keep their Keras names; the shared block's second call is scoped by its model.
    assert [ly.name for ly in graph.layers] == [
        "outer_in", "blk_conv", "blk_bn", "blk_relu", "sub_conv", "sub_add",
        "block/blk_conv", "block/blk_bn", "block/blk_relu", "outer_gmp",
    ]


@pytest.mark.tf
def test_open_input_shape_needs_override(tf: Any) -> None:
    """A model with unknown H/W is imported at the size the caller gives."""
    from codesign.graph.keras_import import from_keras

    L = tf.keras.layers
    inp = tf.keras.Input((None, None, 3))
    model = tf.keras.Model(inp, L.GlobalAveragePooling2D()(L.Conv2D(4, 3, strides=2, padding="same")(inp)))
    with pytest.raises(ShapeError, match="input_shape"):
        from_keras(model)
    graph = from_keras(model, input_shape=(9, 7, 3))
    assert graph.input_shape == (9, 7, 3)
    assert_outputs_match(model, graph, batch((9, 7, 3)), SMALL_TOL)


# ---- unsupported layers ----------------------------------------------------------------------


def _unsupported_models(tf: Any) -> dict[str, tuple[Any, str]]:
    """case -> (model, Keras class) of models whose last layer is unsupported."""
    L = tf.keras.layers
    img = tf.keras.Input((8, 8, 3))
    seq = tf.keras.Input((5, 3))
    vol = tf.keras.Input((4, 4, 4, 1))
    return {
        "lstm": (tf.keras.Model(seq, L.LSTM(4, name="lstm_1")(seq)), "LSTM"),
        "dilated": (tf.keras.Model(img, L.Conv2D(4, 3, dilation_rate=2, name="dil")(img)), "Conv2D"),
        "conv3d": (tf.keras.Model(vol, L.Conv3D(2, 3, name="c3d")(vol)), "Conv3D"),
        "leaky": (tf.keras.Model(img, L.ReLU(negative_slope=0.1, name="leaky")(img)), "ReLU"),
        "swish": (tf.keras.Model(img, L.Activation("swish", name="sw")(img)), "Activation"),
        "slice": (tf.keras.Model(img, img[:, 1:]), "SlicingOpLambda"),
        "tf_exp": (tf.keras.Model(img, tf.math.exp(img)), "TFOpLambda"),
        "bn_axis": (tf.keras.Model(img, L.BatchNormalization(axis=1, name="bn1")(img)), "BatchNormalization"),
    }


@pytest.mark.tf
@pytest.mark.parametrize("case", ["lstm", "dilated", "conv3d", "leaky", "swish", "slice", "tf_exp", "bn_axis"])
def test_unsupported_layer_names_layer_and_type(tf: Any, case: str) -> None:
    """The error names the layer and its Keras class (and what is supported)."""
    from codesign.graph.keras_import import from_keras

    model, cls = _unsupported_models(tf)[case]
    layer_name = model.layers[-1].name  # the unsupported layer is always the last one
    with pytest.raises(UnsupportedLayerError) as info:
        from_keras(model)
    msg = str(info.value)
    assert f"'{layer_name}'" in msg and cls in msg
    if case in ("lstm", "conv3d"):
        assert "supported: " in msg and "Conv2D" in msg


# ---- files -----------------------------------------------------------------------------------


def _user_model(tf: Any) -> Any:
    L = tf.keras.layers
    inp = tf.keras.Input((10, 10, 3), name="in")
    x = L.Conv2D(6, 3, padding="same", name="conv")(inp)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(6.0, name="relu")(x)
    x = L.Multiply(name="hsw")([x, L.ReLU(6.0, name="r6")(x + 3.0) * (1.0 / 6.0)])
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(4, activation="softmax", name="fc")(x)
    return tf.keras.Model(inp, out, name="user")


@pytest.mark.tf
@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("which", ["user", "all_layers"])
def test_file_round_trip(tf: Any, tmp_path: Path, suffix: str, which: str) -> None:
    """A saved user model loads through load_keras_file and matches the in-memory model.

    QKeras is imported first when present: it drags in tf_keras, which used to make Keras 2.15's
    .keras loader loop forever (see codesign.graph.keras_files).
    """
    from codesign.graph.keras_import import load_keras_file

    with contextlib.suppress(ImportError):
        import qkeras  # noqa: F401

    model = _user_model(tf) if which == "user" else _functional_all_layers(tf)
    randomize_stats(model)
    path = tmp_path / f"{which}{suffix}"
    model.save(path)
    graph = load_keras_file(path)
    assert graph["hsw" if which == "user" else "hswish"].kind == "hswish"
    assert_outputs_match(model, graph, batch(model.input_shape[1:]), SMALL_TOL)


@pytest.mark.tf
@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_corrupt_and_missing_files(tmp_path: Path, suffix: str) -> None:
    """Random bytes, a missing file and a wrong suffix are ModelFileErrors, not tracebacks."""
    from codesign.graph.keras_import import load_keras_file

    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFileError, match="cannot load"):
        load_keras_file(bad)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_keras_file(tmp_path / f"missing{suffix}")
    with pytest.raises(ModelFileError, match="directory"):
        load_keras_file(tmp_path)
    other = tmp_path / "model.onnx"
    other.write_bytes(b"x")
    with pytest.raises(ModelFileError, match="suffix"):
        load_keras_file(other)


# ---- QKeras ----------------------------------------------------------------------------------


@pytest.mark.tf
def test_qkeras_model_imports_quantized_weights(tf: Any, tmp_path: Path) -> None:
    """QConv2D/QDepthwiseConv2D/QDense/QActivation/QBatchNormalization import the weights QKeras uses."""
    qkeras = pytest.importorskip("qkeras")
    from codesign.graph.keras_import import from_keras, load_keras_file

    q4 = "quantized_bits(4,0,1)"
    inp = tf.keras.Input((8, 8, 3), name="in")
    x = qkeras.QConv2D(4, 3, kernel_quantizer=q4, bias_quantizer=q4, activation="quantized_relu(4)", name="qconv")(inp)
    x = qkeras.QBatchNormalization(name="qbn")(x)
    x = qkeras.QDepthwiseConv2D(3, padding="same", depthwise_quantizer=q4, name="qdw")(x)
    x = qkeras.QActivation("quantized_relu(4,2)", name="qact")(x)
    x = tf.keras.layers.Flatten(name="flat")(x)
    out = qkeras.QDense(3, kernel_quantizer=q4, bias_quantizer=q4, name="qfc")(x)
    model = tf.keras.Model(inp, out, name="qmodel")
    randomize_stats(model)
    graph = from_keras(model)
    for name in ("qconv", "qfc"):
        ly = model.get_layer(name)
        np.testing.assert_array_equal(graph[name].params["kernel"], np.asarray(ly.kernel_quantizer_internal(ly.kernel)))
        assert graph.hints.weights[name].bits == 4
    assert graph["qconv_act"].kind == "relu" and graph["qact"].kind == "relu"
    assert graph["qbn"].op == "batchnorm" and graph["qdw"].is_depthwise
    for suffix in (".h5", ".keras"):
        path = tmp_path / f"q{suffix}"
        model.save(path)
        loaded = load_keras_file(path)
        assert [ly.name for ly in loaded.layers] == [ly.name for ly in graph.layers]
        np.testing.assert_array_equal(loaded["qbn"].params["var"], graph["qbn"].params["var"])


# ---- the board runtime must not need TensorFlow ----------------------------------------------


@pytest.mark.unit
def test_importer_module_imports_without_tensorflow() -> None:
    """codesign.graph (including the importer module) imports with tensorflow blocked."""
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['qkeras'] = None\n"
        "import codesign.graph, codesign.graph.keras_import, codesign.graph.keras_patterns\n"
        "import codesign.graph.keras_files\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- the hard-activation pattern pass (pure IR, no TensorFlow) -------------------------------


def _hswish_chain(extra_reader: str | None) -> Any:
    """Input -> x+3 -> relu6 -> *1/6 -> Multiply(x, .), optionally with an extra reader of one step."""
    from codesign.graph import ir

    def affine(name: str, src: str, scale: float, offset: float) -> ir.Affine:
        params = {"scale": np.array([scale], np.float32), "offset": np.array([offset], np.float32)}
        return ir.Affine(name=name, inputs=[src], params=params)

    layers = [
        ir.Input(name="x", shape=(4, 4, 2)),
        affine("plus3", "x", 1.0, 3.0),
        ir.Activation(name="r6", inputs=["plus3"], kind="relu6"),
        affine("div6", "r6", 1.0 / 6.0, 0.0),
        ir.Multiply(name="hsw", inputs=["x", "div6"]),
    ]
    outputs = ["hsw"]
    if extra_reader is not None:
        layers.append(ir.Activation(name="spy", inputs=[extra_reader], kind="relu"))
        outputs.append("spy")
    graph = ir.Graph("chain", layers, outputs)
    graph.infer_shapes()
    return graph


@pytest.mark.unit
@pytest.mark.parametrize(
    ("extra_reader", "ops"),
    [
        (None, ["input", "hswish"]),
        ("div6", ["input", "hsigmoid", "multiply", "relu"]),  # hsigmoid is read twice: keep the Multiply
        ("r6", ["input", "affine", "relu6", "affine", "multiply", "relu"]),  # relu6 read twice: no fusion
    ],
)
def test_hard_activation_fusion_respects_other_readers(extra_reader: str | None, ops: list[str]) -> None:
    """The chain is fused only where its intermediate tensors have no other reader; values unchanged."""
    from codesign.graph.execute import run_float
    from codesign.graph.keras_patterns import fuse_hard_activations

    graph = _hswish_chain(extra_reader)
    x = batch((4, 4, 2), -6.0, 6.0)
    before = run_float(graph, x, collect=True)
    fused = fuse_hard_activations(graph.copy())
    fused.infer_shapes()
    assert [getattr(ly, "kind", ly.op) for ly in fused.layers] == ops
    after = run_float(fused, x, collect=True)
    for name in graph.outputs:
        np.testing.assert_allclose(after[name], before[name], rtol=1e-6, atol=1e-6)
