"""``mul``: the elementwise product (the squeeze-excite gate), requantized onto the output grid."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codesign.graph.ir import Layer, Multiply
from codesign.quant.dyadic import requantize
from codesign.quant.ops.base import PARAM, LowerCtx, QOp, clamp, dyadic, register
from codesign.quant.qir import QTensor


@register
@dataclass(frozen=True, kw_only=True)
class Mul(QOp):
    """``y = sat(requant(a * b))`` with broadcasting (a ``[1, 1, C]`` gate over ``[H, W, C]``)."""

    kind = "mul"
    mult: np.ndarray = field(metadata=PARAM)
    shift: np.ndarray = field(metadata=PARAM)

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        return clamp(requantize(ins[0] * ins[1], self.mult, self.shift), out)

    layer_type = Multiply

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        y = ctx.new_tensor(layer, ins[0].signed or ins[1].signed)
        mult, shift = dyadic(ins[0].scale * ins[1].scale / y.scale)
        ctx.emit(cls(mult=mult, shift=shift).to_node(layer.name, [i.name for i in ins], y.name))
