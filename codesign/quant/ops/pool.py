"""Pooling: ``maxpool``/``gmaxpool`` (keep the grid) and ``avgpool``/``gavgpool`` (window sums, dyadic mean)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np

from codesign.graph import ops
from codesign.graph.ir import GlobalPool, Layer, Pool2D
from codesign.graph.ops import pool_counts
from codesign.quant.dyadic import requantize
from codesign.quant.ops.base import ATTR, PARAM, LowerCtx, QOp, clamp, dyadic, pair, quad, register
from codesign.quant.qir import QTensor


@register
@dataclass(frozen=True, kw_only=True)
class MaxPool(QOp):
    """Windowed maximum; padding never wins (the golden model pads with ``-inf``)."""

    kind = "maxpool"
    transparent = True
    pool: tuple[int, int] = field(metadata=ATTR)
    strides: tuple[int, int] = field(metadata=ATTR)
    padding: tuple[int, int, int, int] = field(metadata=ATTR)

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        return ops.pool2d(ins[0], "max", self.pool, self.strides, self.padding)

    @classmethod
    def accepts(cls, layer: Layer) -> bool:
        return isinstance(layer, Pool2D) and layer.kind == "max"

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        pl = cast(Pool2D, layer)
        y = ctx.new_tensor(layer, ins[0].signed, src=ins[0])
        op = cls(pool=pair(pl.pool), strides=pair(pl.strides), padding=quad(pl.padding))
        ctx.emit(op.to_node(layer.name, [ins[0].name], y.name))


@register
@dataclass(frozen=True, kw_only=True)
class GlobalMaxPool(QOp):
    """Maximum over H and W."""

    kind = "gmaxpool"
    transparent = True
    keepdims: bool = field(metadata=ATTR)

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        return ins[0].max(axis=(1, 2), keepdims=self.keepdims)

    @classmethod
    def accepts(cls, layer: Layer) -> bool:
        return isinstance(layer, GlobalPool) and layer.kind == "max"

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        y = ctx.new_tensor(layer, ins[0].signed, src=ins[0])
        ctx.emit(cls(keepdims=cast(GlobalPool, layer).keepdims).to_node(layer.name, [ins[0].name], y.name))


@register
@dataclass(frozen=True, kw_only=True)
class AvgPool(QOp):
    """Exact integer window sums (zero padding), then one dyadic multiplier per output position."""

    kind = "avgpool"
    pool: tuple[int, int] = field(metadata=ATTR)
    strides: tuple[int, int] = field(metadata=ATTR)
    padding: tuple[int, int, int, int] = field(metadata=ATTR)
    mult: np.ndarray = field(metadata=PARAM)
    shift: np.ndarray = field(metadata=PARAM)

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        xp = ops.pad_nhwc(ins[0], self.padding, 0)
        total = ops.windows(xp, self.pool, self.strides).sum(axis=(-2, -1), dtype=np.int64)
        return clamp(requantize(total, self.mult, self.shift), out)

    @classmethod
    def accepts(cls, layer: Layer) -> bool:
        return isinstance(layer, Pool2D) and layer.kind != "max"

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        pl = cast(Pool2D, layer)
        x = ins[0]
        y = ctx.new_tensor(layer, x.signed)
        counts = pool_counts(x.shape[:2], pl.pool, pl.strides, pl.padding)
        mult, shift = dyadic(x.scale / (counts * y.scale))
        op = cls(pool=pair(pl.pool), strides=pair(pl.strides), padding=quad(pl.padding), mult=mult, shift=shift)
        ctx.emit(op.to_node(layer.name, [x.name], y.name))


@register
@dataclass(frozen=True, kw_only=True)
class GlobalAvgPool(QOp):
    """Exact integer sum over H and W, then the dyadic ``1 / (H*W)`` rescale."""

    kind = "gavgpool"
    keepdims: bool = field(metadata=ATTR)
    mult: np.ndarray = field(metadata=PARAM)
    shift: np.ndarray = field(metadata=PARAM)

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        total = ins[0].sum(axis=(1, 2), keepdims=self.keepdims, dtype=np.int64)
        return clamp(requantize(total, self.mult, self.shift), out)

    @classmethod
    def accepts(cls, layer: Layer) -> bool:
        return isinstance(layer, GlobalPool) and layer.kind != "max"

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        x = ins[0]
        y = ctx.new_tensor(layer, x.signed)
        mult, shift = dyadic(x.scale / (np.asarray(x.shape[0] * x.shape[1], np.float64) * y.scale))
        op = cls(keepdims=cast(GlobalPool, layer).keepdims, mult=mult, shift=shift)
        ctx.emit(op.to_node(layer.name, [x.name], y.name))
