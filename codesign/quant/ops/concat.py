"""``concat``: channel concatenation, each input's channels requantized onto the output's one scale."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codesign.graph.ir import Concat as ConcatLayer
from codesign.graph.ir import Layer
from codesign.quant.dyadic import requantize
from codesign.quant.ops.base import PARAM, LowerCtx, QOp, clamp, dyadic, register
from codesign.quant.qir import QTensor


@register
@dataclass(frozen=True, kw_only=True)
class Concat(QOp):
    """``y = sat(requant(concat(x...)))`` with one dyadic multiplier per output channel."""

    kind = "concat"
    mult: np.ndarray = field(metadata=PARAM)
    shift: np.ndarray = field(metadata=PARAM)

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        x = np.concatenate([np.asarray(i, np.int64) for i in ins], axis=-1)
        return clamp(requantize(x, self.mult, self.shift), out)

    layer_type = ConcatLayer

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        # Inputs arrive at their own scales; the output gets one scale from its calibrated range
        # (which covers every input), and each input's channels are requantized onto it by their
        # own dyadic multiplier (exact when an input already has that scale).
        y = ctx.new_tensor(layer, signed=any(i.signed for i in ins))
        mult, shift = dyadic(np.concatenate([np.full(i.shape[-1], i.scale / y.scale) for i in ins]))
        ctx.emit(cls(mult=mult, shift=shift).to_node(layer.name, [i.name for i in ins], y.name))
