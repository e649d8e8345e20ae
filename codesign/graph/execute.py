"""Float execution of the IR in NumPy (the reference the quantized paths are judged against)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, overload

import numpy as np

from codesign.errors import ShapeError
from codesign.graph import ops
from codesign.graph.ir import (
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
    Graph,
    Input,
    Layer,
    Multiply,
    Pool2D,
    Reshape,
    Softmax,
    ZeroPad2D,
)


def check_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Validate an input batch against the model's input shape (batch axis required)."""
    x = np.asarray(x)
    want = graph.input_shape
    if x.ndim == len(want):
        raise ShapeError(
            f"input has shape {x.shape} but model {graph.name!r} expects a batch of shape (N, {', '.join(map(str, want))}); "
            "add a batch axis."
        )
    if tuple(x.shape[1:]) != tuple(want):
        raise ShapeError(
            f"input has shape {x.shape} but model {graph.name!r} expects (N, {', '.join(map(str, want))})."
        )
    return x


def float_layer(layer: Layer, ins: list[np.ndarray]) -> np.ndarray:
    """Run one layer in float on its input arrays."""
    fn = _FLOAT_OPS.get(type(layer))
    if fn is None:
        raise NotImplementedError(f"no float kernel for op {layer.op}")
    return fn(layer, ins)


def _conv(ly: Conv2D, ins: list[np.ndarray]) -> np.ndarray:
    y = ops.conv2d(ins[0], ly.params["kernel"], ly.strides, ly.padding, ly.groups)
    if ly.use_bias:
        y = y + ly.params["bias"].astype(y.dtype)
    return y


def _dense(ly: Dense, ins: list[np.ndarray]) -> np.ndarray:
    x = ins[0]
    y = x @ ly.params["kernel"].astype(x.dtype)
    if ly.use_bias:
        y = y + ly.params["bias"].astype(y.dtype)
    return y


def _bn(ly: BatchNorm, ins: list[np.ndarray]) -> np.ndarray:
    p = ly.params
    x = ins[0]
    a = (p["gamma"] / np.sqrt(p["var"] + ly.epsilon)).astype(x.dtype)
    return (x - p["mean"].astype(x.dtype)) * a + p["beta"].astype(x.dtype)


def _affine(ly: Affine, ins: list[np.ndarray]) -> np.ndarray:
    x = ins[0]
    return x * ly.params["scale"].astype(x.dtype) + ly.params["offset"].astype(x.dtype)


def _pool(ly: Pool2D, ins: list[np.ndarray]) -> np.ndarray:
    return ops.pool2d(ins[0], ly.kind, ly.pool, ly.strides, ly.padding).astype(ins[0].dtype)


def _gpool(ly: GlobalPool, ins: list[np.ndarray]) -> np.ndarray:
    x = ins[0]
    y = x.mean(axis=(1, 2), keepdims=ly.keepdims) if ly.kind == "avg" else x.max(axis=(1, 2), keepdims=ly.keepdims)
    return y.astype(x.dtype)


# Each entry takes its own layer class (hence the ``...``): the dict is keyed by that class.
_FLOAT_OPS: dict[type, Callable[..., np.ndarray]] = {
    Conv2D: _conv,
    Dense: _dense,
    BatchNorm: _bn,
    Affine: _affine,
    Activation: lambda ly, ins: ops.activation(ins[0], ly.kind).astype(ins[0].dtype),
    Add: lambda ly, ins: ins[0] + ins[1],
    Multiply: lambda ly, ins: ins[0] * ins[1],
    Pool2D: _pool,
    GlobalPool: _gpool,
    Flatten: lambda ly, ins: ins[0].reshape(ins[0].shape[0], -1),
    Reshape: lambda ly, ins: ins[0].reshape(ins[0].shape[0], *ly.output_shape),
    ZeroPad2D: lambda ly, ins: ops.pad_nhwc(ins[0], ly.padding),
    Crop2D: lambda ly, ins: ops.crop_nhwc(ins[0], ly.cropping),
    Concat: lambda ly, ins: np.concatenate(ins, axis=-1),
    Softmax: lambda ly, ins: ops.softmax(ins[0]),
}


@overload
def run_float(
    graph: Graph, x: np.ndarray, collect: Literal[False] = False, dtype: type = np.float32,
    visit: Callable[[str, np.ndarray], None] | None = None,
) -> np.ndarray: ...
@overload
def run_float(
    graph: Graph, x: np.ndarray, collect: Literal[True], dtype: type = np.float32,
    visit: Callable[[str, np.ndarray], None] | None = None,
) -> dict[str, np.ndarray]: ...
@overload
def run_float(
    graph: Graph, x: np.ndarray, collect: bool, dtype: type = np.float32,
    visit: Callable[[str, np.ndarray], None] | None = None,
) -> np.ndarray | dict[str, np.ndarray]: ...
def run_float(
    graph: Graph, x: np.ndarray, collect: bool = False, dtype: type = np.float32,
    visit: Callable[[str, np.ndarray], None] | None = None,
) -> np.ndarray | dict[str, np.ndarray]:
    """Run the graph on a batch ``x`` (N, H, W, C).

    Returns the first output, or with ``collect=True`` a dict of every layer's output.
    Intermediate tensors are freed as soon as their last consumer has run (unless collected).
    ``visit(name, output)`` is called on every layer's output, in layer order, as soon as it
    exists: statistics gathered that way need only the live tensors, not all of them.
    """
    x = check_input(graph, x).astype(dtype, copy=False)
    remaining = {ly.name: len(graph.consumers(ly.name)) for ly in graph.layers}
    keep = set(graph.outputs)
    acts: dict[str, np.ndarray] = {}
    for ly in graph.layers:
        if isinstance(ly, Input):
            acts[ly.name] = x
        else:
            acts[ly.name] = float_layer(ly, [acts[i] for i in ly.inputs])
        if visit is not None:
            visit(ly.name, acts[ly.name])
        if not collect and not isinstance(ly, Input):
            for i in ly.inputs:
                remaining[i] -= 1
                if remaining[i] == 0 and i not in keep:
                    del acts[i]
    return acts if collect else acts[graph.outputs[0]]
