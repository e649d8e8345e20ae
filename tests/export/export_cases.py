"""Models, bit configs and images shared by the export tests."""

from __future__ import annotations

import numpy as np
from ir_models import tiny_mobilenet, tiny_resnet

from codesign.graph.ir import Graph
from codesign.quant.bitconfig import BitConfig, LayerBits

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
