"""Quantization of a float IR graph into the quantized IR, as small named passes.

``quantize_model(graph, bitconfig, calib_x)`` runs:

1. :func:`fold_and_calibrate` - fold BN into the producing conv/dense, calibrate activation
   ranges and (for GPTQ) the layers' input Gram matrices, memoised per graph and batch;
2. :func:`plan_fusion` - fuse ReLU/ReLU6/h-swish into the producing Conv2D/Dense/Add;
3. :func:`assign_widths` - decide every tensor's width;
4. :func:`lower` - each layer's op class (:mod:`codesign.quant.ops`) derives its output
   tensor's scale and sign and its integer constants (weights, int32 biases, dyadic multipliers).

Tensor widths: a quantizable layer asks for its ``a_bits`` on its input tensor; a
*transparent* op (zero-pad, max-pool, flatten, reshape, standalone ReLU/ReLU6: ops that keep
the scale) forwards what its consumers ask for; every other op (residual add, SE multiply,
pooling, ...) asks for ``default_act_bits``, so shared streams such as a ResNet's identity
path stay wide. A tensor takes the largest width asked for, or ``default_act_bits`` when
nobody reads it. A quantizable layer that is
asked to read a wider tensor than its ``a_bits`` gets an explicit ``requant`` node in front.

Signedness is structural: outputs of ReLU/ReLU6/h-sigmoid/sigmoid (and ops that preserve
non-negativity) are unsigned; the input is unsigned when the calibration data is >= 0.

Grids the source model fixed (``graph.hints``, from QKeras quantizers) replace calibration:
a tensor whose width equals its quantizer's takes that quantizer's scale and sign, and a
GEMM whose ``w_bits`` equal its kernel quantizer's takes that quantizer's per-channel step.
"""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np

from codesign.digest import array_digest
from codesign.graph.ir import Graph, Input, Layer
from codesign.graph.quant_hints import QuantHints
from codesign.quant.bitconfig import BitConfig
from codesign.quant.calibrate import calibrate
from codesign.quant.dyadic import quantize_multiplier
from codesign.quant.fold import fold_batchnorm
from codesign.quant.fusion import FusionPlan, plan_fusion
from codesign.quant.gptq import WEIGHT_ROUNDINGS, LayerGram, input_gram
from codesign.quant.ops.base import OVERLAY, LowerCtx, op_for_layer
from codesign.quant.qir import QGraph, QNode, QTensor


# The PTQ the search (and every baseline it is compared with) uses on distilled data: MSE
# activation clip, MSE weight clip, GPTQ rounding below 8 bit (docs/method.md).
class QuantOptions(TypedDict, total=False):
    """Keyword options of :func:`quantize_model` (calibration and weight rounding)."""

    method: str
    percentile: float
    weight_clip: str
    weight_round: str


SEARCH_PTQ: QuantOptions = {"method": "mse", "weight_clip": "mse", "weight_round": "gptq"}

_PREPARED: dict[tuple, tuple[Graph, Graph, dict[str, Any], dict[str, LayerGram]]] = {}
_PREPARED_MAX = 4


def calibration_state(graph: Graph, calib_x: np.ndarray, method: str = "minmax", percentile: float = 99.99,
                      gram_layers: list[str] | tuple[str, ...] = ()) -> tuple[Graph, dict[str, Any], dict[str, LayerGram]]:
    """BN-folded graph, activation ranges and GPTQ input Gram matrices, memoised.

    None of them depends on the bit-widths, and searches quantize one model with one
    calibration batch many times (direct sensitivity, ZeroQ, HAQ rewards, evaluation), so the
    float calibration passes run once. The key holds the graph object (compared by identity,
    and kept alive by the cache), a digest of the calibration data and the calibration options.
    """
    key = (id(graph), array_digest(calib_x), method, float(percentile))
    hit = _PREPARED.get(key)
    if hit is None or hit[0] is not graph:
        g = fold_batchnorm(graph)
        hit = (graph, g, calibrate(g, calib_x, method=method, percentile=percentile), {})
        if len(_PREPARED) >= _PREPARED_MAX:
            _PREPARED.pop(next(iter(_PREPARED)))
        _PREPARED[key] = hit
    _graph, g, ranges, grams = hit
    missing = [n for n in gram_layers if n not in grams]
    if missing:
        grams.update(input_gram(g, calib_x, missing))
    return g, ranges, {n: grams[n] for n in gram_layers}


def fold_and_calibrate(graph: Graph, bitconfig: BitConfig, calib_x: np.ndarray, method: str, percentile: float,
                       weight_round: str) -> tuple[Graph, dict[str, Any], dict[str, LayerGram]]:
    """Pass 1: the BN-folded graph, its activation ranges and the Gram matrices GPTQ needs."""
    if weight_round not in WEIGHT_ROUNDINGS:
        raise ValueError(f"weight rounding must be one of {WEIGHT_ROUNDINGS}, got {weight_round!r}")
    low = [ly.name for ly in graph.quantizable() if bitconfig[ly.name].w_bits < 8] if weight_round == "gptq" else []
    return calibration_state(graph, calib_x, method, percentile, low)


def assign_widths(plan: FusionPlan, layers: list[Layer], bc: BitConfig) -> dict[str, int | None]:
    """Pass 3: the width each tensor is asked for by its consumers (None: nobody asks)."""
    by_tensor: dict[str, list[Layer]] = {}
    for ly in layers:
        for i in ly.inputs:
            by_tensor.setdefault(i, []).append(ly)
    demand: dict[str, int | None] = {}
    for ly in reversed(layers):  # consumers come later in topological order
        t = plan.out_tensor[ly.name]
        asks: list[int | None] = []
        for c in by_tensor.get(t, []):
            op = op_for_layer(c)
            if op.placement == OVERLAY:
                asks.append(bc[c.name].a_bits)
            elif op.transparent:
                asks.append(demand.get(plan.out_tensor[c.name]))
            else:  # add, mul, pooling, ...: keep shared streams (residuals, SE) at the default width
                asks.append(bc.default_act_bits)
        known = [a for a in asks if a is not None]
        demand[t] = max(known) if known else None
    return demand


def lower(ctx: LowerCtx, layers: list[Layer]) -> list[QNode]:
    """Pass 4: every layer through its op class's ``lower``, in topological order."""
    for ly in layers:
        if isinstance(ly, Input):
            ctx.new_tensor(ly, signed=bool(ctx.ranges[ly.name].min < 0))
            continue
        op_for_layer(ly).lower(ly, [ctx.tensors[i] for i in ly.inputs], ctx)
        ctx.nodes[-1].attrs.setdefault("src_op", ly.op)
    return ctx.nodes


def quantize_model(
    graph: Graph,
    bitconfig: BitConfig,
    calib_x: np.ndarray,
    method: str = "minmax",
    percentile: float = 99.99,
    weight_clip: str = "max",
    weight_round: str = "nearest",
) -> QGraph:
    """Quantize a float IR graph with a BitConfig, calibrating on ``calib_x`` (N, H, W, C).

    ``method``/``percentile`` choose activation calibration; ``weight_clip`` ("max"/"mse")
    how per-channel weight scales are chosen; ``weight_round`` ("nearest"/"gptq") how weights
    are rounded onto that grid (GPTQ uses ``calib_x`` as the layer inputs' data, and is applied
    to layers below 8 bit, where rounding error matters).
    """
    bitconfig.validated(graph)
    g, ranges, grams = fold_and_calibrate(graph, bitconfig, calib_x, method, percentile, weight_round)
    plan = plan_fusion(g)
    layers = plan.real_layers(g)
    demand = assign_widths(plan, layers, bitconfig)
    ctx = LowerCtx(g, bitconfig, ranges, demand, plan, g.hints or QuantHints(), grams, weight_clip)
    nodes = lower(ctx, layers)
    return QGraph(graph.name, g.inputs[0], plan.output, plan.softmax, ctx.tensors, nodes, bitconfig)


__all__ = ["SEARCH_PTQ", "QGraph", "QNode", "QTensor", "QuantOptions", "assign_widths", "calibration_state",
           "fold_and_calibrate", "lower", "plan_fusion", "quantize_model", "quantize_multiplier"]
