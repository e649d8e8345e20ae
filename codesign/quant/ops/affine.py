"""``affine``: a per-channel ``scale * x + offset`` (e.g. input rescaling), signed dyadic."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codesign.graph.ir import Affine as AffineLayer
from codesign.graph.ir import Layer
from codesign.quant.dyadic import requantize, round_half_up
from codesign.quant.ops.base import PARAM, LowerCtx, QOp, clamp, dyadic, register
from codesign.quant.qir import QTensor


@register
@dataclass(frozen=True, kw_only=True)
class Affine(QOp):
    """``y = sat(requant(x * sign) + offset)``: the multiplier magnitude is dyadic, its sign separate."""

    kind = "affine"
    mult: np.ndarray = field(metadata=PARAM)
    shift: np.ndarray = field(metadata=PARAM)
    sign: np.ndarray = field(metadata=PARAM)
    offset: np.ndarray = field(metadata=PARAM)

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        return clamp(requantize(ins[0] * self.sign, self.mult, self.shift) + self.offset, out)

    layer_type = AffineLayer

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        x = ins[0]
        y = ctx.new_tensor(layer, signed=True)
        sc = np.broadcast_to(layer.params["scale"].astype(np.float64), (x.shape[-1],))
        off = np.broadcast_to(layer.params["offset"].astype(np.float64), (x.shape[-1],))
        mult, shift = dyadic(np.abs(sc) * x.scale / y.scale)
        op = cls(mult=mult, shift=shift, sign=np.where(sc < 0, -1, 1).astype(np.int64),
                 offset=round_half_up(off / y.scale).astype(np.int64))
        ctx.emit(op.to_node(layer.name, [x.name], y.name))
