"""The Keras importer's converter for ``TFOpLambda``: tf.* ops recorded in functional models.

A functional model built with ``x + 3.0``, ``x * (1/6)`` or ``tf.nn.relu6(x)`` records those
calls as ``TFOpLambda`` layers. Arithmetic of a tensor with a scalar or per-channel constant
becomes an ``Affine``, tensor-with-tensor add/multiply an ``Add``/``Multiply``, and the
``tf.nn`` activations their IR activation. No TensorFlow import here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from codesign.graph import ir
from codesign.graph.keras_build import (
    Builder,
    Call,
    affine_layer,
    check_affine_width,
    emit_activation,
    f32,
    unsupported,
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


def _op_operands(call: Call) -> list[tuple[str, Any]]:
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


def tf_op(b: Builder, call: Call) -> str:
    """Scalar/per-channel arithmetic -> Affine; tensor+tensor -> Add/Multiply; tf.nn activations."""
    symbol = getattr(call.layer, "symbol", None) or call.layer.get_config().get("function", "")
    if symbol not in _TF_OPS:
        raise unsupported(
            call, f"calls tf.{symbol}, which is not supported; supported tf ops: {', '.join(_TF_OPS)}"
        )
    operands = _op_operands(call)
    if symbol in _TF_ACTIVATIONS:
        return emit_activation(b, call, _TF_ACTIVATIONS[symbol], call.inputs[0], call.name)
    kinds = [k for k, _ in operands]
    if kinds == ["tensor", "tensor"] and symbol in (*_TF_ADD, *_TF_MUL):
        cls = ir.Add if symbol in _TF_ADD else ir.Multiply
        return b.add(cls(name=call.name, inputs=[v for _, v in operands]))
    if sorted(kinds) != ["const", "tensor"]:
        raise unsupported(call, f"applies tf.{symbol} to {kinds}; only tensor-with-constant is supported")
    tensor_first = kinds[0] == "tensor"
    src = operands[0][1] if tensor_first else operands[1][1]
    const = f32(operands[1][1] if tensor_first else operands[0][1])
    scale, offset = _arith_to_affine(call, symbol, const, tensor_first)
    layer = affine_layer(call.name, src, scale, offset)
    channels = b.shape(src)[-1]
    if const.ndim > len(b.shape(src)) + 1 or any(d != 1 for d in const.shape[:-1]):
        raise unsupported(call, f"uses a constant of shape {const.shape}; only scalars or per-channel vectors")
    check_affine_width(call, layer, channels)
    return b.add(layer)


def _arith_to_affine(call: Call, symbol: str, c: np.ndarray, tensor_first: bool) -> tuple[Any, Any]:
    """(scale, offset) of ``x op c`` (tensor first) or ``c op x``."""
    if symbol in _TF_ADD:
        return 1.0, c
    if symbol in _TF_SUB:
        return (1.0, -c) if tensor_first else (-1.0, c)
    if symbol in _TF_MUL:
        return c, 0.0
    if tensor_first:  # division by a constant
        return 1.0 / c, 0.0
    raise unsupported(call, "divides a constant by a tensor; only tensor / constant is supported")


__all__ = ["tf_op"]
