"""The op registry and the typed ops' storage (``QOp.from_node`` / ``to_node``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from ir_models import concat_net, tiny_mobilenet, tiny_resnet

from codesign.quant.bitconfig import BitConfig
from codesign.quant.ops import OVERLAY, op_class, op_classes, register
from codesign.quant.ops.base import QOp
from codesign.quant.qgraph import quantize_model

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("build", [tiny_resnet, tiny_mobilenet, concat_net])
def test_every_stored_node_is_its_typed_op(build) -> None:
    """Reading a node into its op and storing it again gives the same node (src_op is the layer's, not the op's)."""
    g = build()
    x = np.random.default_rng(0).uniform(0, 1, (2, *g[g.inputs[0]].output_shape))
    qg = quantize_model(g, BitConfig.uniform(g, 4), x)
    for n in qg.nodes:
        again = n.op.to_node(n.name, n.inputs, n.output, n.fused)
        assert type(n.op) is op_class(n.kind) and again.kind == n.kind
        assert again.attrs == {k: v for k, v in n.attrs.items() if k != "src_op"}, n.name
        assert again.params.keys() == n.params.keys() and all(again.params[k] is n.params[k] for k in n.params)
        assert n.is_gemm == (op_class(n.kind).placement == OVERLAY) == (n.kind in ("conv", "dense"))


def test_a_kind_has_one_owner() -> None:
    @dataclass(frozen=True, kw_only=True)
    class OtherRelu(QOp):
        kind = "relu"

    with pytest.raises(ValueError, match="already registered"):
        register(OtherRelu)
    assert op_classes()["relu"] is not OtherRelu
