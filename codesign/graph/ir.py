"""The codesign model IR: a typed, topologically ordered graph of layers.

Every layer produces exactly one tensor, named after the layer. Shapes exclude the batch
axis and are channels-last (NHWC). The layer types, their parameters and shape rules live in
:mod:`codesign.graph.layers`; this module holds the :class:`Graph` and re-exports every layer
name, so ``from codesign.graph.ir import Conv2D, Graph`` is the one import path of the IR.

This module is NumPy-only: it runs on the board.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from codesign.errors import ModelFileError, ShapeError
from codesign.graph.layers import (
    ACTIVATIONS,
    OPS,
    Activation,
    Add,
    Affine,
    BatchNorm,
    Concat,
    Conv2D,
    Crop2D,
    Dense,
    Flatten,
    GlobalPool,
    Input,
    Layer,
    Multiply,
    Pool2D,
    Reshape,
    Shape,
    Softmax,
    ZeroPad2D,
    conv_out,
    layer_from_attrs,
    same_padding,
)
from codesign.graph.quant_hints import QuantHints


@dataclass
class Graph:
    """A topologically ordered list of layers plus input/output names."""

    name: str
    layers: list[Layer]
    outputs: list[str]
    # grids the source model fixed (QKeras quantizers); None for a float model
    hints: QuantHints | None = None

    def __post_init__(self) -> None:
        self._index = {layer.name: layer for layer in self.layers}
        if len(self._index) != len(self.layers):
            raise ModelFileError(f"model {self.name!r} has duplicate layer names.")

    # ---- lookup ---------------------------------------------------------------------
    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, name: str) -> Layer:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"no layer named {name!r} in model {self.name!r}") from None

    @property
    def inputs(self) -> list[str]:
        """Names of the Input layers, in order."""
        return [ly.name for ly in self.layers if isinstance(ly, Input)]

    @property
    def input_shape(self) -> Shape:
        """Shape of the (single) input, without batch axis."""
        ins = [ly for ly in self.layers if isinstance(ly, Input)]
        if len(ins) != 1:
            raise ShapeError(f"model {self.name!r} has {len(ins)} inputs; codesign supports exactly one.")
        return tuple(ins[0].shape)

    def consumers(self, name: str) -> list[Layer]:
        """Layers that read the tensor ``name``."""
        return [ly for ly in self.layers if name in ly.inputs]

    def in_shapes(self, layer: Layer) -> list[Shape]:
        """Output shapes of a layer's producers."""
        return [self[i].output_shape for i in layer.inputs]

    def quantizable(self) -> list[Layer]:
        """Conv2D/Dense layers (the ones that get a bit-width), in order."""
        return [ly for ly in self.layers if ly.quantizable]

    # ---- integrity ------------------------------------------------------------------
    def rebuild_index(self) -> None:
        """Refresh the name index after the layer list was edited by a pass."""
        self.__post_init__()

    def infer_shapes(self) -> None:
        """Recompute every output shape and check params against them."""
        seen: set[str] = set()
        for layer in self.layers:
            for i in layer.inputs:
                if i not in seen:
                    raise ModelFileError(
                        f"layer {layer.name!r} reads {i!r}, which is not defined before it."
                    )
            shapes = self.in_shapes(layer)
            layer.output_shape = tuple(int(d) for d in layer.infer_shape(shapes))
            self._check_params(layer, shapes)
            seen.add(layer.name)
        for o in self.outputs:
            if o not in self._index:
                raise ModelFileError(f"model output {o!r} is not a layer of {self.name!r}.")

    def _check_params(self, layer: Layer, shapes: list[Shape]) -> None:
        expected = layer.param_shapes(shapes)
        if layer.op == "affine":
            c = shapes[0][-1]
            for k in ("scale", "offset"):
                p = layer.params.get(k)
                if p is None or p.ndim != 1 or p.shape[0] not in (1, c):
                    raise ModelFileError(f"layer {layer.name!r} (affine): {k} must have shape (1,) or ({c},).")
            return
        for k, shp in expected.items():
            p = layer.params.get(k)
            if p is None:
                raise ModelFileError(f"layer {layer.name!r} ({layer.op}) is missing weights {k!r} of shape {shp}.")
            if tuple(p.shape) != tuple(shp):
                raise ModelFileError(
                    f"weights {k!r} of layer {layer.name!r} ({layer.op}) have shape {tuple(p.shape)}, "
                    f"but the model needs {tuple(shp)}."
                )
        extra = set(layer.params) - set(expected)
        if extra:
            raise ModelFileError(f"layer {layer.name!r} ({layer.op}) has unexpected weights {sorted(extra)}.")

    def total_macs(self) -> int:
        """Sum of MACs over all layers for one image."""
        return sum(ly.macs(self.in_shapes(ly)) for ly in self.layers)

    def copy(self) -> Graph:
        """Deep copy (params copied too), so passes never alias the caller's arrays."""
        layers = []
        for ly in self.layers:
            new = dataclasses.replace(ly, inputs=list(ly.inputs), params={k: v.copy() for k, v in ly.params.items()})
            new.output_shape = ly.output_shape
            layers.append(new)
        return Graph(self.name, layers, list(self.outputs), self.hints.copy() if self.hints else None)


__all__ = [
    "ACTIVATIONS", "OPS", "Activation", "Add", "Affine", "BatchNorm", "Concat", "Conv2D", "Crop2D", "Dense",
    "Flatten", "GlobalPool", "Graph", "Input", "Layer", "Multiply", "Pool2D", "Reshape", "Shape", "Softmax",
    "ZeroPad2D", "conv_out", "layer_from_attrs", "same_padding",
]
