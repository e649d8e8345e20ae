"""Fake-quant float path: the fast twin of the golden model for sensitivity sweeps.

GEMMs run in float32 BLAS on the quantized grid values and rescale with the *real*
multiplier ``s_x * s_w / s_y`` instead of the dyadic one; every other node is the integer
op itself (they are cheap). Deliberate differences from :mod:`codesign.quant.golden`:

1. float32 accumulation is exact only below 2^24, so very long dot products may be off
   by a few units of the accumulator before rounding;
2. the real multiplier differs from the int32 dyadic one by < 2^-30 relative;
3. ``acc + bias`` is not saturated to int32 (it never is in practice).

Each can move a requantized value across a rounding tie, so an output code may differ by
1 LSB at a few positions; tests bound how often. Everything else is identical.
"""

from __future__ import annotations

import numpy as np

from codesign.graph import ops
from codesign.quant.dyadic import apply_activation, round_half_up, saturate
from codesign.quant.golden import INT_OPS, NodeOp, run_nodes
from codesign.quant.ops import OVERLAY, op_classes
from codesign.quant.ops.gemm import Conv, GemmOp
from codesign.quant.qir import QGraph, QNode, QTensor


def _fq_gemm_factory(qg: QGraph) -> NodeOp:
    def _fq_gemm(node: QNode, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        op = node.op
        if not isinstance(op, GemmOp) or op.w_scale is None:
            raise TypeError(f"node {node.name!r} is not a quantized conv/dense with weight scales")
        x = ins[0].astype(np.float32)
        w = op.weight.astype(np.float32)
        acc = ops.conv2d(x, w, op.strides, op.padding, op.groups) if isinstance(op, Conv) else x @ w
        s_x = qg.tensors[node.inputs[0]].scale
        m = (s_x * op.w_scale / out.scale).astype(np.float64)
        q = round_half_up((acc.astype(np.float64) + op.bias) * m).astype(np.int64)
        return saturate(apply_activation(q, op.act_params), out.qmin, out.qmax)

    return _fq_gemm


class FakeQuantModel:
    """Float32 fake-quant execution of a quantized graph (same interface as GoldenModel)."""

    def __init__(self, qg: QGraph) -> None:
        self.qg = qg
        gemm = _fq_gemm_factory(qg)
        # the GEMMs (the ops the overlay runs) in float32, every other op as the golden model
        self.table = {**INT_OPS, **{k: gemm for k, c in op_classes().items() if c.placement == OVERLAY}}

    def run(self, x_q: np.ndarray) -> np.ndarray:
        """Integer input codes -> integer output codes (via float32 GEMMs)."""
        return run_nodes(self.qg, x_q, self.table)[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Float input -> probabilities (or dequantized outputs when there is no softmax)."""
        y = self.qg.dequantize_output(self.run(self.qg.quantize_input(x)))
        return ops.softmax(y) if self.qg.softmax else y
