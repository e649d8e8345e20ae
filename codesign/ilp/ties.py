"""Residual ties: GEMM layers whose outputs meet in one residual adder share a width (opt-in)."""

from __future__ import annotations

from codesign.graph.ir import Activation, Add, BatchNorm, Flatten, Graph, Layer, Pool2D, Reshape, ZeroPad2D
from codesign.unionfind import DisjointSets

_PASS_ACTS = {"relu", "relu6", "hswish"}  # fused into the producer's post-process: same integer stream


def _passes_through(layer: Layer) -> bool:
    """Ops between a GEMM and an Add that do not requantize to a new domain on the overlay."""
    if isinstance(layer, (BatchNorm, ZeroPad2D, Flatten, Reshape)):
        return True  # BN is folded into the conv; the others move codes unchanged
    if isinstance(layer, Activation):
        return layer.kind in _PASS_ACTS
    return isinstance(layer, Pool2D) and layer.kind == "max"


def _source(graph: Graph, name: str) -> str | None:
    """Walk back from tensor ``name`` through pass-through ops to a quantizable layer or an Add."""
    layer = graph[name]
    while not (layer.quantizable or isinstance(layer, Add)):
        if not (_passes_through(layer) and len(layer.inputs) == 1):
            return None  # input, avg-pool, SE multiply, sigmoid...: a new quantization domain
        layer = graph[layer.inputs[0]]
    return layer.name


def residual_ties(graph: Graph) -> list[list[str]]:
    """Tie groups: GEMM layers whose outputs meet in the same residual adder (transitively).

    Rule: for every Add, each operand is traced back through ops that keep the integer stream
    (folded BN, fused ReLU/ReLU6/h-swish, max-pool, pad, flatten, reshape) to its producing
    Conv2D/Dense or to an earlier Add. Everything that meets in one Add, and chains of Adds
    (a ResNet stage's identity shortcut), forms one group. Why: an adder of fixed width fused
    into the post-process stage adds two streams in one format, so the engines producing them
    must run at one width; the residual stream of a stage then has one width end to end.
    On the current OQA overlay the Add runs on the PS in int32 with dyadic rescaling of both
    operands (see ``codesign.quant.qgraph``), so these ties are not needed for correctness:
    they are opt-in (the search's tie flag) for overlays that fuse the add.
    """
    sets: DisjointSets[str] = DisjointSets()
    for layer in graph:
        if isinstance(layer, Add):
            for src in (_source(graph, i) for i in layer.inputs):
                if src is not None:
                    sets.union(src, layer.name)
    groups = sets.groups(ly.name for ly in graph.quantizable() if ly.name in sets)
    return [g for g in groups if len(g) > 1]

