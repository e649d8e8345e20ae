"""The integer golden model: runs a ``QGraph`` on integer tensors only.

Every node maps int64 code arrays to int64 code arrays with the semantics of
``codesign.quant.dyadic``. GEMMs (conv/dense) compute their exact integer sums through
float64 BLAS: each product of two <= 8-bit codes and every partial sum are integers far
below 2^53, so the float64 result is the exact integer (checked), and the int32 accumulator
bound of the hardware is asserted on top. The trailing softmax, if any, is not part of the
integer model: :meth:`GoldenModel.predict` applies it in float to the dequantized logits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, overload

import numpy as np

from codesign.graph import ops
from codesign.quant.dyadic import (
    HSWISH_CLAMP,
    INT32_MAX,
    INT32_MIN,
    Act,
    ActParams,
    apply_activation,
    postprocess,
    requantize,
    saturate,
)
from codesign.quant.qgraph import QGraph, QNode, QTensor


class AccumulatorOverflow(ArithmeticError):
    """A GEMM accumulator left the int32 range the hardware provides."""


def gemm_accumulate(node: QNode, x: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Exact integer accumulators (int64 array holding int32 values) of a conv/dense node."""
    w = node.params["weight"] if weight is None else weight
    xf = np.asarray(x, np.float64)
    wf = np.asarray(w, np.float64)
    if node.kind == "conv":
        acc = ops.conv2d(xf, wf, node.attrs["strides"], node.attrs["padding"], node.attrs["groups"])
    else:
        acc = xf @ wf
    ops.exact_int_matmul_check(acc)
    acc = acc.astype(np.int64)
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise AccumulatorOverflow(f"accumulator of {node.name!r} overflows int32")
    return acc


def act_params(node: QNode) -> ActParams:
    """The fused activation constants stored on a node."""
    a = node.attrs
    return ActParams(Act(a.get("act", 0)), a.get("six", 0), a.get("three", 0), a.get("hs_mult", 0), a.get("hs_shift", 0))


def _gemm(node: QNode, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
    acc = gemm_accumulate(node, ins[0])
    p = node.params
    return postprocess(acc, p["bias"], p["mult"], p["shift"], act_params(node), out.bits, out.signed)


def _clamp(y: np.ndarray, out: QTensor) -> np.ndarray:
    return saturate(y, out.qmin, out.qmax)


def _add(node: QNode, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
    p = node.params
    s = ins[0].astype(np.int64) * p["mult_a"] + ins[1].astype(np.int64) * p["mult_b"]
    q = requantize(s, 1, p["shift"])
    return _clamp(apply_activation(q, act_params(node)), out)


def _mul(node: QNode, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
    return _clamp(requantize(ins[0] * ins[1], node.params["mult"], node.params["shift"]), out)


def _avgpool(node: QNode, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
    a = node.attrs
    xp = ops.pad_nhwc(ins[0], a["padding"], 0)
    total = ops.windows(xp, a["pool"], a["strides"]).sum(axis=(-2, -1), dtype=np.int64)
    return _clamp(requantize(total, node.params["mult"], node.params["shift"]), out)


def _gavgpool(node: QNode, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
    total = ins[0].sum(axis=(1, 2), keepdims=node.attrs["keepdims"], dtype=np.int64)
    return _clamp(requantize(total, node.params["mult"], node.params["shift"]), out)


def _hswish(node: QNode, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
    qc = np.clip(ins[0], -HSWISH_CLAMP, HSWISH_CLAMP - 1)
    r = np.clip(qc + node.attrs["three"], 0, node.attrs["six"])
    return _clamp(requantize(qc * r, node.params["mult"], node.params["shift"]), out)


def _hsigmoid(node: QNode, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
    r = np.clip(ins[0] + node.attrs["three"], 0, node.attrs["six"])
    return _clamp(requantize(r, node.params["mult"], node.params["shift"]), out)


def _affine(node: QNode, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
    p = node.params
    return _clamp(requantize(ins[0] * p["sign"], p["mult"], p["shift"]) + p["offset"], out)


def _concat(node: QNode, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
    """Channel concatenation, each input's channels requantized onto the output scale."""
    x = np.concatenate([np.asarray(i, np.int64) for i in ins], axis=-1)
    return _clamp(requantize(x, node.params["mult"], node.params["shift"]), out)


def _requant(node: QNode, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
    return _clamp(requantize(ins[0], node.params["mult"], node.params["shift"]), out)


def _maxpool(node: QNode, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
    a = node.attrs
    return ops.pool2d(ins[0], "max", a["pool"], a["strides"], a["padding"])


def _lut(node: QNode, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
    return node.params["lut"][ins[0] - node.attrs["offset"]]


INT_OPS: dict[str, Callable[[QNode, list[np.ndarray], QTensor], np.ndarray]] = {
    "conv": _gemm,
    "dense": _gemm,
    "add": _add,
    "mul": _mul,
    "avgpool": _avgpool,
    "gavgpool": _gavgpool,
    "maxpool": _maxpool,
    "gmaxpool": lambda n, ins, out: ins[0].max(axis=(1, 2), keepdims=n.attrs["keepdims"]),
    "pad": lambda n, ins, out: ops.pad_nhwc(ins[0], n.attrs["padding"], 0),
    "crop": lambda n, ins, out: ops.crop_nhwc(ins[0], n.attrs["cropping"]),
    "concat": _concat,
    "flatten": lambda n, ins, out: ins[0].reshape(ins[0].shape[0], -1),
    "reshape": lambda n, ins, out: ins[0].reshape(ins[0].shape[0], *n.attrs["target"]),
    "relu": lambda n, ins, out: np.maximum(ins[0], 0),
    "relu6": lambda n, ins, out: np.clip(ins[0], 0, n.attrs["six"]),
    "hswish": _hswish,
    "hsigmoid": _hsigmoid,
    "lut": _lut,
    "affine": _affine,
    "requant": _requant,
}

NodeOp = Callable[[QNode, list[np.ndarray], QTensor], np.ndarray]


@dataclass
class Trace:
    """Integer inputs and output of every node of one run (the hardware test vectors)."""

    inputs: dict[str, list[np.ndarray]]
    outputs: dict[str, np.ndarray]


@overload
def run_nodes(
    qg: QGraph,
    x_q: np.ndarray | None,
    ops_table: dict[str, NodeOp],
    trace: Literal[True],
    start: int = 0,
    tensors: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, Trace]: ...
@overload
def run_nodes(
    qg: QGraph,
    x_q: np.ndarray | None,
    ops_table: dict[str, NodeOp],
    trace: bool = False,
    start: int = 0,
    tensors: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, Trace | None]: ...
def run_nodes(
    qg: QGraph,
    x_q: np.ndarray | None,
    ops_table: dict[str, NodeOp],
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
