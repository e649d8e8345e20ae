"""How far an export is from the integer golden model, in output LSBs (codes of the output tensor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.quant.golden import GoldenModel, Trace
from codesign.quant.qgraph import QGraph


@dataclass(frozen=True)
class LsbError:
    """Output error of an export over a batch: max |diff| in LSB and the share of differing outputs."""

    max_lsb: float
    share_differing: float
    top1_agreement: float
    images: int

    def text(self) -> str:
        """'0 LSB (bit-exact)' or '2 LSB max, 3.1 % of outputs differ, top-1 agreement 99.0 %'."""
        if self.max_lsb == 0:
            return f"0 LSB (bit-exact on {self.images} images)"
        return (f"{self.max_lsb:g} LSB max, {100 * self.share_differing:.1f} % of outputs differ, top-1 agreement "
                f"{100 * self.top1_agreement:.1f} % ({self.images} images)")


def lsb_error(outputs_codes: np.ndarray, golden_codes: np.ndarray) -> LsbError:
    """Compare code-valued outputs with the golden model's."""
    y = np.asarray(outputs_codes, np.float64).reshape(golden_codes.shape)
    d = np.abs(y - golden_codes)
    # float32 outputs hold codes exactly; a residue below 1e-3 LSB is only float noise of the dequantization
    d = np.where(d < 1e-3, 0.0, d)
    agree = float(np.mean(y.reshape(len(y), -1).argmax(1) == golden_codes.reshape(len(y), -1).argmax(1)))
    return LsbError(float(np.round(d.max(), 3)), float(np.mean(d > 0)), agree, len(y))


def qkeras_error(qg: QGraph, model: Any, x: np.ndarray) -> LsbError:
    """QKeras model with float inputs (``io="real"``) against the golden model: its logits in LSB."""
    from codesign.export.qkeras import logits_model

    gold = GoldenModel(qg).run(qg.quantize_input(x))
    sub = logits_model(model) if qg.softmax else model
    logits = np.asarray(sub.predict(x, verbose=0), np.float64)
    return lsb_error(logits / qg.tensors[qg.output].scale, gold)


def hls4ml_csim(qg: QGraph, hls_model: Any, codes: np.ndarray,
                trace: Trace | None = None) -> tuple[LsbError, dict[str, float], np.ndarray]:
    """Compile a project written with ``trace=True`` (g++ C-sim) and compare it with the golden model.

    Returns the output error, the max |C-sim - golden| of every QNode's output tensor, and the
    C-sim output codes. hls4ml removes layers that only cast to their own type (e.g. a
    quantizer whose type the multiplier before it already rounds to); such a tensor is read at
    the nearest traced layer upstream, which holds the same values.
    """
    from codesign.export.hls4ml import _inbound
    from codesign.export.qkeras import export_qkeras

    info = export_qkeras(qg, io="codes", fold_requant=False, hls=True)
    codes = np.asarray(codes)
    trace = trace or GoldenModel(qg).trace(codes)
    y, traced = hls_model.trace(np.ascontiguousarray(codes.astype(np.float32)))  # compiles once
    nodes: dict[str, float] = {}
    for n in qg.nodes:
        layer = info.tensor_layer[n.output]
        while layer not in traced:
            parents = _inbound(info.model.get_layer(layer))
            if not parents:
                break
            layer = parents[0]
        gold = trace.outputs[n.name]
        got = np.asarray(traced.get(layer, np.full(gold.size, np.nan)), np.float64).reshape(gold.shape)
        nodes[n.name] = float(np.abs(got - gold).max())
    gold_out = next(trace.outputs[n.name] for n in qg.nodes if n.output == qg.output)
    y = np.asarray(y, np.float64).reshape(gold_out.shape)
    return lsb_error(y, gold_out), nodes, y


__all__ = ["LsbError", "hls4ml_csim", "lsb_error", "qkeras_error"]
