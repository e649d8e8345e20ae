"""Graph passes run before quantization: BN folding and standalone-BN lowering.

Folding is exact in real arithmetic: ``BN(conv(x, W) + b) = conv(x, W * a) + (b - mean) * a + beta``
with ``a = gamma / sqrt(var + eps)`` per output channel. The folded graph is what gets
quantized, so per-channel weight scales see the folded weights (as on the hardware). A weight
grid the source model fixed (QKeras) is folded with its kernel: its step scales by ``|a|``
(a negative ``a`` only flips the codes' signs, which the symmetric range allows).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from codesign.graph.ir import Affine, BatchNorm, Conv2D, Dense, Graph


def bn_coefficients(bn: BatchNorm) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(scale, offset)`` of an inference BN as float64."""
    p = {k: v.astype(np.float64) for k, v in bn.params.items()}
    scale = p["gamma"] / np.sqrt(p["var"] + bn.epsilon)
    return scale, p["beta"] - p["mean"] * scale


def fold_batchnorm(graph: Graph) -> Graph:
    """Return a copy with every BN folded into its producing Conv2D/Dense where possible.

    A BN folds when its producer is a Conv2D/Dense whose only consumer is that BN; other
    BNs become an ``Affine`` layer (same name). Consumers of a folded BN now read the conv,
    and model outputs are renamed accordingly.
    """
    g = graph.copy()
    hints = g.hints
    rename: dict[str, str] = {}
    keep = []
    for ly in g.layers:
        ly.inputs = [rename.get(i, i) for i in ly.inputs]
        if not isinstance(ly, BatchNorm):
            keep.append(ly)
            continue
        scale, offset = bn_coefficients(ly)
        prod = g[ly.inputs[0]]
        if isinstance(prod, (Conv2D, Dense)) and len(g.consumers(prod.name)) == 1:
            k = prod.params["kernel"].astype(np.float64)
            b = prod.params["bias"].astype(np.float64) if prod.use_bias else np.zeros(k.shape[-1])
            prod.params["kernel"] = (k * scale).astype(np.float32)
            prod.params["bias"] = (b * scale + offset).astype(np.float32)
            prod.use_bias = True
            if hints and prod.name in hints.weights:  # the grid's step scales with the folded kernel
                grid = hints.weights[prod.name]
                hints.weights[prod.name] = replace(grid, scale=grid.scale * np.abs(scale))
            rename[ly.name] = prod.name
            continue
        aff = Affine(ly.name, list(ly.inputs), ly.output_shape)
        aff.params = {"scale": scale.astype(np.float32), "offset": offset.astype(np.float32)}
        keep.append(aff)
    # a grid on the BN's output now belongs to the conv that absorbed it
    out = Graph(g.name, keep, [rename.get(o, o) for o in g.outputs], hints.renamed(rename) if hints else None)
    out.infer_shapes()
    return out
