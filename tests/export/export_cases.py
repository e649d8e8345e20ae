"""Models, bit configs and images shared by the export tests."""

from __future__ import annotations

import numpy as np
from ir_models import tiny_mobilenet, tiny_resnet

from codesign.graph.ir import Graph
from codesign.quant.bitconfig import BitConfig, LayerBits
from codesign.quant.dyadic import Act
from codesign.quant.qgraph import QGraph

MODELS = {"tiny_resnet": tiny_resnet, "tiny_mobilenet": tiny_mobilenet}
MIXED_WIDTHS = (8, 4, 6, 3, 5, 2, 7)


def mixed_bitconfig(graph: Graph) -> BitConfig:
    """A deterministic mixed config covering 2..8 bits, with w_bits != a_bits per layer."""
    names = [ly.name for ly in graph.quantizable()]
    n = len(MIXED_WIDTHS)
    layers = {name: LayerBits(MIXED_WIDTHS[i % n], MIXED_WIDTHS[(i + 3) % n]) for i, name in enumerate(names)}
    return BitConfig(layers, model=graph.name).validated(graph)


def bitconfig(graph: Graph, which: str) -> BitConfig:
    """``"w8"``/``"w4"`` uniform, or ``"mixed"``."""
    if which == "mixed":
        return mixed_bitconfig(graph)
    return BitConfig.uniform(graph, int(which[1:]))


def images(graph: Graph, n: int, seed: int = 1) -> np.ndarray:
    """Uniform [0, 1) images of the model's input shape."""
    return np.random.default_rng(seed).uniform(0, 1, (n, *graph.input_shape)).astype(np.float32)


def se_hswish_net(seed: int = 0) -> Graph:
    """Every op the hls4ml export had to learn: fused and standalone h-swish, fused and standalone
    ReLU6, a squeeze-excite gate (h-sigmoid, broadcasting multiply), padded (per-position) and
    valid average pools, and a global average over 9 pixels (not a power of two)."""
    from ir_models import Builder

    b = Builder((12, 12, 2), seed)
    x = b.cbr("input", "stem", 8, 3, 1, act="hswish")
    y = b.cbr(x, "ex", 16, 1, act="relu6")
    y = b.cbr(y, "dw", 16, 3, groups=16, act="relu6")
    s = b.gpool(y, "se_pool", keepdims=True)
    s = b.act(b.conv(s, "se_fc1", 4, 1, bias=True), "se_relu", "relu")
    s = b.affine(b.conv(s, "se_fc2", 16, 1, bias=True), "se_amp", 4.0, 0.0)  # wide gate input: h-sigmoid clamps
    s = b.act(s, "se_hsig", "hsigmoid")
    y = b.mul(y, s, "se_mul")
    y = b.cbr(y, "proj", 8, 1, act=None)
    x = b.add(x, y, "res")
    x = b.act(x, "post_hswish", "hswish")
    x = b.pool(x, "avgp", "avg", 3, 2, 1)
    x = b.affine(x, "amp", 64.0, 1.0)  # a range above 6: the standalone ReLU6 clamps
    x = b.act(x, "r6", "relu6")
    x = b.pool(x, "avgv", "avg", 2, 2, 0)
    x = b.gpool(x, "gap")
    x = b.dense(x, "fc", 10)
    return b.graph("se_hswish_net", b.softmax(x, "softmax"))


def activate_relu6_clamps(qg: QGraph) -> QGraph:
    """Lower every fused ReLU6 limit below the output range, so that the clamp acts.

    Calibrated on ReLU6 outputs, ``six`` lands at or above the range (the clamp is then
    saturation); a lower ``six`` is still a valid integer graph, and both the golden model and
    the exports must follow it.
    """
    for n in qg.nodes:
        if n.attrs.get("act") == int(Act.RELU6):
            n.attrs["six"] = max(qg.tensors[n.output].qmax // 2, 1)
    return qg
