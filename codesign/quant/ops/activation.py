"""Standalone activations: ``relu``/``relu6`` (keep the grid), ``hswish``/``hsigmoid`` (dyadic), ``lut`` (sigmoid).

ReLU, ReLU6 and h-swish right after a conv/dense/add fuse into that op instead
(:mod:`codesign.quant.fusion`); these classes are the ones left standing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from codesign.graph.ir import Activation, Layer
from codesign.quant.dyadic import HSWISH_CLAMP, quantize, requantize, round_half_up
from codesign.quant.ops.base import ATTR, PARAM, LowerCtx, QOp, clamp, dyadic, register
from codesign.quant.qir import QTensor


@dataclass(frozen=True, kw_only=True)
class ActivationOp(QOp):
    """An op lowered from an ``Activation`` layer of kind :attr:`act_kind`."""

    act_kind: ClassVar[str] = ""

    @classmethod
    def accepts(cls, layer: Layer) -> bool:
        return isinstance(layer, Activation) and layer.kind == cls.act_kind


@register
@dataclass(frozen=True, kw_only=True)
class Relu(ActivationOp):
    """``max(x, 0)`` on the input's grid."""

    kind = act_kind = "relu"
    transparent = True

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        return np.maximum(ins[0], 0)

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        y = ctx.new_tensor(layer, False, src=ins[0])
        ctx.emit(cls().to_node(layer.name, [ins[0].name], y.name))


@register
@dataclass(frozen=True, kw_only=True)
class Relu6(ActivationOp):
    """``clip(x, 0, six)`` on the input's grid, ``six = round(6 / scale)``."""

    kind = act_kind = "relu6"
    transparent = True
    six: int = field(metadata=ATTR)

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        return np.clip(ins[0], 0, self.six)

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        y = ctx.new_tensor(layer, False, src=ins[0])
        ctx.emit(cls(six=int(round_half_up(6.0 / ins[0].scale))).to_node(layer.name, [ins[0].name], y.name))


@dataclass(frozen=True, kw_only=True)
class HardOp(ActivationOp):
    """h-swish / h-sigmoid: ``r = clip(x + three, 0, six)``, ``six = 2 * three = round(6 / s_x)``."""

    three: int = field(metadata=ATTR)
    six: int = field(metadata=ATTR)
    mult: np.ndarray = field(metadata=PARAM)
    shift: np.ndarray = field(metadata=PARAM)
    signed_out: ClassVar[bool] = False

    @classmethod
    def multiplier(cls, x: QTensor, y: QTensor, three: int) -> float:
        """The real factor the dyadic multiplier stands for."""
        raise NotImplementedError

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        x = ins[0]
        y = ctx.new_tensor(layer, signed=cls.signed_out)
        three = int(round_half_up(3.0 / x.scale))
        mult, shift = dyadic(cls.multiplier(x, y, three))
        ctx.emit(cls(three=three, six=2 * three, mult=mult, shift=shift).to_node(layer.name, [x.name], y.name))


@register
@dataclass(frozen=True, kw_only=True)
class HSwish(HardOp):
    """``requant(x * clip(x + three, 0, six))`` after the int16 pre-clamp of ``x``."""

    kind = act_kind = "hswish"
    signed_out = True

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        qc = np.clip(ins[0], -HSWISH_CLAMP, HSWISH_CLAMP - 1)
        r = np.clip(qc + self.three, 0, self.six)
        return clamp(requantize(qc * r, self.mult, self.shift), out)

    @classmethod
    def multiplier(cls, x: QTensor, y: QTensor, three: int) -> float:
        return x.scale / (2 * three * y.scale)


@register
@dataclass(frozen=True, kw_only=True)
class HSigmoid(HardOp):
    """``requant(clip(x + three, 0, six))``."""

    kind = act_kind = "hsigmoid"

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        r = np.clip(ins[0] + self.three, 0, self.six)
        return clamp(requantize(r, self.mult, self.shift), out)

    @classmethod
    def multiplier(cls, x: QTensor, y: QTensor, three: int) -> float:
        return 1.0 / (2 * three * y.scale)


@register
@dataclass(frozen=True, kw_only=True)
class Lut(ActivationOp):
    """A table over every input code (sigmoid): ``y = lut[x - offset]``, exact."""

    kind = "lut"
    act_kind = "sigmoid"
    offset: int = field(metadata=ATTR)
    lut: np.ndarray = field(metadata=PARAM)

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        return self.lut[ins[0] - self.offset]

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        x = ins[0]
        y = ctx.new_tensor(layer, signed=False)
        codes = np.arange(x.qmin, x.qmax + 1, dtype=np.float64)
        lut = quantize(1.0 / (1.0 + np.exp(-codes * x.scale)), y.scale, y.bits, False)
        ctx.emit(cls(offset=x.qmin, lut=lut).to_node(layer.name, [x.name], y.name))
