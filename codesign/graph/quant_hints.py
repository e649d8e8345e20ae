"""Quantization grids a model brings with it (QKeras quantizers), carried by the IR.

A QKeras model fixes its own grids: ``quantized_bits``/``quantized_po2`` on a kernel fix the
weight width and per-channel step, ``quantized_relu``/``quantized_bits`` on an activation fix
a tensor's width, sign and step. The importer records them here, keyed by IR name, and
:func:`codesign.quant.qgraph.quantize_model` uses a grid instead of calibration wherever the
BitConfig asks for the same width (so a BitConfig derived from the hints reproduces the
QKeras model; any other BitConfig falls back to calibration for the layers it changes).

NumPy-only: the hints are plain data and travel in ``graph.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

# Ops through which a tensor keeps its grid (the quantized model forwards codes unchanged).
GRID_TRANSPARENT_OPS = ("zeropad2d", "crop2d", "flatten", "reshape")


@dataclass(frozen=True)
class TensorGrid:
    """An activation grid: ``real = code * scale``, codes in the (bits, signed) range."""

    bits: int
    signed: bool
    scale: float
    source: str = ""  # the quantizer as the model spells it, e.g. "quantized_relu(4,0)"


@dataclass(frozen=True)
class WeightGrid:
    """A weight grid: per-output-channel step ``scale[c]``, symmetric codes of ``bits``."""

    bits: int
    scale: np.ndarray
    source: str = ""


@dataclass
class QuantHints:
    """Grids found in the source model: ``tensors`` by IR tensor, ``weights`` by IR layer."""

    tensors: dict[str, TensorGrid] = field(default_factory=dict)
    weights: dict[str, WeightGrid] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.tensors or self.weights)

    def copy(self) -> QuantHints:
        """Independent copy (weight scales copied)."""
        return QuantHints(dict(self.tensors), {k: replace(v, scale=v.scale.copy()) for k, v in self.weights.items()})

    def renamed(self, mapping: dict[str, str]) -> QuantHints:
        """Copy with tensor names replaced (a pass merged a layer into another)."""
        tensors = {mapping.get(k, k): v for k, v in self.tensors.items()}
        return QuantHints(tensors, dict(self.weights))

    # ---- JSON ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "tensors": {k: {"bits": v.bits, "signed": v.signed, "scale": v.scale, "source": v.source}
                        for k, v in self.tensors.items()},
            "weights": {k: {"bits": v.bits, "scale": np.asarray(v.scale, np.float64).tolist(), "source": v.source}
                        for k, v in self.weights.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantHints:
        """Parse :meth:`to_dict` output."""
        tensors = {k: TensorGrid(int(v["bits"]), bool(v["signed"]), float(v["scale"]), str(v.get("source", "")))
                   for k, v in data.get("tensors", {}).items()}
        weights = {k: WeightGrid(int(v["bits"]), np.asarray(v["scale"], np.float64), str(v.get("source", "")))
                   for k, v in data.get("weights", {}).items()}
        return cls(tensors, weights)


def input_grid(graph: Any, layer_name: str) -> TensorGrid | None:
    """The grid of the tensor a layer reads, looking back through shape-only ops."""
    hints: QuantHints | None = graph.hints
    if not hints:
        return None
    name = graph[layer_name].inputs[0]
    while True:
        if name in hints.tensors:
            return hints.tensors[name]
        producer = graph[name]
        if producer.op not in GRID_TRANSPARENT_OPS and not (producer.op == "pool2d" and producer.kind == "max"):
            return None
        name = producer.inputs[0]


__all__ = ["GRID_TRANSPARENT_OPS", "QuantHints", "TensorGrid", "WeightGrid", "input_grid"]
