"""Import Keras / QKeras models (functional, Sequential, nested) into the codesign IR.

TensorFlow is imported lazily inside the functions here, so ``codesign.graph`` stays importable
on the board, where there is no TensorFlow.

The importer walks the Keras graph node by node (depth order, as Keras itself runs it) and
asks one small converter per Keras layer class to append IR layers. IR layer names equal the
Keras layer names, because BN statistics and BitConfigs are matched by name; layers the
importer has to synthesise (a fused ``activation=``, the depthwise half of a SeparableConv2D)
get names derived from the Keras one (``<name>_act``, ``<name>_dw``). Layers that are the
identity at inference (Dropout, InputLayer of a nested model, linear activations) produce no
IR layer: their consumers read the producer instead.

After the walk, every IR tensor's shape is checked against the Keras tensor it stands for, and
:func:`~codesign.graph.keras_patterns.fuse_hard_activations` folds MobileNetV3's decomposed
hard-sigmoid/hard-swish back into single activations. File loading lives in ``keras_files``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import ShapeError, UnsupportedLayerError
from codesign.graph import ir
from codesign.graph.keras_files import load_keras_model
from codesign.graph.keras_patterns import fuse_hard_activations
from codesign.graph.quant_hints import QuantHints
from codesign.tf_quiet import silenced

# ---- builder: the IR under construction ------------------------------------------------------


@dataclass
class _Builder:
    """Accumulates IR layers, keeps names unique and tracks shapes as layers are added."""

    layers: list[ir.Layer] = field(default_factory=list)
    shapes: dict[str, ir.Shape] = field(default_factory=dict)
    # (IR tensor name, Keras shape without batch, Keras layer name) for the final shape check.
    expected: list[tuple[str, tuple[int | None, ...], str]] = field(default_factory=list)
    hints: QuantHints = field(default_factory=QuantHints)  # QKeras grids found on the way

    def unique(self, name: str, scope: str = "") -> str:
        """``name`` if unused, else a scoped or numbered variant (nested models, shared layers)."""
        if name not in self.shapes:
            return name
        if scope and f"{scope}/{name}" not in self.shapes:
            return f"{scope}/{name}"
        k = 2
        while f"{name}/call{k}" in self.shapes:
            k += 1
        return f"{name}/call{k}"

    def add(self, layer: ir.Layer) -> str:
        """Append ``layer``, infer its shape now (later converters need it) and return its name."""
        if layer.name in self.shapes:
            raise RuntimeError(f"importer bug: IR layer name {layer.name!r} used twice")
        layer.output_shape = tuple(int(d) for d in layer.infer_shape([self.shapes[i] for i in layer.inputs]))
        self.layers.append(layer)
        self.shapes[layer.name] = layer.output_shape
        return layer.name

    def shape(self, name: str) -> ir.Shape:
        """Output shape (no batch axis) of IR tensor ``name``."""
        return self.shapes[name]


@dataclass
class _Call:
    """One call of a Keras layer: the layer, the IR names of its tensor inputs, its Keras node."""

    layer: Any
    inputs: list[str]
    name: str
    node: Any = None


Converter = Callable[[_Builder, _Call], str]


# ---- small helpers ---------------------------------------------------------------------------


def _f32(a: Any) -> np.ndarray:
    """A Keras weight / variable / constant as a float32 NumPy array."""
    if hasattr(a, "numpy"):
        a = a.numpy()
    return np.array(a, dtype=np.float32)


def _unsupported(call: _Call, why: str) -> UnsupportedLayerError:
    """An error naming the layer and its Keras class, with the reason."""
    return UnsupportedLayerError(f"layer {call.layer.name!r} of type {type(call.layer).__name__} {why}.")


def _require_channels_last(call: _Call) -> None:
    """Reject NCHW layers: the IR is channels-last only."""
    fmt = getattr(call.layer, "data_format", "channels_last")
    if fmt != "channels_last":
        raise _unsupported(call, f"uses data_format={fmt!r}; only channels_last is supported")


def _explicit_padding(
    call: _Call, mode: str, in_shape: ir.Shape, kernel: Sequence[int], strides: Sequence[int]
) -> tuple[int, int, int, int]:
    """Keras 'valid'/'same' padding as explicit (top, bottom, left, right)."""
    if mode == "valid":
        return (0, 0, 0, 0)
    if mode == "same":
        top, bottom = ir.same_padding(in_shape[0], kernel[0], strides[0])
        left, right = ir.same_padding(in_shape[1], kernel[1], strides[1])
        return (top, bottom, left, right)
    raise _unsupported(call, f"uses padding={mode!r}; only 'valid' and 'same' are supported")


def _require_no_dilation(call: _Call) -> None:
    """Reject dilated windows: neither the IR nor the accelerator's img2col has them."""
    rate = tuple(getattr(call.layer, "dilation_rate", (1, 1)))
    if any(r != 1 for r in rate):
        raise _unsupported(call, f"uses dilation_rate={rate}; only dilation 1 is supported")


# ---- activations -----------------------------------------------------------------------------

# Keras activation names -> IR Activation kind. "linear" is the identity.
_ACTIVATION_KINDS = {
    "relu": "relu",
    "relu6": "relu6",
    "sigmoid": "sigmoid",
    "hard_swish": "hswish",
    "hard_silu": "hswish",
    "hswish": "hswish",
}


def _activation_name(spec: Any) -> str:
    """Normalise a serialised Keras/QKeras activation to a lowercase name (QKeras args dropped)."""
    if spec is None:
        return "linear"
    if isinstance(spec, dict):  # a serialised activation object
        spec = spec.get("config", {}).get("name") or spec.get("class_name", "")
    if not isinstance(spec, str):
        spec = getattr(spec, "__name__", None) or type(spec).__name__
    return spec.split("(")[0].strip().lower()


def _emit_activation(b: _Builder, call: _Call, spec: Any, src: str, name: str, quantizer: Any = None) -> str:
    """Append the IR for activation ``spec`` applied to ``src``; returns the output tensor name.

    ``quantizer`` is the QKeras quantizer object behind ``spec`` (when there is one): its grid
    is recorded for the tensor it quantizes (see :mod:`codesign.graph.qkeras_quantizers`).
    """
    act = _activation_name(spec)
    grid = _tensor_grid(call, quantizer) if act.startswith("quantized") else None
    if act in ("linear", "quantized_bits"):
        # QKeras quantized_bits on activations is a fake-quantizer: identity in float, a grid in the IR.
        if grid is not None:
            b.hints.tensors[src] = grid
        return src
    if act in ("quantized_relu", "relu"):
        # A QKeras quantized_relu is a relu in float whose output lies on the quantizer's grid.
        out = b.add(ir.Activation(name=name, inputs=[src], kind="relu"))
        if grid is not None:
            b.hints.tensors[out] = grid
        return out
    if act in _ACTIVATION_KINDS:
        return b.add(ir.Activation(name=name, inputs=[src], kind=_ACTIVATION_KINDS[act]))
    if act == "softmax":
        return b.add(ir.Softmax(name=name, inputs=[src]))
    if act == "hard_sigmoid":
        # Keras 2's hard_sigmoid is clip(0.2x + 0.5, 0, 1) = relu6(1.2x + 3) / 6 = hsigmoid(1.2x).
        pre = b.add(_affine(b.unique(f"{name}_prescale"), src, scale=1.2, offset=0.0))
        return b.add(ir.Activation(name=name, inputs=[pre], kind="hsigmoid"))
    supported = sorted({*_ACTIVATION_KINDS, "linear", "softmax", "hard_sigmoid", "quantized_relu"})
    raise _unsupported(call, f"uses activation {act!r}, which is not supported; supported: {', '.join(supported)}")


def _fused_activation(b: _Builder, call: _Call, src: str) -> str:
    """Emit a layer's fused ``activation=`` as a separate ``<name>_act`` layer."""
    spec = call.layer.get_config().get("activation")
    return _emit_activation(b, call, spec, src, b.unique(f"{call.name}_act"), getattr(call.layer, "activation", None))


def _tensor_grid(call: _Call, quantizer: Any) -> Any:
    """The grid of an activation quantizer object (None when it is not a QKeras quantizer)."""
    if quantizer is None:
        return None
    from codesign.graph.qkeras_quantizers import tensor_grid

    return tensor_grid(call.layer.name, quantizer)


def _kernel(b: _Builder, call: _Call, ir_name: str, attr: str, depthwise: bool = False) -> np.ndarray:
    """Layer kernel ``attr``; with a QKeras quantizer, the quantized kernel (its grid is recorded)."""
    kernel = _f32(getattr(call.layer, attr))
    prefix = attr.removesuffix("_kernel") if attr != "kernel" else "kernel"
    quantizer = getattr(call.layer, f"{prefix}_quantizer_internal", None)
    if quantizer is None:
        return kernel
    from codesign.graph.qkeras_quantizers import weight_grid

    q, grid = weight_grid(call.layer.name, quantizer, kernel, depthwise)
    b.hints.weights[ir_name] = grid
    return q


def _bias(call: _Call) -> np.ndarray:
    """Layer bias, quantized by its QKeras bias quantizer when it has one (QKeras adds that one)."""
    bias = _f32(call.layer.bias)
    quantizer = getattr(call.layer, "bias_quantizer_internal", None)
    return bias if quantizer is None else _f32(quantizer(bias))


def _affine(name: str, src: str, scale: Any, offset: Any, role: str = "") -> ir.Affine:
    """An Affine layer from scalar or per-channel scale/offset."""
    params = {
        "scale": np.atleast_1d(np.asarray(scale, dtype=np.float32)).ravel(),
        "offset": np.atleast_1d(np.asarray(offset, dtype=np.float32)).ravel(),
    }
    return ir.Affine(name=name, inputs=[src], params=params, role=role)


# ---- converters: one per Keras layer class ---------------------------------------------------


def _identity(b: _Builder, call: _Call) -> str:
    """Inference-time identity (Dropout, ...): consumers read the producer directly."""
    return call.inputs[0]


def _conv2d(b: _Builder, call: _Call) -> str:
    """Conv2D/QConv2D (groups kept; a kernel_quantizer's quantized kernel and grid)."""
    ly = call.layer
    _require_channels_last(call)
    _require_no_dilation(call)
    kernel = _kernel(b, call, call.name, "kernel")
    pad = _explicit_padding(call, ly.padding, b.shape(call.inputs[0]), ly.kernel_size, ly.strides)
    params = {"kernel": kernel}
    if ly.use_bias:
        params["bias"] = _bias(call)
    conv = ir.Conv2D(
        name=call.name, inputs=list(call.inputs), params=params, filters=int(kernel.shape[3]),
        kernel=tuple(ly.kernel_size), strides=tuple(ly.strides), padding=pad,
        groups=int(getattr(ly, "groups", 1)), use_bias=bool(ly.use_bias),
    )
    return _fused_activation(b, call, b.add(conv))


def _depthwise_ir(
    call: _Call, name: str, src: str, in_shape: ir.Shape, kernel: np.ndarray, bias: np.ndarray | None
) -> ir.Conv2D:
    """A depthwise IR conv from a Keras ``[kh, kw, cin, m]`` kernel (shared by Depthwise/Separable)."""
    ly = call.layer
    kh, kw, cin, mult = kernel.shape
    # Keras/TF depthwise output channel c*m + j comes from input channel c: a row-major flatten.
    params = {"kernel": kernel.reshape(kh, kw, 1, cin * mult)}
    if bias is not None:
        params["bias"] = bias
    pad = _explicit_padding(call, ly.padding, in_shape, ly.kernel_size, ly.strides)
    return ir.Conv2D(
        name=name, inputs=[src], params=params, filters=cin * mult, kernel=tuple(ly.kernel_size),
        strides=tuple(ly.strides), padding=pad, groups=cin, use_bias=bias is not None,
    )


def _depthwise_conv2d(b: _Builder, call: _Call) -> str:
    """DepthwiseConv2D/QDepthwiseConv2D as a grouped conv with groups == cin."""
    ly = call.layer
    _require_channels_last(call)
    _require_no_dilation(call)
    bias = _bias(call) if ly.use_bias else None
    src = call.inputs[0]
    kernel = _kernel(b, call, call.name, "depthwise_kernel", depthwise=True)
    conv = _depthwise_ir(call, call.name, src, b.shape(src), kernel, bias)
    return _fused_activation(b, call, b.add(conv))


def _separable_conv2d(b: _Builder, call: _Call) -> str:
    """SeparableConv2D = depthwise (``<name>_dw``, no bias) then pointwise (``<name>``, bias)."""
    ly = call.layer
    _require_channels_last(call)
    _require_no_dilation(call)
    src = call.inputs[0]
    dw_name = b.unique(f"{call.name}_dw")
    dw_kernel = _kernel(b, call, dw_name, "depthwise_kernel", depthwise=True)
    dw = b.add(_depthwise_ir(call, dw_name, src, b.shape(src), dw_kernel, None))
    pointwise = _kernel(b, call, call.name, "pointwise_kernel")
    params = {"kernel": pointwise}
    if ly.use_bias:
        params["bias"] = _bias(call)
    pw = ir.Conv2D(
        name=call.name, inputs=[dw], params=params, filters=int(pointwise.shape[3]),
        kernel=(1, 1), strides=(1, 1), padding=(0, 0, 0, 0), groups=1, use_bias=bool(ly.use_bias),
    )
    return _fused_activation(b, call, b.add(pw))


def _dense(b: _Builder, call: _Call) -> str:
    """Dense/QDense (a kernel_quantizer's quantized kernel and grid)."""
    ly = call.layer
    params = {"kernel": _kernel(b, call, call.name, "kernel")}
    if ly.use_bias:
        params["bias"] = _bias(call)
    dense = ir.Dense(
        name=call.name, inputs=list(call.inputs), params=params, units=int(ly.units), use_bias=bool(ly.use_bias)
    )
    return _fused_activation(b, call, b.add(dense))


def _batchnorm(b: _Builder, call: _Call) -> str:
    """BatchNormalization on the channel axis with inference (moving) statistics."""
    ly = call.layer
    rank = len(b.shape(call.inputs[0])) + 1  # Keras axes count the batch axis
    axes = [a % rank for a in np.atleast_1d(ly.axis).tolist()]
    if axes != [rank - 1]:
        raise _unsupported(call, f"normalises axis {ly.axis}; only the last (channel) axis is supported")
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
    value = _f32(getattr(layer, attr))
    if not getattr(layer, f"{quantizer}_quantizer", None):
        return value
    return _f32(getattr(layer, f"{quantizer}_quantizer_internal")(value))


def _relu(b: _Builder, call: _Call) -> str:
    """ReLU layer: plain relu or relu6; leaky/thresholded/other caps have no IR op."""
    ly = call.layer
    slope = float(ly.negative_slope)
    threshold = float(ly.threshold)
    max_value = None if ly.max_value is None else float(ly.max_value)
    if slope != 0.0 or threshold != 0.0 or max_value not in (None, 6.0):
        raise _unsupported(
            call,
            f"has max_value={max_value}, negative_slope={slope}, threshold={threshold}; "
            "only ReLU() and ReLU(6) are supported",
        )
    kind = "relu" if max_value is None else "relu6"
    return b.add(ir.Activation(name=call.name, inputs=list(call.inputs), kind=kind))


def _activation(b: _Builder, call: _Call) -> str:
    """Keras Activation layer by its serialised name."""
    return _emit_activation(b, call, call.layer.get_config().get("activation"), call.inputs[0], call.name)


def _qactivation(b: _Builder, call: _Call) -> str:
    """QKeras QActivation: its float activation, and its quantizer's grid on the output tensor."""
    return _emit_activation(b, call, call.layer.activation, call.inputs[0], call.name, call.layer.quantizer)


def _softmax(b: _Builder, call: _Call) -> str:
    """Softmax over the last axis only (the IR op has no axis)."""
    rank = len(b.shape(call.inputs[0])) + 1
    axes = [a % rank for a in np.atleast_1d(call.layer.axis).tolist()]
    if axes != [rank - 1]:
        raise _unsupported(call, f"uses axis={call.layer.axis}; only the last axis is supported")
    return b.add(ir.Softmax(name=call.name, inputs=list(call.inputs)))


def _binary_chain(cls: type[ir.Layer]) -> Converter:
    """Add/Multiply: the IR op is binary, so n-ary Keras merges become ``<name>_part<k>`` chains."""

    def convert(b: _Builder, call: _Call) -> str:
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
    def convert(b: _Builder, call: _Call) -> str:
        """One pooling layer of this kind."""
        ly = call.layer
        _require_channels_last(call)
        pad = _explicit_padding(call, ly.padding, b.shape(call.inputs[0]), ly.pool_size, ly.strides)
        pool = ir.Pool2D(
            name=call.name, inputs=list(call.inputs), kind=kind, pool=tuple(ly.pool_size),
            strides=tuple(ly.strides), padding=pad,
        )
        return b.add(pool)

    return convert


def _global_pool(kind: str) -> Converter:
    """Global average/max pooling converter (keepdims kept)."""
    def convert(b: _Builder, call: _Call) -> str:
        """One global pooling layer of this kind."""
        _require_channels_last(call)
        keepdims = bool(getattr(call.layer, "keepdims", False))
        return b.add(ir.GlobalPool(name=call.name, inputs=list(call.inputs), kind=kind, keepdims=keepdims))

    return convert


def _flatten(b: _Builder, call: _Call) -> str:
    """Flatten (row-major H, W, C as Keras)."""
    _require_channels_last(call)
    return b.add(ir.Flatten(name=call.name, inputs=list(call.inputs)))


def _reshape(b: _Builder, call: _Call) -> str:
    """Reshape to the Keras target shape (no batch axis)."""
    target = tuple(int(d) for d in call.layer.target_shape)
    return b.add(ir.Reshape(name=call.name, inputs=list(call.inputs), target=target))


def _zero_padding(b: _Builder, call: _Call) -> str:
    """ZeroPadding2D as explicit (top, bottom, left, right)."""
    _require_channels_last(call)
    (top, bottom), (left, right) = call.layer.padding
    pad = (int(top), int(bottom), int(left), int(right))
    return b.add(ir.ZeroPad2D(name=call.name, inputs=list(call.inputs), padding=pad))


def _rescaling(b: _Builder, call: _Call) -> str:
    """Rescaling (scalar or per-channel) as an Affine."""
    ly = call.layer
    src = call.inputs[0]
    layer = _affine(call.name, src, _f32(ly.scale), _f32(ly.offset), role="rescaling")
    _check_affine_width(call, layer, b.shape(src)[-1])
    return b.add(layer)


def _normalization(b: _Builder, call: _Call) -> str:
    """Keras Normalization ``(x - mean) / max(sqrt(var), eps)`` (or its inverse) as a folded Affine."""
    ly = call.layer
    src = call.inputs[0]
    channels = b.shape(src)[-1]
    axis = [a % (len(b.shape(src)) + 1) for a in np.atleast_1d(ly.axis).tolist()] if ly.axis is not None else []
    if axis not in ([], [len(b.shape(src))]):
        raise _unsupported(call, f"normalises axis {ly.axis}; only the last (channel) axis is supported")
    mean = _f32(ly.mean).reshape(-1)
    std = np.maximum(np.sqrt(_f32(ly.variance).reshape(-1)), np.float32(1e-7))  # Keras' backend.epsilon()
    if mean.size not in (1, channels):
        raise _unsupported(call, f"has {mean.size} means for {channels} channels")
    if getattr(ly, "invert", False):
        scale, offset = std, mean
    else:
        scale, offset = 1.0 / std, -mean / std
    layer = _affine(call.name, src, scale, offset, role="normalization")
    return b.add(layer)


def _cropping(b: _Builder, call: _Call) -> str:
    """Cropping2D as explicit (top, bottom, left, right)."""
    _require_channels_last(call)
    (top, bottom), (left, right) = call.layer.cropping
    crop = (int(top), int(bottom), int(left), int(right))
    return b.add(ir.Crop2D(name=call.name, inputs=list(call.inputs), cropping=crop))


def _concatenate(b: _Builder, call: _Call) -> str:
    """Concatenate on the channel (last) axis; other axes have no IR op."""
    rank = len(b.shape(call.inputs[0])) + 1
    if int(call.layer.axis) % rank != rank - 1:
        raise _unsupported(call, f"concatenates on axis {call.layer.axis}; only the last (channel) axis is supported")
    return b.add(ir.Concat(name=call.name, inputs=list(call.inputs)))


def _check_affine_width(call: _Call, layer: ir.Affine, channels: int) -> None:
    """Affine constants must be scalars or per-channel vectors (the IR broadcasts on the last axis)."""
    for key, value in layer.params.items():
        if value.shape[0] not in (1, channels):
            raise _unsupported(
                call, f"uses a {key} of {value.shape[0]} values; only a scalar or one per channel ({channels})"
            )


# ---- TFOpLambda: tf.* ops recorded in functional models (x + 3.0, x * (1/6), tf.nn.relu6) ----

_TF_ACTIVATIONS = {
    "nn.relu": "relu",
    "nn.relu6": "relu6",
    "math.sigmoid": "sigmoid",
    "nn.sigmoid": "sigmoid",
    "nn.softmax": "softmax",
    "math.softmax": "softmax",
}
_TF_ADD = ("__operators__.add", "math.add")
_TF_SUB = ("math.subtract",)
_TF_MUL = ("math.multiply", "compat.v1.math.scalar_mul", "math.scalar_mul")
_TF_DIV = ("math.truediv", "math.divide")
_TF_OPS = (*_TF_ADD, *_TF_SUB, *_TF_MUL, *_TF_DIV, *_TF_ACTIVATIONS)


def _op_operands(call: _Call) -> list[tuple[str, Any]]:
    """The op's operands in call order: ("tensor", ir_name) or ("const", value)."""
    node = call.node
    keras_ids = [id(t) for t in node.keras_inputs]
    args = list(node.call_args) + [v for k, v in node.call_kwargs.items() if k != "name"]
    out: list[tuple[str, Any]] = []
    for a in args:
        if a is None:
            continue
        if id(a) in keras_ids:
            out.append(("tensor", call.inputs[keras_ids.index(id(a))]))
        else:
            out.append(("const", a))
    return out


def _tf_op(b: _Builder, call: _Call) -> str:
    """Scalar/per-channel arithmetic -> Affine; tensor+tensor -> Add/Multiply; tf.nn activations."""
    symbol = getattr(call.layer, "symbol", None) or call.layer.get_config().get("function", "")
    if symbol not in _TF_OPS:
        raise _unsupported(
            call, f"calls tf.{symbol}, which is not supported; supported tf ops: {', '.join(_TF_OPS)}"
        )
    operands = _op_operands(call)
    if symbol in _TF_ACTIVATIONS:
        return _emit_activation(b, call, _TF_ACTIVATIONS[symbol], call.inputs[0], call.name)
    kinds = [k for k, _ in operands]
    if kinds == ["tensor", "tensor"] and symbol in (*_TF_ADD, *_TF_MUL):
        cls = ir.Add if symbol in _TF_ADD else ir.Multiply
        return b.add(cls(name=call.name, inputs=[v for _, v in operands]))
    if sorted(kinds) != ["const", "tensor"]:
        raise _unsupported(call, f"applies tf.{symbol} to {kinds}; only tensor-with-constant is supported")
    tensor_first = kinds[0] == "tensor"
    src = operands[0][1] if tensor_first else operands[1][1]
    const = _f32(operands[1][1] if tensor_first else operands[0][1])
    scale, offset = _arith_to_affine(call, symbol, const, tensor_first)
    layer = _affine(call.name, src, scale, offset)
    channels = b.shape(src)[-1]
    if const.ndim > len(b.shape(src)) + 1 or any(d != 1 for d in const.shape[:-1]):
        raise _unsupported(call, f"uses a constant of shape {const.shape}; only scalars or per-channel vectors")
    _check_affine_width(call, layer, channels)
    return b.add(layer)


def _arith_to_affine(call: _Call, symbol: str, c: np.ndarray, tensor_first: bool) -> tuple[Any, Any]:
    """(scale, offset) of ``x op c`` (tensor first) or ``c op x``."""
    if symbol in _TF_ADD:
        return 1.0, c
    if symbol in _TF_SUB:
        return (1.0, -c) if tensor_first else (-1.0, c)
    if symbol in _TF_MUL:
        return c, 0.0
    if tensor_first:  # division by a constant
        return 1.0 / c, 0.0
    raise _unsupported(call, "divides a constant by a tensor; only tensor / constant is supported")


# ---- dispatch --------------------------------------------------------------------------------

_CONVERTERS: dict[str, Converter] = {
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
    # tf.* calls in a functional model (x + 3.0, x * (1/6), tf.nn.relu6). SlicingOpLambda (x[...])
    # is deliberately absent: the IR has no slice op.
    "TFOpLambda": _tf_op,
}
SUPPORTED_LAYERS: tuple[str, ...] = tuple(sorted(_CONVERTERS))


def _unsupported_layers(model: Any) -> list[tuple[str, str]]:
    """(name, class) of every layer, nested models included, that has no converter."""
    found = []
    for layer in model.layers:
        if _is_network(layer):
            found += _unsupported_layers(layer)
        elif type(layer).__name__ not in _CONVERTERS:
            found.append((layer.name, type(layer).__name__))
    return found


def _require_supported(model: Any) -> None:
    """Refuse a model with unsupported layers, naming all of them at once (not only the first)."""
    bad = _unsupported_layers(model)
    if bad:
        listed = ", ".join(f"{n!r} ({c})" for n, c in bad)
        raise UnsupportedLayerError(
            f"model {model.name!r} has {len(bad)} layer(s) codesign cannot import: {listed} "
            f"(supported: {', '.join(SUPPORTED_LAYERS)})."
        )


def _convert(b: _Builder, call: _Call) -> str:
    """Dispatch on the exact Keras class name (a subclass may change ``call``, so no isinstance)."""
    cls_name = type(call.layer).__name__
    conv = _CONVERTERS.get(cls_name)
    if conv is None:
        raise UnsupportedLayerError(
            f"layer {call.layer.name!r} of type {cls_name} is not supported; "
            f"supported: {', '.join(SUPPORTED_LAYERS)}."
        )
    n_in = len(call.inputs)
    if n_in != 1 and cls_name not in ("Add", "Multiply", "Concatenate", "TFOpLambda"):
        raise _unsupported(call, f"has {n_in} inputs; it takes exactly one")
    return conv(b, call)


# ---- graph walk ------------------------------------------------------------------------------


def _keras_shape(tensor: Any) -> tuple[int | None, ...]:
    """A Keras tensor's shape without the batch axis (None where unknown)."""
    dims = list(tensor.shape)[1:]
    return tuple(None if d is None else int(d) for d in dims)


def _is_network(layer: Any) -> bool:
    """True for a nested Functional/Sequential model (flattened into the parent)."""
    return bool(getattr(layer, "_is_graph_network", False)) and hasattr(layer, "_nodes_by_depth")


def _require_network(model: Any) -> None:
    """Refuse subclassed/unbuilt models: they have no graph to walk."""
    if not _is_network(model):
        raise UnsupportedLayerError(
            f"model {model.name!r} of type {type(model).__name__} is a subclassed or unbuilt model; "
            "only built functional and Sequential models can be imported (give Sequential models an "
            "Input or call build(input_shape) first)."
        )


def _import_network(b: _Builder, model: Any, input_names: list[str]) -> list[str]:
    """Append the IR of a functional/Sequential ``model`` whose inputs are ``input_names``."""
    _require_network(model)
    tensor_to_ir: dict[int, str] = {id(t): n for t, n in zip(model.inputs, input_names, strict=True)}
    input_layers = {id(t._keras_history.layer) for t in model.inputs}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            layer = node.layer
            if id(layer) in input_layers:
                continue
            ins = [tensor_to_ir[id(t)] for t in node.keras_inputs]
            outs = _flat(node.outputs)
            if _is_network(layer):
                results = _import_network(b, layer, ins)
            else:
                call = _Call(layer=layer, inputs=ins, name=b.unique(layer.name, scope=model.name), node=node)
                results = [_convert(b, call)]
            if len(results) != len(outs):
                raise _unsupported(_Call(layer, ins, layer.name), f"has {len(outs)} outputs; one is supported")
            for t, name in zip(outs, results):
                tensor_to_ir[id(t)] = name
                b.expected.append((name, _keras_shape(t), layer.name))
    return [tensor_to_ir[id(t)] for t in model.outputs]


def _flat(structure: Any) -> list[Any]:
    """Flatten a Keras node's nested outputs without importing TF at module level."""
    import tensorflow as tf

    return tf.nest.flatten(structure)


def _resolve_input_shape(model: Any, override: Sequence[int] | None) -> list[ir.Shape]:
    """Concrete input shapes: the model's own, or ``override`` where the model leaves H/W open."""
    shapes = []
    for t in model.inputs:
        shape = _keras_shape(t)
        if override is not None:
            want = tuple(int(d) for d in override)
            if len(want) != len(shape) or any(s is not None and s != w for s, w in zip(shape, want)):
                raise ShapeError(f"input_shape {want} does not fit model {model.name!r} input {shape}.")
            shape = want
        if any(d is None for d in shape):
            raise ShapeError(
                f"model {model.name!r} has input shape {shape} with unknown dimensions; "
                "pass --input-shape H,W,C (input_shape=(H, W, C) to from_keras)."
            )
        shapes.append(tuple(int(d) for d in shape if d is not None))  # none is None (checked above)
    return shapes


def _check_shapes(graph: ir.Graph, expected: list[tuple[str, tuple[int | None, ...], str]]) -> None:
    """Every IR tensor must have the shape Keras gives the tensor it stands for (else: importer bug)."""
    for ir_name, keras_shape, keras_layer in expected:
        got = graph[ir_name].output_shape
        fits = len(got) == len(keras_shape) and all(k is None or k == g for k, g in zip(keras_shape, got))
        if not fits:
            raise RuntimeError(
                f"importer bug: IR tensor {ir_name!r} has shape {got} but Keras layer {keras_layer!r} "
                f"outputs {keras_shape}"
            )


def from_keras(model: Any, name: str | None = None, input_shape: Sequence[int] | None = None) -> ir.Graph:
    """Convert a built functional or Sequential Keras/QKeras model (nested models flattened) to IR.

    ``input_shape`` (H, W, C) fixes input dimensions the model leaves open (e.g. MobileNetV3).
    """
    _require_network(model)
    _require_supported(model)
    b, input_names = _Builder(), []
    for t, shape in zip(model.inputs, _resolve_input_shape(model, input_shape)):
        input_names.append(b.add(ir.Input(name=b.unique(t._keras_history.layer.name), shape=shape)))
    with silenced():  # QKeras layers' get_config trips Keras' constraint serializer: noise, not news
        outputs = _import_network(b, model, input_names)
    graph = ir.Graph(name or model.name, b.layers, outputs, b.hints if b.hints else None)
    graph.infer_shapes()
    _check_shapes(graph, b.expected)
    fuse_hard_activations(graph)
    graph.infer_shapes()
    return graph


# ---- files ----------------------------------------------------------------------------------


def load_keras_file(path: str | Path, input_shape: Sequence[int] | None = None,
                    trust_model: bool = False) -> ir.Graph:
    """Load a .h5/.keras file (QKeras layers allowed) and convert it to IR (see :func:`from_keras`)."""
    return from_keras(load_keras_model(path, trust_model=trust_model), input_shape=input_shape)
