"""hls4ml export of the ops MobileNets and CIFAR heads need: the g++ C-sim equals the golden model.

The oracle is the integer golden model, compared tensor by tensor through hls4ml's trace (so a
slip is pinned to the op that made it), on a model with every such op (``se_hswish_net``) and
with the ReLU6 clamps made active. Tolerance 0 LSB: every constant is dyadic and the types
are exact (``codesign.export.hls4ml``).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("hls4ml")

from export_cases import activate_relu6_clamps, bitconfig, images, se_hswish_net

from codesign.export import hls4ml as hx
from codesign.export.fidelity import hls4ml_csim
from codesign.quant.golden import GoldenModel
from codesign.quant.qgraph import quantize_model

pytestmark = [pytest.mark.tf, pytest.mark.csim,
              pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not on PATH")]


@pytest.mark.parametrize("bits", ["w8", pytest.param("mixed", marks=pytest.mark.slow)])
def test_every_node_bit_exact_in_csim(bits: str, tmp_path) -> None:
    g = se_hswish_net()
    x = images(g, 48)
    qg = activate_relu6_clamps(quantize_model(g, bitconfig(g, bits), x[:16]))
    codes = qg.quantize_input(x)
    trace = GoldenModel(qg).trace(codes)
    # the clamps under test do act on these inputs (else the test would prove nothing about them)
    for name in ("ex", "dw", "r6"):
        assert (trace.outputs[name] == qg.node(name).attrs["six"]).any(), name
    hsig = qg.node("se_hsig").attrs
    gate_in = trace.inputs["se_hsig"][0] + hsig["three"]
    assert (gate_in > hsig["six"]).any() and (gate_in < 0).any()
    assert not hx.unsupported_nodes(qg)
    hls_model = hx.to_hls4ml(qg, tmp_path / "prj", trace=True)
    out, errors, y = hls4ml_csim(qg, hls_model, codes, trace)
    assert set(errors) == {n.name for n in qg.nodes}
    assert max(errors.values()) == 0, {k: v for k, v in errors.items() if v}
    np.testing.assert_array_equal(y, GoldenModel(qg).run(codes))
    assert out.max_lsb == 0 and out.top1_agreement == 1.0
