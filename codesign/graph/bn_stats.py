"""BatchNorm statistics re-estimated on a batch (for random-init models before quantization)."""

from __future__ import annotations

import copy

import numpy as np

from codesign.graph.execute import float_layer
from codesign.graph.ir import BatchNorm, Graph, Input


def recalibrate_bn(graph: Graph, x: np.ndarray) -> Graph:
    """Copy of ``graph`` whose BatchNorm statistics are re-estimated on the batch ``x``.

    The ImageNet-shape zoo models are random-init: with their stored BN statistics (mean 0,
    var 1) activations shrink layer after layer, until a deep MobileNet's ReLU6/h-swish outputs
    have ranges too small for the integer activation constants and quantization fails. Setting
    each BN's statistics to its input's batch statistics keeps every layer at unit scale.
    Weights and shapes are unchanged, so no cycle count depends on this.
    """
    g = copy.deepcopy(graph)
    acts: dict[str, np.ndarray] = {}
    remaining = {ly.name: len(g.consumers(ly.name)) for ly in g.layers}
    for ly in g.layers:
        if isinstance(ly, Input):
            acts[ly.name] = x.astype(np.float32)
            continue
        ins = [acts[i] for i in ly.inputs]
        if isinstance(ly, BatchNorm):
            axes = tuple(range(ins[0].ndim - 1))
            ly.params["mean"] = ins[0].mean(axis=axes).astype(np.float32)
            ly.params["var"] = ins[0].var(axis=axes).astype(np.float32)
        acts[ly.name] = float_layer(ly, ins)
        for i in ly.inputs:
            remaining[i] -= 1
            if remaining[i] == 0:
                del acts[i]
    return g


__all__ = ["recalibrate_bn"]
