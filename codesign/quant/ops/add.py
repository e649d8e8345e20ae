"""``add``: the residual add, two inputs rescaled onto one grid, with a fused ReLU/ReLU6."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from codesign.graph.ir import Add as AddLayer
from codesign.graph.ir import Layer
from codesign.quant.dyadic import MAX_SHIFT, Act, ActParams, apply_activation, requantize
from codesign.quant.ops.base import ATTR, PARAM, LowerCtx, QOp, clamp, register
from codesign.quant.qir import QTensor


@register
@dataclass(frozen=True, kw_only=True)
class Add(QOp):
    """``y = act((a*mult_a + b*mult_b + 2^(shift-1)) >> shift)``: two multipliers sharing one shift."""

    kind = "add"
    act: int = field(default=0, metadata=ATTR)
    six: int = field(default=0, metadata=ATTR)
    mult_a: np.ndarray | np.int64 = field(metadata=PARAM)  # scalars (0-d arrays once loaded)
    mult_b: np.ndarray | np.int64 = field(metadata=PARAM)
    shift: np.ndarray | np.int64 = field(metadata=PARAM)

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        s = ins[0].astype(np.int64) * self.mult_a + ins[1].astype(np.int64) * self.mult_b
        q = requantize(s, 1, np.asarray(self.shift))
        return clamp(apply_activation(q, ActParams(Act(self.act), self.six)), out)

    layer_type = AddLayer

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        act, act_layer = ctx.plan.act(layer.name)
        y = ctx.new_tensor(layer, act == Act.NONE and (ins[0].signed or ins[1].signed))
        ap = ActParams.for_scale(act, y.scale)
        ma, mb = ins[0].scale / y.scale, ins[1].scale / y.scale
        e = math.frexp(max(ma, mb))[1]  # max(m) in [2^(e-1), 2^e)
        shift = int(np.clip(31 - e, 0, MAX_SHIFT))
        op = cls(act=int(ap.act), six=ap.six, mult_a=np.int64(round(ma * 2.0**shift)),
                 mult_b=np.int64(round(mb * 2.0**shift)), shift=np.int64(shift))
        ctx.emit(op.to_node(layer.name, [i.name for i in ins], y.name, [act_layer.name] if act_layer else []))
