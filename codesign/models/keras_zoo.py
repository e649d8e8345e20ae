"""Keras builders for the model zoo (off-board only: this module imports TensorFlow).

ImageNet-shape models (random init is enough for hardware work):
``resnet18`` (BasicBlock, He et al. 2016), ``resnet50``, ``mobilenet_v2``,
``mobilenet_v3_small`` and ``mobilenet_v3_large`` (the last four from ``keras.applications``
with ``weights=None``).

Small members of the same families for 32x32x1 inputs (Fashion-MNIST/MNIST padded 28 -> 32),
trained by ``python -m codesign.models.train``: ``resnet_s``, ``mobilenet_v2_s`` and
``mobilenet_v3_s``. Every convolution of the small models is followed by a BatchNorm and has
no bias, so data distillation can match per-BN batch statistics. The only exception are the
two 1x1 convs inside squeeze-excite blocks, which act on a 1x1 pooled tensor and carry a bias
(as in ``keras.applications``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

layers = tf.keras.layers
Model: Any = tf.keras.Model  # TF ships no type hints; annotations below are documentation

BN_EPSILON = 1e-3  # Keras default, also the IR BatchNorm default
BN_MOMENTUM = 0.9  # running stats settle within a few hundred steps of short training


# ---------------------------------------------------------------------------------------
# shared blocks
# ---------------------------------------------------------------------------------------
def conv_bn(x: Any, filters: int, kernel: int, strides: int = 1, name: str = "",
            activation: str | None = "relu") -> Any:
    """Conv (no bias, 'same' padding) + BatchNorm + optional activation."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return _activate(x, activation, name)


def dw_bn(x: Any, kernel: int, strides: int = 1, name: str = "", activation: str | None = "relu") -> Any:
    """Depthwise conv (no bias, 'same' padding) + BatchNorm + optional activation."""
    x = layers.DepthwiseConv2D(kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_dwbn")(x)
    return _activate(x, activation, f"{name}_dw")


def hard_sigmoid(x: Any) -> Any:
    """relu6(x + 3) / 6, built as keras.applications.MobileNetV3 does."""
    return layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)


def hard_swish(x: Any) -> Any:
    """x * hard_sigmoid(x), built as keras.applications.MobileNetV3 does."""
    return layers.Multiply()([x, hard_sigmoid(x)])


def _activate(x: Any, activation: str | None, name: str) -> Any:
    if activation is None:
        return x
    if activation == "relu":
        return layers.ReLU(name=f"{name}_relu")(x)
    if activation == "relu6":
        return layers.ReLU(6.0, name=f"{name}_relu6")(x)
    if activation == "hswish":
        return hard_swish(x)
    raise ValueError(f"unknown activation {activation!r}")


def basic_block(x: Any, filters: int, strides: int, name: str) -> Any:
    """ResNet BasicBlock: two 3x3 conv-BN, 1x1 conv-BN projection when the shape changes."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = conv_bn(x, filters, 1, strides, name=f"{name}_proj", activation=None)
    y = conv_bn(x, filters, 3, strides, name=f"{name}_a")
    y = conv_bn(y, filters, 3, 1, name=f"{name}_b", activation=None)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


def inverted_residual(x: Any, expansion: int, filters: int, strides: int, kernel: int = 3,
                      activation: str = "relu6", se: bool = False, name: str = "") -> Any:
    """MobileNetV2/V3 block: 1x1 expand, depthwise, [squeeze-excite], 1x1 project (+ residual)."""
    cin = x.shape[-1]
    y = x
    if expansion != cin:
        y = conv_bn(y, expansion, 1, name=f"{name}_expand", activation=activation)
    y = dw_bn(y, kernel, strides, name=name, activation=activation)
    if se:
        y = squeeze_excite(y, max(8, _make_divisible(expansion // 4)), name=f"{name}_se")
    y = conv_bn(y, filters, 1, name=f"{name}_project", activation=None)
    if strides == 1 and cin == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def squeeze_excite(x: Any, squeeze: int, name: str) -> Any:
    """GAP(keepdims) -> 1x1 conv ReLU -> 1x1 conv -> hard-sigmoid -> Multiply (as MobileNetV3)."""
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = layers.Conv2D(squeeze, 1, name=f"{name}_reduce")(s)
    s = layers.ReLU(name=f"{name}_relu")(s)
    s = layers.Conv2D(x.shape[-1], 1, name=f"{name}_expand")(s)
    s = hard_sigmoid(s)
    return layers.Multiply(name=f"{name}_mul")([x, s])


def _make_divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return int(new + divisor) if new < 0.9 * v else int(new)


def _head(x: Any, classes: int) -> Any:
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return layers.Dense(classes, activation="softmax", name="predictions")(x)


# ---------------------------------------------------------------------------------------
# ImageNet-shape models
# ---------------------------------------------------------------------------------------
def resnet18(input_shape: tuple[int, int, int] = (224, 224, 3), classes: int = 1000) -> Model:
    """ResNet-18 (BasicBlock, stages [2, 2, 2, 2], widths 64..512), He et al. 2016."""
    inp = layers.Input(input_shape, name="input")
    x = layers.ZeroPadding2D(3, name="stem_pad")(inp)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(epsilon=1e-5, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool")(x)
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            strides = 2 if stage > 0 and block == 0 else 1
            x = basic_block(x, filters, strides, name=f"s{stage + 1}b{block + 1}")
    return Model(inp, _head(x, classes), name="resnet18")


def resnet50(input_shape: tuple[int, int, int] = (224, 224, 3), classes: int = 1000) -> Model:
    """ResNet-50 from keras.applications, random init."""
    return tf.keras.applications.ResNet50(weights=None, input_shape=input_shape, classes=classes)


def mobilenet_v2(input_shape: tuple[int, int, int] = (224, 224, 3), classes: int = 1000) -> Model:
    """MobileNetV2 (alpha 1.0) from keras.applications, random init."""
    return tf.keras.applications.MobileNetV2(weights=None, input_shape=input_shape, classes=classes)


def mobilenet_v3_small(input_shape: tuple[int, int, int] = (224, 224, 3), classes: int = 1000) -> Model:
    """MobileNetV3-Small from keras.applications, random init (includes its Rescaling layer)."""
    return tf.keras.applications.MobileNetV3Small(weights=None, input_shape=input_shape, classes=classes)


def mobilenet_v3_large(input_shape: tuple[int, int, int] = (224, 224, 3), classes: int = 1000) -> Model:
    """MobileNetV3-Large from keras.applications, random init (includes its Rescaling layer)."""
    return tf.keras.applications.MobileNetV3Large(weights=None, input_shape=input_shape, classes=classes)


# ---------------------------------------------------------------------------------------
# small models for 32x32x1
# ---------------------------------------------------------------------------------------
SMALL_INPUT = (32, 32, 1)


def resnet_s(input_shape: tuple[int, int, int] = SMALL_INPUT, classes: int = 10,
             widths: tuple[int, ...] = (16, 32, 64)) -> Model:
    """ResNet-8 style: 3x3 stem + one BasicBlock per stage (strides 1, 2, 2), GAP, Dense."""
    inp = layers.Input(input_shape, name="input")
    x = conv_bn(inp, widths[0], 3, name="stem")
    for stage, filters in enumerate(widths):
        x = basic_block(x, filters, 1 if stage == 0 else 2, name=f"s{stage + 1}")
    return Model(inp, _head(x, classes), name="resnet_s")


def cifar_resnet8(input_shape: tuple[int, int, int] = (32, 32, 3), classes: int = 10,
                  widths: tuple[int, int, int] = (16, 32, 64)) -> Model:
    """CIFAR-10 ResNet-8 with the head of externally trained reference CNNs: AveragePooling2D + Flatten + Dense.

    Not in the zoo (no weights): the export bench and tests build it to check that a head the
    zoo does not use (a strided average pool instead of global pooling) imports and exports.
    """
    inp = layers.Input(input_shape, name="input")
    x = conv_bn(inp, widths[0], 3, name="stem")
    for stage, filters in enumerate(widths):
        x = basic_block(x, filters, 1 if stage == 0 else 2, name=f"s{stage + 1}")
    x = layers.AveragePooling2D(input_shape[0] // 4, name="head_pool")(x)  # the whole 1/4-size map
    x = layers.Flatten(name="flatten")(x)
    out = layers.Dense(classes, activation="softmax", name="fc")(x)
    return Model(inp, out, name="resnet8_cifar")


# (expansion, out channels, stride)
MOBILENET_V2_S_BLOCKS = (
    (16, 16, 1),
    (64, 24, 2),
    (96, 24, 1),
    (96, 32, 2),
    (128, 32, 1),
    (128, 64, 2),
    (256, 64, 1),
)


def mobilenet_v2_s(input_shape: tuple[int, int, int] = SMALL_INPUT, classes: int = 10) -> Model:
    """Small MobileNetV2: 3x3 stem, inverted residuals (ReLU6, linear bottleneck), 1x1 head conv."""
    inp = layers.Input(input_shape, name="input")
    x = conv_bn(inp, 16, 3, name="stem", activation="relu6")
    for i, (expansion, filters, strides) in enumerate(MOBILENET_V2_S_BLOCKS):
        x = inverted_residual(x, expansion, filters, strides, name=f"b{i + 1}")
    x = conv_bn(x, 256, 1, name="head", activation="relu6")
    return Model(inp, _head(x, classes), name="mobilenetv2_s")


# (kernel, expansion, out channels, squeeze-excite, activation, stride)
MOBILENET_V3_S_BLOCKS = (
    (3, 16, 16, True, "relu", 2),
    (3, 64, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2),
    (5, 160, 40, True, "hswish", 1),
    (5, 160, 48, True, "hswish", 1),
)


def mobilenet_v3_s(input_shape: tuple[int, int, int] = SMALL_INPUT, classes: int = 10) -> Model:
    """Small MobileNetV3: h-swish stem, inverted residuals with squeeze-excite, h-swish head conv."""
    inp = layers.Input(input_shape, name="input")
    x = conv_bn(inp, 16, 3, name="stem", activation="hswish")
    for i, (kernel, expansion, filters, se, act, strides) in enumerate(MOBILENET_V3_S_BLOCKS):
        x = inverted_residual(x, expansion, filters, strides, kernel=kernel, activation=act, se=se,
                              name=f"b{i + 1}")
    x = conv_bn(x, 256, 1, name="head", activation="hswish")
    return Model(inp, _head(x, classes), name="mobilenetv3_s")


BUILDERS: dict[str, Callable[..., Model]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenetv2": mobilenet_v2,
    "mobilenetv3_small": mobilenet_v3_small,
    "mobilenetv3_large": mobilenet_v3_large,
    "resnet_s": resnet_s,
    "mobilenetv2_s": mobilenet_v2_s,
    "mobilenetv3_s": mobilenet_v3_s,
}


def build(name: str, seed: int = 0) -> Model:
    """Build zoo model ``name`` with a seeded random init."""
    tf.keras.utils.set_random_seed(seed)
    return BUILDERS[name]()
