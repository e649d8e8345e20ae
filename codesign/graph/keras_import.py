"""Import Keras / QKeras models (functional, Sequential, nested) into the codesign IR.

TensorFlow is imported lazily inside the functions here, so ``codesign.graph`` stays importable
on the board, where there is no TensorFlow.

The importer walks the Keras graph node by node (depth order, as Keras itself runs it) and
asks one small converter per Keras layer class to append IR layers. IR layer names equal the
Keras layer names, because BN statistics and BitConfigs are matched by name; layers the
importer has to synthesise (a fused ``activation=``, the depthwise half of a SeparableConv2D)
get names derived from the Keras one (``<name>_act``, ``<name>_dw``). Layers that are the
identity at inference (Dropout, InputLayer of a nested model, linear activations) produce no
IR layer: their consumers read the producer instead.

After the walk, every IR tensor's shape is checked against the Keras tensor it stands for, and
:func:`~codesign.graph.keras_patterns.fuse_hard_activations` folds MobileNetV3's decomposed
hard-sigmoid/hard-swish back into single activations. File loading lives in ``keras_files``.

This module holds the dispatch and the graph walk; the builder and the helpers the converters
share are in :mod:`~codesign.graph.keras_build`, the converters per Keras layer class in
:mod:`~codesign.graph.keras_layers`, the one for recorded tf.* ops in
:mod:`~codesign.graph.keras_tfops`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codesign.errors import ShapeError, UnsupportedLayerError
from codesign.graph import ir
from codesign.graph.keras_build import Builder, Call, Converter, unsupported
from codesign.graph.keras_files import load_keras_model
from codesign.graph.keras_layers import LAYER_CONVERTERS
from codesign.graph.keras_patterns import fuse_hard_activations
from codesign.graph.keras_tfops import tf_op
from codesign.tf_quiet import silenced

# ---- dispatch --------------------------------------------------------------------------------

_CONVERTERS: dict[str, Converter] = {
    **LAYER_CONVERTERS,
    # tf.* calls in a functional model (x + 3.0, x * (1/6), tf.nn.relu6). SlicingOpLambda (x[...])
    # is deliberately absent: the IR has no slice op.
    "TFOpLambda": tf_op,
}
SUPPORTED_LAYERS: tuple[str, ...] = tuple(sorted(_CONVERTERS))


def _unsupported_layers(model: Any) -> list[tuple[str, str]]:
    """(name, class) of every layer, nested models included, that has no converter."""
    found = []
    for layer in model.layers:
        if _is_network(layer):
            found += _unsupported_layers(layer)
        elif type(layer).__name__ not in _CONVERTERS:
            found.append((layer.name, type(layer).__name__))
    return found


def _require_supported(model: Any) -> None:
    """Refuse a model with unsupported layers, naming all of them at once (not only the first)."""
    bad = _unsupported_layers(model)
    if bad:
        listed = ", ".join(f"{n!r} ({c})" for n, c in bad)
        raise UnsupportedLayerError(
            f"model {model.name!r} has {len(bad)} layer(s) codesign cannot import: {listed} "
            f"(supported: {', '.join(SUPPORTED_LAYERS)})."
        )


def _convert(b: Builder, call: Call) -> str:
    """Dispatch on the exact Keras class name (a subclass may change ``call``, so no isinstance)."""
    cls_name = type(call.layer).__name__
    conv = _CONVERTERS.get(cls_name)
    if conv is None:
        raise UnsupportedLayerError(
            f"layer {call.layer.name!r} of type {cls_name} is not supported; "
            f"supported: {', '.join(SUPPORTED_LAYERS)}."
        )
    n_in = len(call.inputs)
    if n_in != 1 and cls_name not in ("Add", "Multiply", "Concatenate", "TFOpLambda"):
        raise unsupported(call, f"has {n_in} inputs; it takes exactly one")
    return conv(b, call)


# ---- graph walk ------------------------------------------------------------------------------


def _keras_shape(tensor: Any) -> tuple[int | None, ...]:
    """A Keras tensor's shape without the batch axis (None where unknown)."""
    dims = list(tensor.shape)[1:]
    return tuple(None if d is None else int(d) for d in dims)


def _is_network(layer: Any) -> bool:
    """True for a nested Functional/Sequential model (flattened into the parent)."""
    return bool(getattr(layer, "_is_graph_network", False)) and hasattr(layer, "_nodes_by_depth")


def _require_network(model: Any) -> None:
    """Refuse subclassed/unbuilt models: they have no graph to walk."""
    if not _is_network(model):
        raise UnsupportedLayerError(
            f"model {model.name!r} of type {type(model).__name__} is a subclassed or unbuilt model; "
            "only built functional and Sequential models can be imported (give Sequential models an "
            "Input or call build(input_shape) first)."
        )


def _import_network(b: Builder, model: Any, input_names: list[str]) -> list[str]:
    """Append the IR of a functional/Sequential ``model`` whose inputs are ``input_names``."""
    _require_network(model)
    tensor_to_ir: dict[int, str] = {id(t): n for t, n in zip(model.inputs, input_names, strict=True)}
    input_layers = {id(t._keras_history.layer) for t in model.inputs}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            layer = node.layer
            if id(layer) in input_layers:
                continue
            ins = [tensor_to_ir[id(t)] for t in node.keras_inputs]
            outs = _flat(node.outputs)
            if _is_network(layer):
                results = _import_network(b, layer, ins)
            else:
                call = Call(layer=layer, inputs=ins, name=b.unique(layer.name, scope=model.name), node=node)
                results = [_convert(b, call)]
            if len(results) != len(outs):
                raise unsupported(Call(layer, ins, layer.name), f"has {len(outs)} outputs; one is supported")
            for t, name in zip(outs, results):
                tensor_to_ir[id(t)] = name
                b.expected.append((name, _keras_shape(t), layer.name))
    return [tensor_to_ir[id(t)] for t in model.outputs]


def _flat(structure: Any) -> list[Any]:
    """Flatten a Keras node's nested outputs without importing TF at module level."""
    import tensorflow as tf

    return tf.nest.flatten(structure)


def _resolve_input_shape(model: Any, override: Sequence[int] | None) -> list[ir.Shape]:
    """Concrete input shapes: the model's own, or ``override`` where the model leaves H/W open."""
    shapes = []
    for t in model.inputs:
        shape = _keras_shape(t)
        if override is not None:
            want = tuple(int(d) for d in override)
            if len(want) != len(shape) or any(s is not None and s != w for s, w in zip(shape, want)):
                raise ShapeError(f"input_shape {want} does not fit model {model.name!r} input {shape}.")
            shape = want
        if any(d is None for d in shape):
            raise ShapeError(
                f"model {model.name!r} has input shape {shape} with unknown dimensions; "
                "pass --input-shape H,W,C (input_shape=(H, W, C) to from_keras)."
            )
        shapes.append(tuple(int(d) for d in shape if d is not None))  # none is None (checked above)
    return shapes


def _check_shapes(graph: ir.Graph, expected: list[tuple[str, tuple[int | None, ...], str]]) -> None:
    """Every IR tensor must have the shape Keras gives the tensor it stands for (else: importer bug)."""
    for ir_name, keras_shape, keras_layer in expected:
        got = graph[ir_name].output_shape
        fits = len(got) == len(keras_shape) and all(k is None or k == g for k, g in zip(keras_shape, got))
        if not fits:
            raise RuntimeError(
                f"importer bug: IR tensor {ir_name!r} has shape {got} but Keras layer {keras_layer!r} "
                f"outputs {keras_shape}"
            )


def from_keras(model: Any, name: str | None = None, input_shape: Sequence[int] | None = None) -> ir.Graph:
    """Convert a built functional or Sequential Keras/QKeras model (nested models flattened) to IR.

    ``input_shape`` (H, W, C) fixes input dimensions the model leaves open (e.g. MobileNetV3).
    """
    _require_network(model)
    _require_supported(model)
    b, input_names = Builder(), []
    for t, shape in zip(model.inputs, _resolve_input_shape(model, input_shape)):
        input_names.append(b.add(ir.Input(name=b.unique(t._keras_history.layer.name), shape=shape)))
    with silenced():  # QKeras layers' get_config trips Keras' constraint serializer: noise, not news
        outputs = _import_network(b, model, input_names)
    graph = ir.Graph(name or model.name, b.layers, outputs, b.hints if b.hints else None)
    graph.infer_shapes()
    _check_shapes(graph, b.expected)
    fuse_hard_activations(graph)
    graph.infer_shapes()
    return graph


# ---- files ----------------------------------------------------------------------------------


def load_keras_file(path: str | Path, input_shape: Sequence[int] | None = None,
                    trust_model: bool = False) -> ir.Graph:
    """Load a .h5/.keras file (QKeras layers allowed) and convert it to IR (see :func:`from_keras`)."""
    return from_keras(load_keras_model(path, trust_model=trust_model), input_shape=input_shape)


__all__ = ["SUPPORTED_LAYERS", "Converter", "from_keras", "load_keras_file"]
