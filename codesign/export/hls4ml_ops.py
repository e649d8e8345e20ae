"""One hls4ml handler per quantized op class: whether (and why not) a node maps to hls4ml.

The layers themselves come from the QKeras export (:mod:`codesign.export.qkeras_ops`); a
handler here states the limits hls4ml adds on top of it, returning the reason a node
cannot be converted, or None. ``@hls4ml_handler(OpClass)`` files it (lookup follows the
op class's MRO); an op class with no handler has no hls4ml mapping (``lut``: hls4ml's
sigmoid is its own float table, not the golden one; ``crop`` and ``concat``: no QKeras export).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from codesign.quant.ops import activation, add, affine, gemm, mul, op_classes, pool, requant, shape
from codesign.quant.ops.base import HandlerTable, QOp
from codesign.quant.qir import QGraph, QNode

Support = Callable[[QGraph, QNode, Any, str], "str | None"]
HLS4ML: HandlerTable[Support] = HandlerTable()
HLS4ML_HANDLERS = HLS4ML.handlers
hls4ml_handler = HLS4ML.register  # decorator: the handler of nodes whose op is one of the given classes
handler_for = HLS4ML.lookup


def supported_kinds() -> list[str]:
    """Kinds of the registered op classes that have an hls4ml mapping, sorted."""
    return sorted(k for k, cls in op_classes().items() if handler_for(cls) is not None)


def unsupported_reason(qg: QGraph, node: QNode, io_type: str) -> str | None:
    """Why ``node`` cannot be converted by hls4ml with ``io_type`` (None when it can)."""
    check = handler_for(type(node.op))
    if check is None:
        return f"kind {node.kind!r} has no hls4ml mapping (supported: {', '.join(supported_kinds())})"
    return check(qg, node, node.op, io_type)


@hls4ml_handler(add.Add, pool.AvgPool, pool.GlobalAvgPool, pool.GlobalMaxPool, shape.Pad, shape.FlattenOp,
                shape.ReshapeOp, activation.Relu, activation.Relu6, activation.HSwish, activation.HSigmoid,
                affine.Affine, requant.Requant)
def _always(qg: QGraph, node: QNode, op: QOp, io_type: str) -> str | None:
    return None


@hls4ml_handler(gemm.GemmOp)
def _gemm(qg: QGraph, node: QNode, op: gemm.GemmOp, io_type: str) -> str | None:
    if isinstance(op, gemm.Conv) and op.groups > 1 and op.weight.shape[2] != 1:
        return f"grouped convolution (groups={op.groups}) has no hls4ml layer; only depthwise"
    return None


@hls4ml_handler(pool.MaxPool)
def _maxpool(qg: QGraph, node: QNode, op: pool.MaxPool, io_type: str) -> str | None:
    if io_type == "io_stream" and tuple(op.pool) != tuple(op.strides):
        return (f"hls4ml's io_stream pooling needs pool size == stride, got pool {tuple(op.pool)} "
                f"stride {tuple(op.strides)}; use io_type='io_parallel'")
    return None


@hls4ml_handler(mul.Mul)
def _mul(qg: QGraph, node: QNode, op: mul.Mul, io_type: str) -> str | None:
    if io_type == "io_stream" and len({qg.tensors[i].shape for i in node.inputs}) > 1:
        return "a broadcasting multiply (squeeze-excite) needs io_type='io_parallel' in hls4ml"
    return None


__all__ = ["HLS4ML_HANDLERS", "Support", "handler_for", "hls4ml_handler", "supported_kinds", "unsupported_reason"]
