"""The quantized IR's containers: integer tensors, nodes and the graph.

A :class:`QNode` is the stored form of one op: ``kind`` names its op class in
:mod:`codesign.quant.ops` and ``attrs``/``params`` hold that class's fields (scalars and
tuples in ``attrs``, arrays in ``params``), which is what ``qgraph.json``/``qparams.npz`` store.
:attr:`QNode.op` reads the typed op back; code that does arithmetic uses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from codesign.graph.ir import Shape
from codesign.quant.bitconfig import BitConfig
from codesign.quant.dyadic import qrange, quantize

if TYPE_CHECKING:
    from codesign.quant.ops.base import QOp


@dataclass
class QTensor:
    """An integer tensor: ``real = code * scale`` with codes in the (bits, signed) range."""

    name: str
    shape: Shape
    scale: float
    bits: int
    signed: bool

    @property
    def qmin(self) -> int:
        """Smallest code."""
        return qrange(self.bits, self.signed)[0]

    @property
    def qmax(self) -> int:
        """Largest code."""
        return qrange(self.bits, self.signed)[1]


@dataclass
class QNode:
    """One integer operation. ``name`` is the IR layer it came from (BitConfig key for GEMMs)."""

    name: str
    kind: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    fused: list[str] = field(default_factory=list)

    @property
    def op(self) -> QOp:
        """The typed op this node stores (read from ``attrs``/``params`` on each access)."""
        from codesign.quant.ops.base import op_class

        return op_class(self.kind).from_node(self)

    @property
    def is_gemm(self) -> bool:
        """True for the nodes that run on the accelerator (conv/dense)."""
        from codesign.quant.ops.base import OVERLAY, op_class

        return op_class(self.kind).placement == OVERLAY


@dataclass
class QGraph:
    """A quantized model: nodes in topological order over integer tensors."""

    name: str
    input: str
    output: str
    softmax: bool
    tensors: dict[str, QTensor]
    nodes: list[QNode]
    bitconfig: BitConfig

    def node(self, name: str) -> QNode:
        """Node by name."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r} in quantized model {self.name!r}")

    def gemm_nodes(self) -> list[QNode]:
        """Conv/dense nodes, in order."""
        return [n for n in self.nodes if n.is_gemm]

    def with_params(self, name: str, **params: np.ndarray) -> QGraph:
        """Copy with some params of one node replaced (e.g. masked weights for MQE)."""
        nodes = []
        for n in self.nodes:
            if n.name == name:
                n = replace(n, params={**n.params, **params})
            nodes.append(n)
        return replace(self, nodes=nodes)

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float input batch -> integer codes of the input tensor."""
        t = self.tensors[self.input]
        return quantize(x, t.scale, t.bits, t.signed)

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        """Integer output codes -> real values (logits before the trailing softmax)."""
        return np.asarray(y, np.float64) * self.tensors[self.output].scale


__all__ = ["QGraph", "QNode", "QTensor"]
