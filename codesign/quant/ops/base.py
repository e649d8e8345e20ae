"""The base of every quantized op: typed fields, storage in a QNode, registry, lowering context.

An op is a frozen dataclass. Each field is declared with ``field(metadata=ATTR)`` (a scalar or tuple,
stored in ``QNode.attrs``) or ``field(metadata=PARAM)`` (an array, stored in ``QNode.params``), so
:meth:`QOp.from_node` / :meth:`QOp.to_node` translate between the typed op and the stored
node, whose format (``qgraph.json`` + ``qparams.npz``) is unchanged. ``register`` files the
class under its ``kind``: the golden model, OQA and the exporters dispatch on the class.

Per op class (FINN's one class per operator):

* ``accepts(layer)`` / ``lower(layer, ins, ctx)``: its part of quantization, from an IR layer;
* ``run(ins, out)``: its integer golden semantics;
* ``placement``: ``"overlay"`` (a GEMM engine runs it) or ``"ps"`` (the CPU runs the golden op);
* ``transparent``: it keeps its input's scale, so its input takes the width its consumers ask;
* overlay ops add ``exp_cycles(...)``, the analytic cycle count of the overlay's structure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

import numpy as np

from codesign.errors import UnsupportedLayerError
from codesign.graph.ir import Layer
from codesign.quant.dyadic import qrange, quantize_multipliers, saturate
from codesign.quant.qir import QNode, QTensor

if TYPE_CHECKING:
    from codesign.graph.ir import Graph
    from codesign.graph.quant_hints import QuantHints
    from codesign.quant.bitconfig import BitConfig
    from codesign.quant.calibrate import TensorRange
    from codesign.quant.fusion import FusionPlan
    from codesign.quant.gptq import LayerGram

OVERLAY: Literal["overlay"] = "overlay"
PS: Literal["ps"] = "ps"
_STORE = "store"
# field metadata: where a field is stored. ATTR: ``QNode.attrs`` (scalars, tuples); PARAM:
# ``QNode.params`` (arrays; a None value is not stored).
ATTR: dict[str, str] = {_STORE: "attrs"}
PARAM: dict[str, str] = {_STORE: "params"}


OpT = TypeVar("OpT", bound="QOp")


@dataclass(frozen=True, kw_only=True)
class QOp:
    """One quantized op (subclasses are frozen dataclasses whose fields carry ATTR or PARAM metadata)."""

    kind: ClassVar[str] = ""
    placement: ClassVar[Literal["overlay", "ps"]] = PS
    transparent: ClassVar[bool] = False
    layer_type: ClassVar[type[Layer] | None] = None  # the IR layer class that lowers to this op (see accepts)

    @classmethod
    def from_node(cls: type[OpT], node: QNode) -> OpT:
        """The typed op a stored node holds (missing optional fields take their defaults)."""
        kw: dict[str, Any] = {}
        for name, in_attrs, required in _schema(cls):
            store = node.attrs if in_attrs else node.params
            if name in store:
                kw[name] = store[name]
            elif required:
                raise KeyError(f"{cls.kind} node {node.name!r} has no {name!r}")
        return cls(**kw)

    def to_node(self, name: str, inputs: list[str], output: str, fused: list[str] | None = None) -> QNode:
        """The stored form: attrs and params by field name."""
        attrs: dict[str, Any] = {}
        params: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get(_STORE) == "attrs":
                attrs[f.name] = value
            elif value is not None:
                params[f.name] = value
        return QNode(name, self.kind, inputs, output, attrs, params, list(fused or []))

    @classmethod
    def accepts(cls, layer: Layer) -> bool:
        """True when an IR layer lowers to this op: by default, when it is a ``layer_type``."""
        return cls.layer_type is not None and isinstance(layer, cls.layer_type)

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        """Quantize ``layer`` (inputs ``ins``): create its output tensor and emit its node(s)."""
        raise UnsupportedLayerError(f"layer {layer.name!r} of type {layer.op} cannot be quantized.")

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        """Integer golden semantics: input codes -> output codes (int64)."""
        raise NotImplementedError(f"{type(self).__name__}.run")

    @classmethod
    def run_node(cls, node: QNode, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        """``run`` of the op a stored node holds (the golden model's table entry)."""
        return cls.from_node(node).run(ins, out)


_SCHEMAS: dict[type[QOp], list[tuple[str, bool, bool]]] = {}


def _schema(cls: type[QOp]) -> list[tuple[str, bool, bool]]:
    """``(field, stored in attrs, required)`` per field, once per class (the golden model asks per node)."""
    if cls not in _SCHEMAS:
        _SCHEMAS[cls] = [(f.name, f.metadata.get(_STORE) == "attrs", f.default is MISSING) for f in fields(cls)]
    return _SCHEMAS[cls]


# Importing this module runs the package's __init__ first, which imports (and so registers)
# every built-in op module: the registry is complete whenever a lookup can run.
_REGISTRY: dict[str, type[QOp]] = {}


def register(cls: type[OpT]) -> type[OpT]:
    """Class decorator: file an op class under its ``kind`` (a new op is one module)."""
    if not cls.kind:
        raise ValueError(f"op class {cls.__name__} has no kind")
    known = _REGISTRY.get(cls.kind)
    if known is not None and known is not cls:  # the kind names the class in saved files: one owner
        raise ValueError(f"op kind {cls.kind!r} is already registered by {known.__name__}")
    _REGISTRY[cls.kind] = cls
    return cls


def unregister(cls: type[QOp]) -> None:
    """Remove an op class (for tests that register a toy op)."""
    if _REGISTRY.get(cls.kind) is cls:
        del _REGISTRY[cls.kind]


def op_class(kind: str) -> type[QOp]:
    """The op class stored nodes of ``kind`` hold."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise UnsupportedLayerError(f"quantized op kind {kind!r} is unknown (known: {', '.join(sorted(_REGISTRY))}).") from None


def op_classes() -> dict[str, type[QOp]]:
    """Every registered op class by kind."""
    return dict(_REGISTRY)


def op_for_layer(layer: Layer) -> type[QOp]:
    """The op class an IR layer lowers to; UnsupportedLayerError when none does.

    The most recently registered class that accepts the layer wins, so a plug-in op can take
    a layer kind over from a built-in one (the built-ins accept disjoint layers).
    """
    for cls in reversed(op_classes().values()):
        if cls.accepts(layer):
            return cls
    raise UnsupportedLayerError(f"layer {layer.name!r} of type {layer.op} cannot be quantized.")


# ------------------------------------------------------------------------------------------
# helpers the op modules share
# ------------------------------------------------------------------------------------------


def pair(t: Sequence[int]) -> tuple[int, int]:
    """A 2-tuple (kernel, strides, pool) as the IR stores it (lists once loaded from JSON)."""
    a, b = t
    return (a, b)


def quad(t: Sequence[int]) -> tuple[int, int, int, int]:
    """A ``(top, bottom, left, right)`` padding or cropping."""
    top, bottom, left, right = t
    return (top, bottom, left, right)


def clamp(y: np.ndarray, out: QTensor) -> np.ndarray:
    """Saturate codes to the output tensor's range."""
    return saturate(y, out.qmin, out.qmax)


def dyadic(real: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mult, shift)`` of the dyadic multiplier(s) closest to ``real``."""
    return quantize_multipliers(np.asarray(real, np.float64))


@dataclass
class LowerCtx:
    """What lowering one layer needs: the planned widths, ranges and the nodes emitted so far."""

    graph: Graph
    bitconfig: BitConfig
    ranges: dict[str, TensorRange]
    demand: dict[str, int | None]
    plan: FusionPlan
    hints: QuantHints
    grams: dict[str, LayerGram]
    weight_clip: str = "max"
    tensors: dict[str, QTensor] = field(default_factory=dict)
    nodes: list[QNode] = field(default_factory=list)

    def scale(self, tensor: str, bits: int, signed: bool) -> float:
        """Scale of ``tensor`` at a width, from its calibrated range."""
        rng = self.ranges[tensor]
        lo, hi = qrange(bits, signed)
        mag = max(abs(rng.lo), abs(rng.hi)) if signed else max(rng.hi, 0.0)
        if rng.samples is not None:  # "mse" calibration: the best clip depends on the width
            mag = rng.mse_clip(mag, hi, lo)
        return mag / hi if mag > 0 else 1.0 / hi

    def new_tensor(self, layer: Layer, signed: bool, src: QTensor | None = None) -> QTensor:
        """The output tensor of ``layer`` at its planned width (``src``: keep that tensor's grid)."""
        name = self.plan.out_tensor[layer.name]
        shape = self.graph[name].output_shape
        bits = self.demand.get(name) or self.bitconfig.default_act_bits
        grid = self.hints.tensors.get(name)
        if src is not None:  # transparent op: same scale and width (sign may only narrow)
            t = QTensor(name, shape, src.scale, src.bits, signed)
        elif grid is not None and grid.bits == bits:  # the model's own quantizer fixes this tensor
            t = QTensor(name, shape, grid.scale, bits, grid.signed)
        else:
            t = QTensor(name, shape, self.scale(name, bits, signed), bits, signed)
        self.tensors[name] = t
        return t

    def add(self, tensor: QTensor) -> QTensor:
        """Register a tensor that is no layer's output (e.g. a requantized GEMM input)."""
        self.tensors[tensor.name] = tensor
        return tensor

    def emit(self, node: QNode) -> QNode:
        """Append a node."""
        self.nodes.append(node)
        return node


F = TypeVar("F")


class HandlerTable(Generic[F]):
    """Per-op-class handlers of one consumer (an exporter): registered by decorator, looked up
    along the class hierarchy, so a subclass of an op inherits its base's handler."""

    def __init__(self) -> None:
        self.handlers: dict[type[QOp], F] = {}

    def register(self, *classes: type[QOp]) -> Any:
        """Decorator: ``fn`` handles nodes whose op is one of ``classes``."""

        def deco(fn: F) -> F:
            for cls in classes:
                self.handlers[cls] = fn
            return fn

        return deco

    def lookup(self, op_cls: type[QOp]) -> F | None:
        """The handler of ``op_cls`` or of its nearest registered base class (None: no handler)."""
        for cls in op_cls.__mro__:
            if cls in self.handlers:
                return self.handlers[cls]
        return None


__all__ = ["ATTR", "OVERLAY", "PARAM", "PS", "HandlerTable", "LowerCtx", "QOp", "clamp", "dyadic", "op_class", "op_classes",
           "op_for_layer", "pair", "quad", "register", "unregister"]
