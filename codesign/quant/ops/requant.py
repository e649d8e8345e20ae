"""``requant``: rescale codes onto another grid (an engine's narrower input) by a dyadic multiplier."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codesign.quant.dyadic import requantize
from codesign.quant.ops.base import PARAM, QOp, clamp, dyadic, register
from codesign.quant.qir import QTensor


@register
@dataclass(frozen=True, kw_only=True)
class Requant(QOp):
    """``y = sat((x * mult + 2^(shift-1)) >> shift)``."""

    kind = "requant"
    mult: np.ndarray = field(metadata=PARAM)
    shift: np.ndarray = field(metadata=PARAM)

    @classmethod
    def for_scales(cls, s_in: float, s_out: float) -> Requant:
        """The requant from grid ``s_in`` to grid ``s_out``."""
        mult, shift = dyadic(s_in / s_out)
        return cls(mult=mult, shift=shift)

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        return clamp(requantize(ins[0], self.mult, self.shift), out)
