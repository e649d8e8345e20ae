"""Which activations fuse into their producer, and which tensor each IR layer produces."""

from __future__ import annotations

from dataclasses import dataclass

from codesign.errors import UnsupportedLayerError
from codesign.graph.ir import Activation, Add, Conv2D, Dense, Graph, Layer, Softmax
from codesign.quant.dyadic import Act

FUSABLE_ACTS = {"relu": Act.RELU, "relu6": Act.RELU6, "hswish": Act.HSWISH}


@dataclass
class FusionPlan:
    """Fusions and output tensor of a graph (the result of :func:`plan_fusion`)."""

    fused_act: dict[str, Activation]  # producer name -> fused activation layer
    absorbed: set[str]  # activation layers absorbed into their producer
    out_tensor: dict[str, str]  # IR layer -> tensor it produces
    softmax: bool
    output: str

    def real_layers(self, g: Graph) -> list[Layer]:
        """The layers that become nodes: not absorbed, not the trailing softmax."""
        return [ly for ly in g.layers if ly.name not in self.absorbed and not (self.softmax and ly.name == g.outputs[0])]

    def act(self, name: str) -> tuple[Act, Activation | None]:
        """The activation fused into layer ``name`` (``Act.NONE, None`` when there is none)."""
        layer = self.fused_act.get(name)
        return (FUSABLE_ACTS[layer.kind], layer) if layer is not None else (Act.NONE, None)


def plan_fusion(g: Graph) -> FusionPlan:
    """Fusions and output tensor; UnsupportedLayerError for a structure quantization refuses."""
    fused: dict[str, Activation] = {}
    absorbed: set[str] = set()
    for ly in g.layers:
        if not isinstance(ly, (Conv2D, Dense, Add)):
            continue
        cons = g.consumers(ly.name)
        if len(cons) != 1 or ly.name in g.outputs:
            continue
        c = cons[0]
        if isinstance(c, Activation) and c.kind in FUSABLE_ACTS and (c.kind != "hswish" or not isinstance(ly, Add)):
            fused[ly.name] = c
            absorbed.add(c.name)
    out_tensor = {ly.name: ly.name for ly in g.layers}
    for prod, act in fused.items():
        out_tensor[prod] = act.name
    out = g.outputs[0]
    if len(g.outputs) != 1:
        raise UnsupportedLayerError(f"model {g.name!r} has {len(g.outputs)} outputs; quantization supports one.")
    softmax = isinstance(g[out], Softmax)
    if softmax:
        out = g[out].inputs[0]
    for ly in g.layers:
        if isinstance(ly, Softmax) and ly.name != g.outputs[0]:
            raise UnsupportedLayerError(f"layer {ly.name!r} of type softmax is only supported as the model's final layer.")
    return FusionPlan(fused, absorbed, out_tensor, softmax, out_tensor.get(out, out))


__all__ = ["FUSABLE_ACTS", "FusionPlan", "plan_fusion"]
