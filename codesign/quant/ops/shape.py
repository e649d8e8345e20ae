"""Shape ops that keep the grid: ``pad`` (zeros), ``crop``, ``flatten``, ``reshape``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np

from codesign.graph import ops
from codesign.graph.ir import Crop2D, Flatten, Layer, Reshape, ZeroPad2D
from codesign.quant.ops.base import ATTR, LowerCtx, QOp, quad, register
from codesign.quant.qir import QTensor


@dataclass(frozen=True, kw_only=True)
class ShapeOp(QOp):
    """An op that moves codes without changing them: the output keeps the input's grid."""

    transparent = True

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        y = ctx.new_tensor(layer, ins[0].signed, src=ins[0])
        ctx.emit(cls.from_layer(layer).to_node(layer.name, [ins[0].name], y.name))

    @classmethod
    def from_layer(cls, layer: Layer) -> ShapeOp:
        """The op's fields from the IR layer."""
        return cls()


@register
@dataclass(frozen=True, kw_only=True)
class Pad(ShapeOp):
    """Zero padding ``(top, bottom, left, right)``."""

    kind = "pad"
    padding: tuple[int, int, int, int] = field(metadata=ATTR)

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        return ops.pad_nhwc(ins[0], self.padding, 0)

    layer_type = ZeroPad2D

    @classmethod
    def from_layer(cls, layer: Layer) -> ShapeOp:
        return cls(padding=quad(cast(ZeroPad2D, layer).padding))


@register
@dataclass(frozen=True, kw_only=True)
class Crop(ShapeOp):
    """Cropping ``(top, bottom, left, right)``."""

    kind = "crop"
    cropping: tuple[int, int, int, int] = field(metadata=ATTR)

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        return ops.crop_nhwc(ins[0], self.cropping)

    layer_type = Crop2D

    @classmethod
    def from_layer(cls, layer: Layer) -> ShapeOp:
        return cls(cropping=quad(cast(Crop2D, layer).cropping))


@register
@dataclass(frozen=True, kw_only=True)
class FlattenOp(ShapeOp):
    """``[N, ...] -> [N, prod(...)]``."""

    kind = "flatten"

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        return ins[0].reshape(ins[0].shape[0], -1)

    layer_type = Flatten


@register
@dataclass(frozen=True, kw_only=True)
class ReshapeOp(ShapeOp):
    """``[N, ...] -> [N, *target]``."""

    kind = "reshape"
    target: tuple[int, ...] = field(metadata=ATTR)

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        return ins[0].reshape(ins[0].shape[0], *self.target)

    layer_type = Reshape

    @classmethod
    def from_layer(cls, layer: Layer) -> ShapeOp:
        return cls(target=tuple(layer.output_shape))
