"""A new quantized op is one module plus one handler per exporter (issue 19).

This file is that module: :class:`ToyRelu` (an op class registered in the op registry) and
its QKeras and hls4ml handlers. Registered, it takes standalone ReLU layers over from the
built-in ``relu`` op, and nothing else in the package changes: quantization, the golden
model, the saved format, both exporters and OQA's placement all reach it through the
registries. The oracle is the built-in op: both compute ``max(x, 0)`` on the input's grid,
so every code must be the same with and without the toy op.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("qkeras")
import tensorflow as tf
from board.conftest import overlay, sim_board  # noqa: F401  (fixtures)
from ir_models import Builder

from codesign import oqa
from codesign.export.hls4ml import hls4ml_precision_table, unsupported_nodes
from codesign.export.hls4ml_ops import HLS4ML_HANDLERS, hls4ml_handler
from codesign.export.qkeras import to_qkeras
from codesign.export.qkeras_ops import QKERAS_HANDLERS, qkeras_handler
from codesign.graph.ir import Activation, Layer
from codesign.quant.bitconfig import BitConfig
from codesign.quant.golden import GoldenModel
from codesign.quant.ops.base import ATTR, PS, LowerCtx, QOp, register, unregister
from codesign.quant.qgraph import quantize_model
from codesign.quant.qir import QNode, QTensor
from codesign.quant.qserialize import load_qgraph, save_qgraph

pytestmark = pytest.mark.tf


@dataclass(frozen=True, kw_only=True)
class ToyRelu(QOp):
    """``max(x, floor)`` on the input's grid (the toy lowers ReLU with ``floor = 0``)."""

    kind = "toy_relu"
    placement = PS
    transparent = True
    floor: int = field(default=0, metadata=ATTR)

    def run(self, ins: list[np.ndarray], out: QTensor) -> np.ndarray:
        return np.maximum(ins[0], self.floor)

    @classmethod
    def accepts(cls, layer: Layer) -> bool:
        return isinstance(layer, Activation) and layer.kind == "relu"

    @classmethod
    def lower(cls, layer: Layer, ins: list[QTensor], ctx: LowerCtx) -> None:
        y = ctx.new_tensor(layer, False, src=ins[0])
        ctx.emit(cls().to_node(layer.name, [ins[0].name], y.name))


def toy_to_qkeras(ex, n: QNode, op: ToyRelu, ins: list, out: QTensor):
    """QKeras handler: ``ReLU(x - floor) + floor``."""
    x = ex.affine(ins[0], f"{n.name}_down", beta=-op.floor) if op.floor else ins[0]
    y = ex.layer(tf.keras.layers.ReLU(name=n.name), x)
    return ex.affine(y, f"{n.name}_up", beta=op.floor) if op.floor else y


def toy_hls4ml_support(qg, node: QNode, op: ToyRelu, io_type: str) -> str | None:
    """hls4ml handler: the QKeras layers above always convert."""
    return None


@pytest.fixture
def toy():
    """Register the toy op and its handlers for one test."""
    register(ToyRelu)
    qkeras_handler(ToyRelu)(toy_to_qkeras)
    hls4ml_handler(ToyRelu)(toy_hls4ml_support)
    yield ToyRelu
    unregister(ToyRelu)
    QKERAS_HANDLERS.pop(ToyRelu, None)
    HLS4ML_HANDLERS.pop(ToyRelu, None)


def _model_and_data():
    b = Builder((12, 12, 3), seed=3)
    x = b.cbr("input", "stem", 8, act=None)
    x = b.act(b.pool(x, "pool", "max", 2, 2), "toy", "relu")  # standalone: a max-pool does not fuse it
    x = b.cbr(x, "c2", 8)
    g = b.graph("toy_net", b.softmax(b.dense(b.gpool(x, "gap"), "fc", 5), "sm"))
    return g, np.random.default_rng(0).uniform(0, 1, (6, 12, 12, 3))


def _quantize(g, x):
    return quantize_model(g, BitConfig.uniform(g, 4), x)


def test_toy_op_golden_equals_the_builtin_op(toy, tmp_path) -> None:
    g, x = _model_and_data()
    qg = _quantize(g, x)
    assert isinstance(qg.node("toy").op, ToyRelu) and qg.node("toy").attrs["floor"] == 0
    y = GoldenModel(qg).run(qg.quantize_input(x))
    again = GoldenModel(load_qgraph(save_qgraph(qg, tmp_path / "q"))).run(qg.quantize_input(x))
    unregister(ToyRelu)
    ref = _quantize(g, x)
    assert ref.node("toy").kind == "relu"
    assert [t.__dict__ for t in qg.tensors.values()] == [t.__dict__ for t in ref.tensors.values()]
    want = GoldenModel(ref).run(ref.quantize_input(x))
    assert (want > 0).any() and np.array_equal(y, want) and np.array_equal(again, want)


def test_toy_op_exports_through_its_handlers(toy) -> None:
    g, x = _model_and_data()
    qg = _quantize(g, x)
    codes = qg.quantize_input(x)
    model = to_qkeras(qg, io="codes", exact=True)
    np.testing.assert_array_equal(model.predict(codes.astype(np.float32), verbose=0), GoldenModel(qg).run(codes))
    assert unsupported_nodes(qg) == {}
    assert "toy_relu" in {row["kind"] for row in hls4ml_precision_table(qg)}
    HLS4ML_HANDLERS.pop(ToyRelu)  # without its handler the hls4ml export names the node
    assert "toy" in unsupported_nodes(qg)


@pytest.mark.rtl
def test_oqa_places_the_toy_op_on_the_ps(toy, sim_board, overlay) -> None:  # noqa: F811 - board fixtures
    """OQA runs the GEMMs on the simulated overlay and times the toy op on the CPU, by placement."""
    g, _x = _model_and_data()
    res = oqa.measure_full(g, [4], sim_board, overlay, warmup=0, progress=False)
    assert [d.layer for d in res.details] == ["stem", "c2", "fc"]
    ps = {p.node: p.kind for p in res.ps_ops}
    assert ps["toy"] == "toy_relu" and not {"stem", "c2", "fc"} & set(ps)
