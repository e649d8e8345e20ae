"""The Keras importer's builder and the helpers its converters share.

:class:`Builder` accumulates the IR under construction (unique names, shapes as layers are
added, the QKeras grids found on the way, the Keras shapes to check at the end); a
:class:`Call` is one call of a Keras layer; a :data:`Converter` turns a call into IR layers.
The helpers here read Keras attributes (padding, data format, dilation, fused activations,
QKeras-quantized kernels and biases) and are used by the per-layer converters
(:mod:`codesign.graph.keras_layers`), the tf-op converter (:mod:`codesign.graph.keras_tfops`)
and the graph walk (:mod:`codesign.graph.keras_import`). No TensorFlow import here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codesign.errors import UnsupportedLayerError
from codesign.graph import ir
from codesign.graph.quant_hints import QuantHints

# ---- builder: the IR under construction ------------------------------------------------------


@dataclass
class Builder:
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
class Call:
    """One call of a Keras layer: the layer, the IR names of its tensor inputs, its Keras node."""

    layer: Any
    inputs: list[str]
    name: str
    node: Any = None


Converter = Callable[[Builder, Call], str]


# ---- small helpers ---------------------------------------------------------------------------


def f32(a: Any) -> np.ndarray:
    """A Keras weight / variable / constant as a float32 NumPy array."""
    if hasattr(a, "numpy"):
        a = a.numpy()
    return np.array(a, dtype=np.float32)


def unsupported(call: Call, why: str) -> UnsupportedLayerError:
    """An error naming the layer and its Keras class, with the reason."""
    return UnsupportedLayerError(f"layer {call.layer.name!r} of type {type(call.layer).__name__} {why}.")


def require_channels_last(call: Call) -> None:
    """Reject NCHW layers: the IR is channels-last only."""
    fmt = getattr(call.layer, "data_format", "channels_last")
    if fmt != "channels_last":
        raise unsupported(call, f"uses data_format={fmt!r}; only channels_last is supported")


def explicit_padding(
    call: Call, mode: str, in_shape: ir.Shape, kernel: Sequence[int], strides: Sequence[int]
) -> tuple[int, int, int, int]:
    """Keras 'valid'/'same' padding as explicit (top, bottom, left, right)."""
    if mode == "valid":
        return (0, 0, 0, 0)
    if mode == "same":
        top, bottom = ir.same_padding(in_shape[0], kernel[0], strides[0])
        left, right = ir.same_padding(in_shape[1], kernel[1], strides[1])
        return (top, bottom, left, right)
    raise unsupported(call, f"uses padding={mode!r}; only 'valid' and 'same' are supported")


def require_no_dilation(call: Call) -> None:
    """Reject dilated windows: neither the IR nor the accelerator's img2col has them."""
    rate = tuple(getattr(call.layer, "dilation_rate", (1, 1)))
    if any(r != 1 for r in rate):
        raise unsupported(call, f"uses dilation_rate={rate}; only dilation 1 is supported")


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


def emit_activation(b: Builder, call: Call, spec: Any, src: str, name: str, quantizer: Any = None) -> str:
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
        pre = b.add(affine_layer(b.unique(f"{name}_prescale"), src, scale=1.2, offset=0.0))
        return b.add(ir.Activation(name=name, inputs=[pre], kind="hsigmoid"))
    supported = sorted({*_ACTIVATION_KINDS, "linear", "softmax", "hard_sigmoid", "quantized_relu"})
    raise unsupported(call, f"uses activation {act!r}, which is not supported; supported: {', '.join(supported)}")


def fused_activation(b: Builder, call: Call, src: str) -> str:
    """Emit a layer's fused ``activation=`` as a separate ``<name>_act`` layer."""
    spec = call.layer.get_config().get("activation")
    return emit_activation(b, call, spec, src, b.unique(f"{call.name}_act"), getattr(call.layer, "activation", None))


def _tensor_grid(call: Call, quantizer: Any) -> Any:
    """The grid of an activation quantizer object (None when it is not a QKeras quantizer)."""
    if quantizer is None:
        return None
    from codesign.graph.qkeras_quantizers import tensor_grid

    return tensor_grid(call.layer.name, quantizer)


def layer_kernel(b: Builder, call: Call, ir_name: str, attr: str, depthwise: bool = False) -> np.ndarray:
    """Layer kernel ``attr``; with a QKeras quantizer, the quantized kernel (its grid is recorded)."""
    kernel = f32(getattr(call.layer, attr))
    prefix = attr.removesuffix("_kernel") if attr != "kernel" else "kernel"
    quantizer = getattr(call.layer, f"{prefix}_quantizer_internal", None)
    if quantizer is None:
        return kernel
    from codesign.graph.qkeras_quantizers import weight_grid

    q, grid = weight_grid(call.layer.name, quantizer, kernel, depthwise)
    b.hints.weights[ir_name] = grid
    return q


def layer_bias(call: Call) -> np.ndarray:
    """Layer bias, quantized by its QKeras bias quantizer when it has one (QKeras adds that one)."""
    bias = f32(call.layer.bias)
    quantizer = getattr(call.layer, "bias_quantizer_internal", None)
    return bias if quantizer is None else f32(quantizer(bias))


def affine_layer(name: str, src: str, scale: Any, offset: Any, role: str = "") -> ir.Affine:
    """An Affine layer from scalar or per-channel scale/offset."""
    params = {
        "scale": np.atleast_1d(np.asarray(scale, dtype=np.float32)).ravel(),
        "offset": np.atleast_1d(np.asarray(offset, dtype=np.float32)).ravel(),
    }
    return ir.Affine(name=name, inputs=[src], params=params, role=role)


def check_affine_width(call: Call, layer: ir.Affine, channels: int) -> None:
    """Affine constants must be scalars or per-channel vectors (the IR broadcasts on the last axis)."""
    for key, value in layer.params.items():
        if value.shape[0] not in (1, channels):
            raise unsupported(
                call, f"uses a {key} of {value.shape[0]} values; only a scalar or one per channel ({channels})"
            )


__all__ = [
    "Builder", "Call", "Converter", "affine_layer", "check_affine_width", "emit_activation", "explicit_padding", "f32",
    "fused_activation", "layer_bias", "layer_kernel", "require_channels_last", "require_no_dilation", "unsupported",
]
