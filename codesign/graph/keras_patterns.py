"""IR rewrite passes that undo the way Keras spells hard-sigmoid and hard-swish.

Keras 2 applications (MobileNetV3) build ``hard_sigmoid`` as ``ReLU(6)(x + 3) * (1/6)`` and
``hard_swish`` as ``Multiply([x, hard_sigmoid(x)])``. The accelerator's post-process unit has a
native h-swish/h-sigmoid, so the importer folds those chains back into single activations.
A chain is only rewritten when its intermediate tensors have no other reader, so the rewrite
never changes what any remaining layer sees. NumPy-only (no TensorFlow).
"""

from __future__ import annotations

import numpy as np

from codesign.graph.ir import Activation, Affine, Graph, Layer, Multiply

_HSIG_OFFSET = 3.0
_HSIG_SCALE = 1.0 / 6.0


def _is_affine(layer: Layer, scale: float, offset: float) -> bool:
    """True when ``layer`` is an Affine whose every scale/offset equals the given scalars."""
    if not isinstance(layer, Affine):
        return False
    s, o = layer.params["scale"], layer.params["offset"]
    return bool(np.allclose(s, scale, rtol=1e-6, atol=0) and np.allclose(o, offset, rtol=1e-6, atol=1e-7))


def _private(graph: Graph, name: str) -> bool:
    """True when tensor ``name`` is read by exactly one layer and is not a model output."""
    return name not in graph.outputs and len(graph.consumers(name)) == 1


def _replace(graph: Graph, remove: list[str], new: Layer) -> None:
    """Drop ``remove`` layers and put ``new`` where the layer of the same name was."""
    layers = []
    for ly in graph.layers:
        if ly.name == new.name:
            layers.append(new)
        elif ly.name not in remove:
            layers.append(ly)
    graph.layers[:] = layers
    graph.rebuild_index()


def _fuse_hsigmoid_once(graph: Graph) -> bool:
    """Rewrite one ``Affine(+3) -> relu6 -> Affine(*1/6)`` chain; False when none is left."""
    for tail in graph.layers:
        if not _is_affine(tail, _HSIG_SCALE, 0.0):
            continue
        relu6 = graph[tail.inputs[0]]
        if not (isinstance(relu6, Activation) and relu6.kind == "relu6" and _private(graph, relu6.name)):
            continue
        head = graph[relu6.inputs[0]]
        if not (_is_affine(head, 1.0, _HSIG_OFFSET) and _private(graph, head.name)):
            continue
        fused = Activation(name=tail.name, inputs=list(head.inputs), kind="hsigmoid")
        _replace(graph, [head.name, relu6.name], fused)
        return True
    return False


def _fuse_hswish_once(graph: Graph) -> bool:
    """Rewrite one ``Multiply(x, hsigmoid(x))`` into ``hswish(x)``; False when none is left."""
    for mul in graph.layers:
        if not (isinstance(mul, Multiply) and len(mul.inputs) == 2):
            continue
        for gate_name, x_name in (mul.inputs, mul.inputs[::-1]):
            gate = graph[gate_name]
            if (
                isinstance(gate, Activation)
                and gate.kind == "hsigmoid"
                and gate.inputs == [x_name]
                and _private(graph, gate.name)
            ):
                fused = Activation(name=mul.name, inputs=[x_name], kind="hswish")
                _replace(graph, [gate.name], fused)
                return True
    return False


def fuse_hard_activations(graph: Graph) -> Graph:
    """Fold Keras' decomposed hard-sigmoid/hard-swish chains into single IR activations, in place."""
    while _fuse_hsigmoid_once(graph):
        pass
    while _fuse_hswish_once(graph):
        pass
    return graph
