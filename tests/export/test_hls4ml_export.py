"""hls4ml export: per-layer precision from the BitConfig, and a g++ C-sim equal to the golden model.

Tolerance: 0 LSB against the golden model. Every requant multiplier and bias is a dyadic
constant that the chosen ``ap_fixed`` types hold exactly, the accumulators are exact integer
types, and ``AP_RND``/``AP_SAT`` round half up and saturate as the golden model does, so
there is no approximation left on these ops (see ``codesign.export.hls4ml``).
Against QKeras the bound is the QKeras one (1 LSB; measured 0).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

pytest.importorskip("tensorflow")
pytest.importorskip("qkeras")
pytest.importorskip("hls4ml")

from export_cases import MODELS, bitconfig, images
from ir_models import Builder

from codesign.errors import UnsupportedLayerError
from codesign.export import hls4ml as hx
from codesign.export.qkeras import to_qkeras
from codesign.graph.ir import Graph
from codesign.quant.golden import GoldenModel
from codesign.quant.qgraph import QGraph, quantize_model

pytestmark = pytest.mark.tf
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not on PATH")


def tiny_stream_net(seed: int = 0) -> Graph:
    """Conv/depthwise/pool/add/dense net whose pooling io_stream supports (pool == stride)."""
    b = Builder((8, 8, 3), seed)
    x = b.cbr("input", "c1", 8, 3)
    x = b.pool(x, "pool", "max", 2, 2)
    y = b.cbr(x, "dw", 8, 3, groups=8)
    y = b.cbr(y, "c2", 8, 1, act=None)
    x = b.act(b.add(x, y, "add"), "add_relu", "relu")
    x = b.gpool(x, "gap")
    return b.graph("tiny_stream_net", b.dense(x, "fc", 10))


def _qgraph(graph: Graph, bits: str, n: int = 64) -> tuple[QGraph, np.ndarray]:
    x = images(graph, n)
    return quantize_model(graph, bitconfig(graph, bits), x[:16]), x


def _csim_vs_golden(qg: QGraph, x: np.ndarray, out_dir, io_type: str) -> None:
    hls_model = hx.to_hls4ml(qg, out_dir, io_type=io_type)
    hls_model.compile()
    codes = qg.quantize_input(x)
    y = np.asarray(hls_model.predict(np.ascontiguousarray(codes.astype(np.float32)))).reshape(len(x), -1)
    gold = GoldenModel(qg).run(codes)
    diff = np.abs(y - gold)
    assert diff.max() == 0, f"C-sim differs from golden by up to {diff.max()} LSB ({np.mean(diff > 0):.2%} of outputs)"
    assert np.array_equal(y.argmax(1), gold.argmax(1))
    qk = to_qkeras(qg, io="codes").predict(codes.astype(np.float32), verbose=0)
    assert np.abs(y - qk).max() <= 1


@pytest.mark.slow
@pytest.mark.csim
@needs_gxx
def test_tiny_resnet_csim_equals_golden_mixed(tmp_path) -> None:
    """io_parallel C-sim of tiny_resnet under a 2..8-bit mixed config (with a requant node)."""
    qg, x = _qgraph(MODELS["tiny_resnet"](), "mixed")
    assert any(n.kind == "requant" for n in qg.nodes)
    _csim_vs_golden(qg, x, tmp_path, "io_parallel")


@pytest.mark.csim
@needs_gxx
def test_stream_net_csim_equals_golden(tmp_path) -> None:
    """io_stream C-sim, including a depthwise conv (tiny_resnet's 3x3/2 pool is io_parallel only)."""
    qg, x = _qgraph(tiny_stream_net(), "mixed")
    assert any(n.attrs.get("groups", 1) > 1 for n in qg.gemm_nodes())
    _csim_vs_golden(qg, x, tmp_path, "io_stream")


@pytest.mark.parametrize("bits", ["w8", "mixed"])
def test_precision_reflects_bitconfig(bits: str, tmp_path) -> None:
    g = MODELS["tiny_resnet"]()
    qg, _ = _qgraph(g, bits, n=16)
    hls_model = hx.to_hls4ml(qg, tmp_path)
    cfg = yaml.safe_load((tmp_path / hx.CONFIG_FILE).read_text())["LayerName"]
    assert (tmp_path / "firmware").is_dir()
    # hls4ml took the precisions: the converted conv layers carry the BitConfig's weight type
    for n in qg.gemm_nodes():
        layer = hls_model.graph[n.name]
        wt = layer.weights["weight"].type.precision
        assert (wt.width, wt.integer) == (qg.bitconfig[n.name].w_bits,) * 2, n.name
    weight_types = set()
    for n in qg.gemm_nodes():
        wb = qg.bitconfig[n.name].w_bits
        assert cfg[n.name]["Precision"]["weight"] == f"fixed<{wb},{wb}>"
        weight_types.add(wb)
        y = qg.tensors[n.output]
        q = cfg[f"{n.name}_q"]["Precision"]["result"]
        assert q == f"{'fixed' if y.signed else 'ufixed'}<{y.bits},{y.bits},RND,SAT>"
        x = qg.tensors[n.inputs[0]]
        assert x.bits == qg.bitconfig[n.name].a_bits  # the engine reads its a_bits
    table = hx.hls4ml_precision_table(qg)
    assert [r["node"] for r in table] == [n.name for n in qg.nodes]
    assert {r["w_bits"] for r in table if "w_bits" in r} == weight_types
    if bits == "mixed":
        assert len(weight_types) > 2
        assert len({r["output_precision"] for r in table}) > 2
    else:
        assert weight_types == {8}


def test_requant_constants_are_exact() -> None:
    qg, _ = _qgraph(MODELS["tiny_resnet"](), "mixed", n=16)
    for n in qg.gemm_nodes():
        m = n.params["mult"] * np.exp2(-n.params["shift"].astype(np.float64))
        t = hx.exact_fixed(m)
        assert t.fraction <= int(n.params["shift"].max()) and t.width <= 64
        assert np.all(np.ldexp(m, t.fraction) == np.round(np.ldexp(m, t.fraction)))


def test_exact_fixed_types() -> None:
    assert hx.exact_fixed(np.array([0.5, 0.25])) == hx.Fixed(3, 1, False)
    t = hx.exact_fixed(np.array([3.0, -1.25]))
    assert t.signed and t.fraction == 2 and t.integer == 3
    assert hx.Fixed(8, 8, False, True).hls() == "ufixed<8,8,RND,SAT>"


def test_unsupported_nodes_are_named() -> None:
    qg, _ = _qgraph(MODELS["tiny_mobilenet"](), "w8", n=16)
    assert list(hx.unsupported_nodes(qg)) == ["sig"]  # the sigmoid table; h-swish, SE, avg-pool all map
    with pytest.raises(UnsupportedLayerError, match=r"'sig'.*'lut'"):
        hx.check_supported(qg)
    qg, _ = _qgraph(MODELS["tiny_resnet"](), "w8", n=16)
    with pytest.raises(UnsupportedLayerError, match="pool"):
        hx.check_supported(qg, "io_stream")
