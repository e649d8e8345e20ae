"""The Keras importer's converters, one per Keras/QKeras layer class, and their table.

Each converter appends the IR of one Keras layer call through the builder
(:class:`~codesign.graph.keras_build.Builder`) and returns the name of the IR tensor that stands
for the layer's output (see :mod:`codesign.graph.keras_import` for the naming rules). :data:`LAYER_CONVERTERS` maps
the exact Keras class name to its converter; the importer adds the tf-op converter
(:mod:`codesign.graph.keras_tfops`) and dispatches on it. No TensorFlow import here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from codesign.graph import ir
from codesign.graph.keras_build import (
    Builder,
    Call,
    Converter,
    affine_layer,
    check_affine_width,
    emit_activation,
    explicit_padding,
    f32,
    fused_activation,
    layer_bias,
    layer_kernel,
    require_channels_last,
    require_no_dilation,
    unsupported,
)

# ---- converters: one per Keras layer class ---------------------------------------------------


def _identity(b: Builder, call: Call) -> str:
    """Inference-time identity (Dropout, ...): consumers read the producer directly."""
    return call.inputs[0]


def _conv2d(b: Builder, call: Call) -> str:
    """Conv2D/QConv2D (groups kept; a kernel_quantizer's quantized kernel and grid)."""
    ly = call.layer
    require_channels_last(call)
    require_no_dilation(call)
    kernel = layer_kernel(b, call, call.name, "kernel")
    pad = explicit_padding(call, ly.padding, b.shape(call.inputs[0]), ly.kernel_size, ly.strides)
    params = {"kernel": kernel}
    if ly.use_bias:
        params["bias"] = layer_bias(call)
    conv = ir.Conv2D(
        name=call.name, inputs=list(call.inputs), params=params, filters=int(kernel.shape[3]),
        kernel=tuple(ly.kernel_size), strides=tuple(ly.strides), padding=pad,
        groups=int(getattr(ly, "groups", 1)), use_bias=bool(ly.use_bias),
    )
    return fused_activation(b, call, b.add(conv))


def _depthwise_ir(
    call: Call, name: str, src: str, in_shape: ir.Shape, kernel: np.ndarray, bias: np.ndarray | None
) -> ir.Conv2D:
    """A depthwise IR conv from a Keras ``[kh, kw, cin, m]`` kernel (shared by Depthwise/Separable)."""
    ly = call.layer
    kh, kw, cin, mult = kernel.shape
    # Keras/TF depthwise output channel c*m + j comes from input channel c: a row-major flatten.
    params = {"kernel": kernel.reshape(kh, kw, 1, cin * mult)}
    if bias is not None:
        params["bias"] = bias
    pad = explicit_padding(call, ly.padding, in_shape, ly.kernel_size, ly.strides)
    return ir.Conv2D(
        name=name, inputs=[src], params=params, filters=cin * mult, kernel=tuple(ly.kernel_size),
        strides=tuple(ly.strides), padding=pad, groups=cin, use_bias=bias is not None,
    )


def _depthwise_conv2d(b: Builder, call: Call) -> str:
    """DepthwiseConv2D/QDepthwiseConv2D as a grouped conv with groups == cin."""
    ly = call.layer
    require_channels_last(call)
    require_no_dilation(call)
    bias = layer_bias(call) if ly.use_bias else None
    src = call.inputs[0]
    kernel = layer_kernel(b, call, call.name, "depthwise_kernel", depthwise=True)
    conv = _depthwise_ir(call, call.name, src, b.shape(src), kernel, bias)
    return fused_activation(b, call, b.add(conv))


def _separable_conv2d(b: Builder, call: Call) -> str:
    """SeparableConv2D = depthwise (``<name>_dw``, no bias) then pointwise (``<name>``, bias)."""
    ly = call.layer
    require_channels_last(call)
    require_no_dilation(call)
    src = call.inputs[0]
    dw_name = b.unique(f"{call.name}_dw")
    dw_kernel = layer_kernel(b, call, dw_name, "depthwise_kernel", depthwise=True)
    dw = b.add(_depthwise_ir(call, dw_name, src, b.shape(src), dw_kernel, None))
    pointwise = layer_kernel(b, call, call.name, "pointwise_kernel")
    params = {"kernel": pointwise}
    if ly.use_bias:
        params["bias"] = layer_bias(call)
    pw = ir.Conv2D(
        name=call.name, inputs=[dw], params=params, filters=int(pointwise.shape[3]),
        kernel=(1, 1), strides=(1, 1), padding=(0, 0, 0, 0), groups=1, use_bias=bool(ly.use_bias),
    )
    return fused_activation(b, call, b.add(pw))


def _dense(b: Builder, call: Call) -> str:
    """Dense/QDense (a kernel_quantizer's quantized kernel and grid)."""
    ly = call.layer
    params = {"kernel": layer_kernel(b, call, call.name, "kernel")}
    if ly.use_bias:
        params["bias"] = layer_bias(call)
    dense = ir.Dense(
        name=call.name, inputs=list(call.inputs), params=params, units=int(ly.units), use_bias=bool(ly.use_bias)
    )
    return fused_activation(b, call, b.add(dense))


def _batchnorm(b: Builder, call: Call) -> str:
    """BatchNormalization on the channel axis with inference (moving) statistics."""
    ly = call.layer
    rank = len(b.shape(call.inputs[0])) + 1  # Keras axes count the batch axis
    axes = [a % rank for a in np.atleast_1d(ly.axis).tolist()]
    if axes != [rank - 1]:
        raise unsupported(call, f"normalises axis {ly.axis}; only the last (channel) axis is supported")
    mean = _bn_param(ly, "moving_mean", "mean")
    # center=False / scale=False mean beta=0 / gamma=1: fold them into explicit defaults.
    params = {
        "gamma": _bn_param(ly, "gamma", "gamma") if ly.scale else np.ones_like(mean),
        "beta": _bn_param(ly, "beta", "beta") if ly.center else np.zeros_like(mean),
        "mean": mean,
        "var": _bn_param(ly, "moving_variance", "variance"),
    }
    return b.add(ir.BatchNorm(name=call.name, inputs=list(call.inputs), params=params, epsilon=float(ly.epsilon)))


def _bn_param(layer: Any, attr: str, quantizer: str) -> np.ndarray:
    """A BN statistic as inference uses it: QBatchNormalization quantizes each (po2 by default)."""
    value = f32(getattr(layer, attr))
    if not getattr(layer, f"{quantizer}_quantizer", None):
        return value
    return f32(getattr(layer, f"{quantizer}_quantizer_internal")(value))


def _relu(b: Builder, call: Call) -> str:
    """ReLU layer: plain relu or relu6; leaky/thresholded/other caps have no IR op."""
    ly = call.layer
    slope = float(ly.negative_slope)
    threshold = float(ly.threshold)
    max_value = None if ly.max_value is None else float(ly.max_value)
    if slope != 0.0 or threshold != 0.0 or max_value not in (None, 6.0):
        raise unsupported(
            call,
            f"has max_value={max_value}, negative_slope={slope}, threshold={threshold}; "
            "only ReLU() and ReLU(6) are supported",
        )
    kind = "relu" if max_value is None else "relu6"
    return b.add(ir.Activation(name=call.name, inputs=list(call.inputs), kind=kind))


def _activation(b: Builder, call: Call) -> str:
    """Keras Activation layer by its serialised name."""
    return emit_activation(b, call, call.layer.get_config().get("activation"), call.inputs[0], call.name)


def _qactivation(b: Builder, call: Call) -> str:
    """QKeras QActivation: its float activation, and its quantizer's grid on the output tensor."""
    return emit_activation(b, call, call.layer.activation, call.inputs[0], call.name, call.layer.quantizer)


def _softmax(b: Builder, call: Call) -> str:
    """Softmax over the last axis only (the IR op has no axis)."""
    rank = len(b.shape(call.inputs[0])) + 1
    axes = [a % rank for a in np.atleast_1d(call.layer.axis).tolist()]
    if axes != [rank - 1]:
        raise unsupported(call, f"uses axis={call.layer.axis}; only the last axis is supported")
    return b.add(ir.Softmax(name=call.name, inputs=list(call.inputs)))


def _binary_chain(cls: type[ir.Layer]) -> Converter:
    """Add/Multiply: the IR op is binary, so n-ary Keras merges become ``<name>_part<k>`` chains."""

    def convert(b: Builder, call: Call) -> str:
        """Left-fold the merge's inputs; the last step carries the Keras name."""
        acc = call.inputs[0]
        rest = call.inputs[1:]
        for k, other in enumerate(rest, start=1):
            name = call.name if k == len(rest) else b.unique(f"{call.name}_part{k}")
            acc = b.add(cls(name=name, inputs=[acc, other]))
        return acc

    return convert


def _pool2d(kind: str) -> Converter:
    """Max/average pooling converter with 'same' turned into explicit padding."""
    def convert(b: Builder, call: Call) -> str:
        """One pooling layer of this kind."""
        ly = call.layer
        require_channels_last(call)
        pad = explicit_padding(call, ly.padding, b.shape(call.inputs[0]), ly.pool_size, ly.strides)
        pool = ir.Pool2D(
            name=call.name, inputs=list(call.inputs), kind=kind, pool=tuple(ly.pool_size),
            strides=tuple(ly.strides), padding=pad,
        )
        return b.add(pool)

    return convert


def _global_pool(kind: str) -> Converter:
    """Global average/max pooling converter (keepdims kept)."""
    def convert(b: Builder, call: Call) -> str:
        """One global pooling layer of this kind."""
        require_channels_last(call)
        keepdims = bool(getattr(call.layer, "keepdims", False))
        return b.add(ir.GlobalPool(name=call.name, inputs=list(call.inputs), kind=kind, keepdims=keepdims))

    return convert


def _flatten(b: Builder, call: Call) -> str:
    """Flatten (row-major H, W, C as Keras)."""
    require_channels_last(call)
    return b.add(ir.Flatten(name=call.name, inputs=list(call.inputs)))


def _reshape(b: Builder, call: Call) -> str:
    """Reshape to the Keras target shape (no batch axis)."""
    target = tuple(int(d) for d in call.layer.target_shape)
    return b.add(ir.Reshape(name=call.name, inputs=list(call.inputs), target=target))


def _margins(call: Call, attr: str) -> tuple[int, int, int, int]:
    """A channels-last layer's ``((top, bottom), (left, right))`` attribute as (top, bottom, left, right)."""
    require_channels_last(call)
    (top, bottom), (left, right) = getattr(call.layer, attr)
    return int(top), int(bottom), int(left), int(right)


def _zero_padding(b: Builder, call: Call) -> str:
    """ZeroPadding2D as explicit (top, bottom, left, right)."""
    return b.add(ir.ZeroPad2D(name=call.name, inputs=list(call.inputs), padding=_margins(call, "padding")))


def _rescaling(b: Builder, call: Call) -> str:
    """Rescaling (scalar or per-channel) as an Affine."""
    ly = call.layer
    src = call.inputs[0]
    layer = affine_layer(call.name, src, f32(ly.scale), f32(ly.offset), role="rescaling")
    check_affine_width(call, layer, b.shape(src)[-1])
    return b.add(layer)


def _normalization(b: Builder, call: Call) -> str:
    """Keras Normalization ``(x - mean) / max(sqrt(var), eps)`` (or its inverse) as a folded Affine."""
    ly = call.layer
    src = call.inputs[0]
    channels = b.shape(src)[-1]
    axis = [a % (len(b.shape(src)) + 1) for a in np.atleast_1d(ly.axis).tolist()] if ly.axis is not None else []
    if axis not in ([], [len(b.shape(src))]):
        raise unsupported(call, f"normalises axis {ly.axis}; only the last (channel) axis is supported")
    mean = f32(ly.mean).reshape(-1)
    std = np.maximum(np.sqrt(f32(ly.variance).reshape(-1)), np.float32(1e-7))  # Keras' backend.epsilon()
    if mean.size not in (1, channels):
        raise unsupported(call, f"has {mean.size} means for {channels} channels")
    if getattr(ly, "invert", False):
        scale, offset = std, mean
    else:
        scale, offset = 1.0 / std, -mean / std
    layer = affine_layer(call.name, src, scale, offset, role="normalization")
    return b.add(layer)


def _cropping(b: Builder, call: Call) -> str:
    """Cropping2D as explicit (top, bottom, left, right)."""
    return b.add(ir.Crop2D(name=call.name, inputs=list(call.inputs), cropping=_margins(call, "cropping")))


def _concatenate(b: Builder, call: Call) -> str:
    """Concatenate on the channel (last) axis; other axes have no IR op."""
    rank = len(b.shape(call.inputs[0])) + 1
    if int(call.layer.axis) % rank != rank - 1:
        raise unsupported(call, f"concatenates on axis {call.layer.axis}; only the last (channel) axis is supported")
    return b.add(ir.Concat(name=call.name, inputs=list(call.inputs)))


# ---- the table: Keras class name -> converter ------------------------------------------------

LAYER_CONVERTERS: dict[str, Converter] = {
    "Conv2D": _conv2d,
    "QConv2D": _conv2d,
    "DepthwiseConv2D": _depthwise_conv2d,
    "QDepthwiseConv2D": _depthwise_conv2d,
    "SeparableConv2D": _separable_conv2d,
    "QSeparableConv2D": _separable_conv2d,
    "Dense": _dense,
    "QDense": _dense,
    "BatchNormalization": _batchnorm,
    "QBatchNormalization": _batchnorm,
    "ReLU": _relu,
    "Activation": _activation,
    "QActivation": _qactivation,
    "Softmax": _softmax,
    "Add": _binary_chain(ir.Add),
    "Multiply": _binary_chain(ir.Multiply),
    "MaxPooling2D": _pool2d("max"),
    "AveragePooling2D": _pool2d("avg"),
    "GlobalAveragePooling2D": _global_pool("avg"),
    "GlobalMaxPooling2D": _global_pool("max"),
    "Flatten": _flatten,
    "Reshape": _reshape,
    "ZeroPadding2D": _zero_padding,
    "Cropping2D": _cropping,
    "Concatenate": _concatenate,
    "Rescaling": _rescaling,
    "Normalization": _normalization,
    "Dropout": _identity,
    "SpatialDropout2D": _identity,
    "GaussianNoise": _identity,
    "GaussianDropout": _identity,
    "AlphaDropout": _identity,
    "InputLayer": _identity,
}


__all__ = ["LAYER_CONVERTERS"]
