"""``conv`` and ``dense``: the GEMMs the overlay's engines run (bias, dyadic requant, fused activation).

Expected cycles (:meth:`GemmOp.exp_cycles`) follow the overlay's structure: the layer is
split into GEMM blocks (:meth:`GemmOp.gemm_blocks`: one for dense and ungrouped conv, one per
group, or block-diagonal groups of ``lanes`` channels for depthwise), each block into N-tiles
as wide as the weight bank holds, and each tile issues one engine beat per (row, k-word, lane
group): ``M * ceil(K / tree) * ceil(NT / lanes)``. The engine accepts one beat per cycle and
``CYC_COMPUTE`` counts accepted beats, so that count is exact; the weight words of a tile
(``ceil(NT / lanes) * ceil(K / tree) * lanes``) arrive, one per cycle at most, before its
first beat, which gives the lower bound :meth:`GemmOp.min_total_cycles` on ``CYC_TOTAL``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, cast

import numpy as np

from codesign.graph import ops
from codesign.graph.ir import Conv2D, Layer
from codesign.graph.ir import Dense as DenseLayer
from codesign.graph.quant_hints import WeightGrid
from codesign.quant.dyadic import (
    HSWISH_CLAMP,
    INT32_MAX,
    INT32_MIN,
    Act,
    ActParams,
    code_dtype,
    postprocess,
    round_half_up,
)
from codesign.quant.gptq import LayerGram
from codesign.quant.ops.base import ATTR, OVERLAY, PARAM, LowerCtx, QOp, dyadic, pair, quad, register
from codesign.quant.ops.requant import Requant
from codesign.quant.qir import QNode, QTensor
from codesign.quant.weights import quantize_weights


class AccumulatorOverflow(ArithmeticError):
    """A GEMM accumulator left the int32 range the hardware provides."""


class EngineGeometry(Protocol):
    """What the cycle model needs of an engine: its lanes, its tree and the widest N-tile."""

    @property
    def lanes(self) -> int: ...

    @property
    def tree(self) -> int: ...

    def tile_n(self, k: int, n: int) -> int:
        """Widest N-tile of a ``K x N`` GEMM block."""
        ...


class GemmBlock(NamedTuple):
    """One GEMM of a layer: ``A [m, k] @ W [k, n]`` writing output channels ``col0 ..``."""

    m: int
    k: int
    n: int
    col0: int


def act_params(node: QNode) -> ActParams:
    """The fused activation constants stored on a node."""
    a = node.attrs
    return ActParams(Act(a.get("act", 0)), a.get("six", 0), a.get("three", 0), a.get("hs_mult", 0), a.get("hs_shift", 0))


@dataclass(frozen=True, kw_only=True)
class GemmOp(QOp):
    """Fields shared by conv and dense: the weight width, the fused activation and the GEMM params."""

    placement = OVERLAY
    w_bits: int = field(metadata=ATTR)
    act: int = field(default=0, metadata=ATTR)
    six: int = field(default=0, metadata=ATTR)
    three: int = field(default=0, metadata=ATTR)
    hs_mult: int = field(default=0, metadata=ATTR)
    hs_shift: int = field(default=0, metadata=ATTR)
    weight: np.ndarray = field(metadata=PARAM)
    bias: np.ndarray = field(metadata=PARAM)
    mult: np.ndarray = field(metadata=PARAM)
    shift: np.ndarray = field(metadata=PARAM)
    w_scale: np.ndarray | None = field(default=None, metadata=PARAM)

    @property
    def act_params(self) -> ActParams:
        """The fused activation's integer constants."""
        return ActParams(Act(self.act), self.six, self.three, self.hs_mult, self.hs_shift)

    def accumulate(self, x: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
        """The float64 sums of ``x`` times the weights (exact integers; :func:`gemm_accumulate` checks them)."""
        raise NotImplementedError

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        return self.finish(_checked(self.accumulate(ins[0]), self.kind), out)

    @classmethod
    def run_node(cls, node: QNode, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        op = cls.from_node(node)
        return op.finish(_checked(op.accumulate(ins[0]), node.name), out)

    def finish(self, acc: np.ndarray, out: QTensor) -> np.ndarray:
        """Bias, dyadic requant, fused activation and clamp of the int32 accumulators."""
        return postprocess(acc, self.bias, self.mult, self.shift, self.act_params, out.bits, out.signed)

    def gemm_blocks(self, x_shape: tuple[int, ...], lanes: int) -> list[GemmBlock]:
        """The GEMMs the overlay runs for an input of shape ``x_shape``."""
        raise NotImplementedError

    def exp_cycles(self, engine: EngineGeometry, x_shape: tuple[int, ...]) -> int:
        """Expected ``CYC_COMPUTE``: one engine beat per (row, k-word, lane group) of every N-tile."""
        return sum(m * kb * nb for m, kb, nb, _w in self._tiles(engine, x_shape))

    def min_total_cycles(self, engine: EngineGeometry, x_shape: tuple[int, ...]) -> int:
        """A lower bound on ``CYC_TOTAL``: each tile's weight words are received before its beats."""
        return sum(m * kb * nb + w for m, kb, nb, w in self._tiles(engine, x_shape))

    def _tiles(self, engine: EngineGeometry, x_shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
        """Per N-tile job: ``(rows, k-words, lane groups, weight words)``."""
        tiles = []
        for m, k, n, _c0 in self.gemm_blocks(x_shape, engine.lanes):
            width = engine.tile_n(k, n)
            kb = -(-k // engine.tree)
            for c0 in range(0, n, width):
                nb = -(-min(width, n - c0) // engine.lanes)
                tiles.append((m, kb, nb, nb * kb * engine.lanes))
        return tiles

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        lb = ctx.bitconfig[layer.name]
        x = ins[0]
        if x.bits > lb.a_bits:  # narrow the input for this engine
            req = ctx.add(QTensor(f"{layer.name}__in", x.shape, ctx.scale(x.name, lb.a_bits, x.signed), lb.a_bits, x.signed))
            ctx.emit(Requant.for_scales(x.scale, req.scale).to_node(req.name, [x.name], req.name))
            x = req
        act, act_layer = ctx.plan.act(layer.name)
        y = ctx.new_tensor(layer, signed=act not in (Act.RELU, Act.RELU6))
        if act in (Act.RELU6, Act.HSWISH):
            # ReLU6/h-swish constants round(3/s) must fit the int16 pre-clamp: a (near-)dead
            # tensor with a tiny range gets the smallest scale that still represents 3.0;
            # a very coarse one (2-bit codes over a range > 6) is capped at 6.0 so that
            # round(3 / scale) >= 1 and the ReLU6/h-swish constants stay nonzero.
            y.scale = min(max(y.scale, 3.0 / HSWISH_CLAMP), 6.0)
        wgrid = ctx.hints.weights.get(layer.name)
        wgrid = wgrid if wgrid is not None and wgrid.bits == lb.w_bits else None
        node = gemm_node(cast("Conv2D | DenseLayer", layer), x, y, lb.w_bits, act, y.name, ctx.weight_clip,
                         ctx.grams.get(layer.name), wgrid)
        node.fused = [act_layer.name] if act_layer else []
        ctx.emit(node)


def _checked(acc: np.ndarray, name: str) -> np.ndarray:
    ops.exact_int_matmul_check(acc)
    acc = acc.astype(np.int64)
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise AccumulatorOverflow(f"accumulator of {name!r} overflows int32")
    return acc


@register
@dataclass(frozen=True, kw_only=True)
class Conv(GemmOp):
    """2-D convolution (groups: ungrouped, depthwise or grouped), explicit padding."""

    kind = "conv"
    kernel: tuple[int, int] = field(default=(1, 1), metadata=ATTR)
    strides: tuple[int, int] = field(default=(1, 1), metadata=ATTR)
    padding: tuple[int, int, int, int] = field(default=(0, 0, 0, 0), metadata=ATTR)
    groups: int = field(default=1, metadata=ATTR)

    layer_type = Conv2D

    def accumulate(self, x: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
        w = self.weight if weight is None else weight
        return ops.conv2d(np.asarray(x, np.float64), np.asarray(w, np.float64), self.strides, self.padding, self.groups)

    def gemm_blocks(self, x_shape: tuple[int, ...], lanes: int) -> list[GemmBlock]:
        kh, kw, cin_g, cout = self.weight.shape
        n_img, h, wd, _c = x_shape
        t, b, lft, r = self.padding
        sh, sw = self.strides
        m = n_img * ((h + t + b - kh) // sh + 1) * ((wd + lft + r - kw) // sw + 1)
        if self.groups == 1:
            return [GemmBlock(m, kh * kw * cin_g, cout, 0)]
        if cin_g == 1 and cout == self.groups:  # depthwise, multiplier 1: block-diagonal over lanes channels
            return [GemmBlock(m, kh * kw * min(lanes, cout - c0), min(lanes, cout - c0), c0) for c0 in range(0, cout, lanes)]
        cout_g = cout // self.groups
        return [GemmBlock(m, kh * kw * cin_g, cout_g, g * cout_g) for g in range(self.groups)]


@register
@dataclass(frozen=True, kw_only=True)
class Dense(GemmOp):
    """Fully connected layer on the last axis."""

    kind = "dense"

    layer_type = DenseLayer

    def accumulate(self, x: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
        w = self.weight if weight is None else weight
        return np.asarray(x, np.float64) @ np.asarray(w, np.float64)

    def gemm_blocks(self, x_shape: tuple[int, ...], lanes: int) -> list[GemmBlock]:
        k, n = self.weight.shape
        return [GemmBlock(int(np.prod(x_shape[:-1])), k, n, 0)]


def gemm_accumulate(node: QNode, x: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Exact integer accumulators (int64 array holding int32 values) of a conv/dense node."""
    op = node.op
    if not isinstance(op, GemmOp):
        raise TypeError(f"node {node.name!r} of kind {node.kind} is not a GEMM")
    return _checked(op.accumulate(x, weight), node.name)


def gemm_node(layer: Conv2D | DenseLayer, x: QTensor, y: QTensor, bits: int, act: Act, out_name: str,
              weight_clip: str = "max", gram: LayerGram | None = None, grid: WeightGrid | None = None) -> QNode:
    """The quantized node of a conv/dense layer reading ``x`` and writing ``y`` at ``bits`` weights."""
    w = layer.params["kernel"]
    w_q, s_w = quantize_weights(w, bits, weight_clip, gram, layer.groups if isinstance(layer, Conv2D) else 1, grid)
    b = layer.params["bias"].astype(np.float64) if layer.use_bias else np.zeros(w.shape[-1])
    bias_q = np.clip(round_half_up(b / (x.scale * s_w)), INT32_MIN, INT32_MAX).astype(np.int64)
    mult, shift = dyadic(x.scale * s_w / y.scale)
    ap = ActParams.for_scale(act, y.scale)
    # int8 storage, not int64: ResNet-18's codes would take 94 MB of a 512 MB board.
    common: dict[str, Any] = {"w_bits": bits, "act": int(ap.act), "six": ap.six, "three": ap.three, "hs_mult": ap.hs_mult,
              "hs_shift": ap.hs_shift, "weight": w_q.astype(code_dtype(bits)), "w_scale": s_w, "bias": bias_q,
              "mult": mult, "shift": shift}
    op: GemmOp
    if isinstance(layer, Conv2D):
        op = Conv(kernel=pair(layer.kernel), strides=pair(layer.strides), padding=quad(layer.padding),
                  groups=layer.groups, **common)
    else:
        op = Dense(**common)
    return op.to_node(layer.name, [x.name], out_name)


__all__ = ["AccumulatorOverflow", "Conv", "Dense", "EngineGeometry", "GemmBlock", "GemmOp", "act_params",
           "gemm_accumulate", "gemm_node"]
