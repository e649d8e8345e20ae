"""The integer golden model: runs a ``QGraph`` on integer tensors only.

Every node maps int64 code arrays to int64 code arrays with the semantics of
``codesign.quant.dyadic``; each op's ``run`` (one module per op, :mod:`codesign.quant.ops`)
defines them, and :data:`INT_OPS` looks them up by node kind. GEMMs (conv/dense) compute
their exact integer sums through float64 BLAS: each product of two <= 8-bit codes and every partial sum are integers far
below 2^53, so the float64 result is the exact integer (checked), and the int32 accumulator
bound of the hardware is asserted on top. The trailing softmax, if any, is not part of the
integer model: :meth:`GoldenModel.predict` applies it in float to the dequantized logits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np

from codesign.errors import UnsupportedLayerError
from codesign.graph import ops
from codesign.quant.ops import op_class, op_classes
from codesign.quant.ops.gemm import AccumulatorOverflow, act_params, gemm_accumulate
from codesign.quant.qir import QGraph, QNode, QTensor

NodeOp = Callable[[QNode, list[np.ndarray], QTensor], np.ndarray]


class _IntOps(Mapping[str, NodeOp]):
    """kind -> the golden function of that op class (a live view of the op registry)."""

    def __getitem__(self, kind: str) -> NodeOp:
        try:
            return op_class(kind).run_node
        except UnsupportedLayerError:
            raise KeyError(kind) from None

    def __iter__(self) -> Iterator[str]:
        return iter(op_classes())

    def __len__(self) -> int:
        return len(op_classes())


INT_OPS: Mapping[str, NodeOp] = _IntOps()


@dataclass
class Trace:
    """Integer inputs and output of every node of one run (the hardware test vectors)."""

    inputs: dict[str, list[np.ndarray]]
    outputs: dict[str, np.ndarray]


@overload
def run_nodes(
    qg: QGraph,
    x_q: np.ndarray | None,
    ops_table: Mapping[str, NodeOp],
    trace: Literal[True],
    start: int = 0,
    tensors: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, Trace]: ...
@overload
def run_nodes(
    qg: QGraph,
    x_q: np.ndarray | None,
    ops_table: Mapping[str, NodeOp],
    trace: bool = False,
    start: int = 0,
    tensors: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, Trace | None]: ...
def run_nodes(
    qg: QGraph,
    x_q: np.ndarray | None,
    ops_table: Mapping[str, NodeOp],
    trace: bool = False,
    start: int = 0,
    tensors: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, Trace | None]:
    """Walk the nodes with an op table; frees tensors after their last use.

    With ``tensors`` given, execution resumes at node ``start`` from ``tensors`` (every tensor
    produced before it, e.g. from a :class:`Trace`): sensitivity sweeps re-run only the
    suffix of the graph after the layer they perturb.
    """
    if tensors is None:
        x_q = np.asarray(x_q)
        want = qg.tensors[qg.input].shape
        if tuple(x_q.shape[1:]) != tuple(want):
            from codesign.errors import ShapeError

            raise ShapeError(f"input has shape {x_q.shape} but model {qg.name!r} expects (N, {', '.join(map(str, want))}).")
        acts = {qg.input: x_q.astype(np.int64)}
    else:
        acts = dict(tensors or {})
    last_use: dict[str, int] = {}
    for i, n in enumerate(qg.nodes):
        for t in n.inputs:
            last_use[t] = i
    tr = Trace({}, {}) if trace else None
    for i in range(start, len(qg.nodes)):
        n = qg.nodes[i]
        ins = [acts[t] for t in n.inputs]
        y = ops_table[n.kind](n, ins, qg.tensors[n.output])
        acts[n.output] = y
        if tr is not None:
            tr.inputs[n.name] = ins
            tr.outputs[n.name] = y
        else:
            for t in n.inputs:
                if last_use[t] == i and t != qg.output:
                    del acts[t]
    return acts[qg.output], tr


def tensors_before(qg: QGraph, tr: Trace, x_q: np.ndarray, index: int) -> dict[str, np.ndarray]:
    """Every tensor available before node ``index`` of a traced run (input included)."""
    out = {qg.input: np.asarray(x_q, np.int64)}
    for n in qg.nodes[:index]:
        out[n.output] = tr.outputs[n.name]
    return out


class GoldenModel:
    """Integer-only execution of a quantized graph (the reference for C-sim and RTL)."""

    def __init__(self, qg: QGraph) -> None:
        self.qg = qg

    def run(self, x_q: np.ndarray) -> np.ndarray:
        """Integer input codes -> integer output codes."""
        return run_nodes(self.qg, x_q, INT_OPS)[0]

    def trace(self, x_q: np.ndarray) -> Trace:
        """Run and keep every node's integer inputs and output."""
        return run_nodes(self.qg, x_q, INT_OPS, trace=True)[1]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Float input -> probabilities (or dequantized outputs when there is no softmax)."""
        y = self.qg.dequantize_output(self.run(self.qg.quantize_input(x)))
        return ops.softmax(y) if self.qg.softmax else y


__all__ = ["INT_OPS", "AccumulatorOverflow", "GoldenModel", "NodeOp", "Trace", "act_params", "gemm_accumulate",
           "run_nodes", "tensors_before"]
