"""One QKeras handler per quantized op class (hls4ml's converter-registry style).

A handler builds the Keras layers of one node with the exporter's builders
(:class:`codesign.export.qkeras._Exporter`) and returns its code-valued output tensor.
``@qkeras_handler(OpClass)`` files it; lookup follows the op class's MRO, so one handler
for :class:`~codesign.quant.ops.gemm.GemmOp` serves conv and dense. Ops without a handler
(``crop``, ``concat``) make the export raise ``UnsupportedLayerError`` naming the node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf
from qkeras import QActivation, QConv2D, QDense, QDepthwiseConv2D, quantized_bits

from codesign.errors import UnsupportedLayerError
from codesign.export.qkeras_layers import CodeLUT, DyadicAdd
from codesign.export.qkeras_numeric import (
    dyadic_value,
    is_depthwise,
    stored_kernel,
    tie_nudge,
    weight_quantizer,
)
from codesign.quant.dyadic import HSWISH_CLAMP, Act, ActParams
from codesign.quant.ops import activation, add, affine, gemm, mul, pool, requant, shape
from codesign.quant.ops.base import HandlerTable
from codesign.quant.qir import QNode, QTensor

if TYPE_CHECKING:
    from codesign.export.qkeras import _Exporter

K = tf.keras
Handler = Callable[["_Exporter", QNode, Any, list[tf.Tensor], QTensor], tf.Tensor]
QKERAS: HandlerTable[Handler] = HandlerTable()
QKERAS_HANDLERS = QKERAS.handlers
qkeras_handler = QKERAS.register  # decorator: the handler of nodes whose op is one of the given classes
handler_for = QKERAS.lookup


def fused_activation(ex: _Exporter, name: str, ap: ActParams, y: tf.Tensor, out: QTensor) -> tf.Tensor:
    """The fused activation of a conv/dense/add node, then the output quantizer."""
    if ap.act == Act.HSWISH:
        # the golden h-swish clamps its input to [-HSWISH_CLAMP, HSWISH_CLAMP - 1] first
        clamp_bits = HSWISH_CLAMP.bit_length()
        q = ex.layer(QActivation(quantized_bits(clamp_bits, clamp_bits - 1, keep_negative=True), name=f"{name}_q16"), y)
        return ex.hswish_block(q, ap.three, ap.six, (ap.hs_mult, ap.hs_shift), out, f"{name}_hswish")
    if ap.act == Act.RELU6 and ap.six < out.qmax:
        y = ex.clip(y, ap.six, f"{name}_relu6")
    return ex.quantize(y, out, f"{name}_q", relu=ap.act in (Act.RELU, Act.RELU6))


@qkeras_handler(gemm.GemmOp)
def _gemm(ex: _Exporter, n: QNode, op: gemm.GemmOp, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    """Conv/dense (requant folded into alpha, or a separate multiplier), then the activation."""
    x = ins[0]
    kernel, alpha = stored_kernel(n)
    bias = np.asarray(op.bias, np.float64) * dyadic_value(op.mult, op.shift) + tie_nudge(op.mult, op.shift)
    w_bits = op.w_bits
    if ex.fold_requant:
        wq = weight_quantizer(w_bits, alpha)
        weights = [kernel.astype(np.float32), bias.astype(np.float32)]
    else:  # integer kernel codes; bias and multiplier go to a '<name>_rq' layer
        kernel = kernel * 2.0 ** (w_bits - 1)
        wq = quantized_bits(w_bits, w_bits - 1, symmetric=1, keep_negative=True)
        weights = [kernel.astype(np.float32)]
    # hls form: the integer bias codes join the exact integer accumulator, so the multiplier
    # layer only holds dyadic constants (a bias * M constant can need more than 53 bits)
    int_bias = ex.hls and not ex.fold_requant
    if int_bias:
        weights.append(np.asarray(op.bias, np.float32))
        ex.info.int_bias[n.name] = np.asarray(op.bias, np.int64)
    kw: dict[str, Any] = {"name": n.name, "use_bias": ex.fold_requant or int_bias}
    if not isinstance(op, gemm.Conv):
        layer = QDense(kernel.shape[-1], kernel_quantizer=wq, **kw)
    else:
        x = ex.pad(x, op.padding, f"{n.name}_zpad")
        kw.update(strides=tuple(op.strides), padding="valid")
        if op.groups == 1:
            layer = QConv2D(kernel.shape[-1], tuple(kernel.shape[:2]), kernel_quantizer=wq, **kw)
        elif is_depthwise(op):
            layer = QDepthwiseConv2D(tuple(kernel.shape[:2]), depth_multiplier=kernel.shape[-1],
                                     depthwise_quantizer=wq, **kw)
        else:
            raise UnsupportedLayerError(
                f"layer {n.name!r}: grouped convolution with groups={op.groups} and "
                f"{op.weight.shape[2]} input channels per group has no QKeras layer "
                "(only groups=1 and depthwise export)."
            )
    y = ex.layer(layer, x, weights=weights)
    if not ex.fold_requant:
        y = ex.rq(y, f"{n.name}_rq", op.mult, op.shift, bias=0 if int_bias else op.bias)
    return fused_activation(ex, n.name, op.act_params, y, out)


@qkeras_handler(add.Add)
def _add(ex: _Exporter, n: QNode, op: add.Add, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    ap = ActParams(Act(op.act), op.six)
    if ex.exact:
        y = ex.layer(DyadicAdd(int(op.mult_a), int(op.mult_b), int(op.shift), name=n.name), ins[0], ins[1])
        return fused_activation(ex, n.name, ap, y, out)
    m = dyadic_value(op.mult_a, op.shift), dyadic_value(op.mult_b, op.shift)
    nudge = np.minimum(tie_nudge(op.mult_a, op.shift), tie_nudge(op.mult_b, op.shift))
    xa = ex.affine(ins[0], f"{n.name}_rqa", gamma=m[0], beta=nudge)
    xb = ex.affine(ins[1], f"{n.name}_rqb", gamma=m[1])
    return fused_activation(ex, n.name, ap, ex.layer(K.layers.Add(name=n.name), xa, xb), out)


@qkeras_handler(mul.Mul)
def _mul(ex: _Exporter, n: QNode, op: mul.Mul, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    a, b = ins
    if ex.hls and int(np.prod(a.shape[1:])) < int(np.prod(b.shape[1:])):
        a, b = b, a  # hls4ml's io_parallel Multiply broadcasts its second input (index mod size)
    y = ex.layer(K.layers.Multiply(name=n.name), a, b)
    return ex.quantize(ex.rq(y, f"{n.name}_rq", op.mult, op.shift), out, f"{n.name}_q")


@qkeras_handler(pool.AvgPool)
def _avgpool(ex: _Exporter, n: QNode, op: pool.AvgPool, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    xp = ex.pad(ins[0], op.padding, f"{n.name}_zpad")
    # window sums with a ones depthwise kernel: exact integers (an average would not be)
    c = int(xp.shape[-1])
    dw = K.layers.DepthwiseConv2D(tuple(op.pool), tuple(op.strides), "valid", use_bias=False, name=n.name)
    y = ex.layer(dw, xp, weights=[np.ones((*op.pool, c, 1), np.float32)])
    mult, shift = np.asarray(op.mult), np.asarray(op.shift)
    if np.all(mult == mult.flat[0]) and np.all(shift == shift.flat[0]):  # no padded window: one multiplier
        mult, shift = mult.flat[0], shift.flat[0]
    else:  # per output position [OH, OW, 1]
        mult, shift = mult.reshape(mult.shape[1:]), shift.reshape(shift.shape[1:])
    return ex.quantize(ex.rq(y, f"{n.name}_rq", mult, shift), out, f"{n.name}_q")


@qkeras_handler(pool.GlobalAvgPool)
def _gavgpool(ex: _Exporter, n: QNode, op: pool.GlobalAvgPool, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    x = ins[0]
    h, w = ex.qg.tensors[n.inputs[0]].shape[:2]
    if ex.hls:  # exact integer sums: hls4ml's average divides with truncation
        c = int(x.shape[-1])
        dw = K.layers.DepthwiseConv2D((h, w), 1, "valid", use_bias=False, name=n.name)
        y = ex.layer(dw, x, weights=[np.ones((h, w, c, 1), np.float32)])
        if not op.keepdims:
            y = ex.layer(K.layers.Reshape((c,), name=f"{n.name}_flat"), y)
        return ex.quantize(ex.rq(y, f"{n.name}_rq", op.mult, op.shift), out, f"{n.name}_q")
    y = ex.layer(K.layers.GlobalAveragePooling2D(keepdims=op.keepdims, name=n.name), x)
    y = ex.rq(y, f"{n.name}_rq", op.mult, op.shift, pre=float(h * w))
    return ex.quantize(y, out, f"{n.name}_q")


@qkeras_handler(pool.MaxPool)
def _maxpool(ex: _Exporter, n: QNode, op: pool.MaxPool, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    x = ins[0]
    src = ex.qg.tensors[n.inputs[0]]
    offset = -src.qmin if (src.signed and any(op.padding)) else 0
    if offset:
        x = ex.affine(x, f"{n.name}_shift_up", beta=offset)
    x = ex.pad(x, op.padding, f"{n.name}_zpad")
    y = ex.layer(K.layers.MaxPooling2D(op.pool, op.strides, "valid", name=n.name), x)
    return ex.affine(y, f"{n.name}_shift_down", beta=-offset) if offset else y


@qkeras_handler(pool.GlobalMaxPool)
def _gmaxpool(ex: _Exporter, n: QNode, op: pool.GlobalMaxPool, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    return ex.layer(K.layers.GlobalMaxPooling2D(keepdims=op.keepdims, name=n.name), ins[0])


@qkeras_handler(shape.Pad)
def _pad(ex: _Exporter, n: QNode, op: shape.Pad, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    t, b, lft, r = op.padding
    return ex.layer(K.layers.ZeroPadding2D(((t, b), (lft, r)), name=n.name), ins[0])


@qkeras_handler(shape.FlattenOp)
def _flatten(ex: _Exporter, n: QNode, op: shape.FlattenOp, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    return ex.layer(K.layers.Flatten(name=n.name), ins[0])


@qkeras_handler(shape.ReshapeOp)
def _reshape(ex: _Exporter, n: QNode, op: shape.ReshapeOp, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    return ex.layer(K.layers.Reshape(tuple(op.target), name=n.name), ins[0])


@qkeras_handler(activation.Relu)
def _relu(ex: _Exporter, n: QNode, op: activation.Relu, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    return ex.layer(K.layers.ReLU(name=n.name), ins[0])


@qkeras_handler(activation.Relu6)
def _relu6(ex: _Exporter, n: QNode, op: activation.Relu6, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    return ex.clip(ins[0], op.six, n.name)


@qkeras_handler(activation.HSwish)
def _hswish(ex: _Exporter, n: QNode, op: activation.HSwish, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    return ex.hswish_block(ins[0], op.three, op.six, (op.mult, op.shift), out, n.name)


@qkeras_handler(activation.HSigmoid)
def _hsigmoid(ex: _Exporter, n: QNode, op: activation.HSigmoid, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    r = ex.affine(ins[0], f"{n.name}_plus3", beta=op.three)
    r = ex.clip(r, op.six, f"{n.name}_relu6")
    return ex.quantize(ex.rq(r, f"{n.name}_rq", op.mult, op.shift), out, f"{n.name}_q")


@qkeras_handler(activation.Lut)
def _lut(ex: _Exporter, n: QNode, op: activation.Lut, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    return ex.layer(CodeLUT(op.lut, op.offset, name=n.name), ins[0])


@qkeras_handler(affine.Affine)
def _affine(ex: _Exporter, n: QNode, op: affine.Affine, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    signed_mult = np.asarray(op.mult, np.int64) * np.asarray(op.sign, np.int64)
    return ex.quantize(ex.rq(ins[0], n.name, signed_mult, op.shift, offset=op.offset), out, f"{n.name}_q")


@qkeras_handler(requant.Requant)
def _requant(ex: _Exporter, n: QNode, op: requant.Requant, ins: list[tf.Tensor], out: QTensor) -> tf.Tensor:
    return ex.quantize(ex.rq(ins[0], n.name, op.mult, op.shift), out, f"{n.name}_q")


__all__ = ["QKERAS_HANDLERS", "Handler", "fused_activation", "handler_for", "qkeras_handler"]
