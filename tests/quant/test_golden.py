"""Integer golden model vs independent oracles: brute-force loops, float model, fake-quant."""

from __future__ import annotations

import numpy as np
import pytest
from ir_models import tiny_mobilenet, tiny_resnet

from codesign.graph.execute import run_float
from codesign.quant.bitconfig import BitConfig, LayerBits
from codesign.quant.dyadic import postprocess, quantize
from codesign.quant.fakequant import FakeQuantModel
from codesign.quant.fold import fold_batchnorm
from codesign.quant.golden import AccumulatorOverflow, GoldenModel, act_params, gemm_accumulate
from codesign.quant.qgraph import QGraph, quantize_model

pytestmark = pytest.mark.unit

MODELS = {"tiny_resnet": tiny_resnet, "tiny_mobilenet": tiny_mobilenet}


def _data(graph, n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, *graph.input_shape)).astype(np.float32)


@pytest.fixture(scope="module", params=list(MODELS))
def model(request):
    g = MODELS[request.param]()
    return g, _data(g, 24)


def _mixed(graph) -> BitConfig:
    widths = [2, 3, 4, 5, 6, 8]
    layers = {ly.name: LayerBits(widths[i % 6], widths[(i + 2) % 6]) for i, ly in enumerate(graph.quantizable())}
    return BitConfig(layers, model=graph.name)


def test_bn_folding_is_exact(model) -> None:
    g, x = model
    folded = fold_batchnorm(g)
    assert not any(ly.op == "batchnorm" for ly in folded)
    np.testing.assert_allclose(run_float(folded, x), run_float(g, x), rtol=1e-5, atol=1e-6)


def _brute_conv(x: np.ndarray, w: np.ndarray, strides, padding, groups: int) -> np.ndarray:
    """Direct nested-loop integer convolution (the independent oracle)."""
    n, h, wd, cin = x.shape
    kh, kw, cin_g, cout = w.shape
    t, b, lft, r = padding
    xp = np.zeros((n, h + t + b, wd + lft + r, cin), dtype=np.int64)
    xp[:, t : t + h, lft : lft + wd] = x
    oh = (h + t + b - kh) // strides[0] + 1
    ow = (wd + lft + r - kw) // strides[1] + 1
    cout_g = cout // groups
    out = np.zeros((n, oh, ow, cout), dtype=np.int64)
    for co in range(cout):
        g = co // cout_g
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, i : i + strides[0] * (oh - 1) + 1 : strides[0], j : j + strides[1] * (ow - 1) + 1 : strides[1],
                           g * cin_g : (g + 1) * cin_g]
                out[..., co] += (patch * w[i, j, :, co]).sum(-1)
    return out


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
def test_gemm_nodes_match_brute_force(model, bits: int) -> None:
    g, x = model
    qg = quantize_model(g, BitConfig.uniform(g, bits), x[:8])
    tr = GoldenModel(qg).trace(qg.quantize_input(x[:4]))
    for node in qg.gemm_nodes():
        (xin,) = tr.inputs[node.name]
        w = node.params["weight"]
        if node.kind == "conv":
            acc = _brute_conv(xin, w, node.attrs["strides"], node.attrs["padding"], node.attrs["groups"])
        else:
            acc = np.einsum("nk,ko->no", xin.astype(np.int64), w.astype(np.int64))
        out = qg.tensors[node.output]
        want = postprocess(acc, node.params["bias"], node.params["mult"], node.params["shift"], act_params(node), out.bits, out.signed)
        np.testing.assert_array_equal(tr.outputs[node.name], want, err_msg=node.name)


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
def test_every_tensor_stays_in_its_range(model, bits: int) -> None:
    g, x = model
    qg = quantize_model(g, BitConfig.uniform(g, bits), x[:8])
    tr = GoldenModel(qg).trace(qg.quantize_input(x))
    for node in qg.nodes:
        t = qg.tensors[node.output]
        y = tr.outputs[node.name]
        assert y.dtype == np.int64
        assert y.min() >= t.qmin and y.max() <= t.qmax, (node.name, t)
        assert tuple(y.shape[1:]) == tuple(t.shape)


def test_weights_are_narrow_per_channel(model) -> None:
    g, x = model
    bc = _mixed(g)
    qg = quantize_model(g, bc, x[:8])
    for node in qg.gemm_nodes():
        wb = bc[node.name].w_bits
        w = node.params["weight"]
        assert np.abs(w).max() <= 2 ** (wb - 1) - 1
        # every non-zero channel uses its full code range (scale = max|w| / qmax)
        per_ch = np.abs(w).reshape(-1, w.shape[-1]).max(0)
        assert np.all((per_ch == 2 ** (wb - 1) - 1) | (per_ch == 0))
        assert qg.tensors[node.inputs[0]].bits <= bc[node.name].a_bits


def test_weight_codes_are_stored_as_int8(model) -> None:
    """Codes are kept in int8 (memory on the board) and equal the int64 quantizer's codes."""
    g, x = model
    bc = _mixed(g)
    qg = quantize_model(g, bc, x[:8])
    folded = fold_batchnorm(g)
    for node in qg.gemm_nodes():
        w = node.params["weight"]
        assert w.dtype == np.int8, node.name
        want = quantize(folded[node.name].params["kernel"], node.params["w_scale"], bc[node.name].w_bits, True,
                        narrow=True)
        np.testing.assert_array_equal(w.astype(np.int64), want, err_msg=node.name)


def test_golden_close_to_float_at_8_bits(model) -> None:
    g, x = model
    qg = quantize_model(g, BitConfig.uniform(g, 8), x)
    pf = run_float(g, x)
    pq = GoldenModel(qg).predict(x)
    assert (pq.argmax(1) == pf.argmax(1)).mean() >= 0.9
    assert np.abs(pq - pf).sum(1).mean() < 0.05


def test_error_grows_as_bits_shrink(model) -> None:
    g, x = model
    pf = run_float(g, x)
    err = []
    for bits in (8, 4, 2):
        qg = quantize_model(g, BitConfig.uniform(g, bits), x)
        err.append(np.abs(GoldenModel(qg).predict(x) - pf).sum(1).mean())
    assert err[0] < err[1] < err[2]


@pytest.mark.parametrize("cfg", ["8", "4", "mixed"])
def test_fakequant_equals_golden(model, cfg: str) -> None:
    g, x = model
    bc = _mixed(g) if cfg == "mixed" else BitConfig.uniform(g, int(cfg))
    qg = quantize_model(g, bc, x[:8])
    xq = qg.quantize_input(x)
    yi = GoldenModel(qg).run(xq)
    yf = FakeQuantModel(qg).run(xq)
    # documented deliberate difference: at most 1 LSB at rare rounding ties
    assert np.abs(yi - yf).max() <= 1
    assert (yi == yf).mean() >= 0.999


def test_percentile_calibration_narrows_ranges(model) -> None:
    g, x = model
    bc = BitConfig.uniform(g, 4)
    a = quantize_model(g, bc, x, method="minmax")
    b = quantize_model(g, bc, x, method="percentile", percentile=99.0)
    narrower = [b.tensors[n].scale <= a.tensors[n].scale * (1 + 1e-9) for n in a.tensors]
    assert all(narrower)
    assert any(b.tensors[n].scale < a.tensors[n].scale * 0.99 for n in a.tensors)


def test_mixed_activation_widths_insert_requant() -> None:
    g = tiny_resnet()
    x = _data(g, 8)
    bc = BitConfig.uniform(g, 8)
    bc.layers["b2c1"] = LayerBits(4, 3)  # b1relu feeds b2c1 (3 bit) and b2sc (8 bit)
    qg = quantize_model(g, bc, x)
    req = qg.node("b2c1__in")
    assert req.kind == "requant"
    assert qg.tensors["b2c1__in"].bits == 3 and qg.tensors["b1relu"].bits == 8
    assert qg.node("b2c1").inputs == ["b2c1__in"]
    GoldenModel(qg).run(qg.quantize_input(x))


def test_masked_weights_change_output_deterministically() -> None:
    g = tiny_resnet()
    x = _data(g, 8)
    qg = quantize_model(g, BitConfig.uniform(g, 8), x)
    node = qg.node("b1c1")
    mask = np.random.default_rng(0).random(node.params["weight"].shape) < 0.5
    masked = qg.with_params("b1c1", weight=np.where(mask, 0, node.params["weight"]))
    xq = qg.quantize_input(x)
    assert not np.array_equal(GoldenModel(masked).run(xq), GoldenModel(qg).run(xq))
    assert np.array_equal(qg.node("b1c1").params["weight"], node.params["weight"])  # original untouched


def test_accumulator_overflow_is_detected() -> None:
    g = tiny_resnet()
    qg: QGraph = quantize_model(g, BitConfig.uniform(g, 8), _data(g, 4))
    node = qg.node("b1c1")
    big = np.full((1, 4, 4, 8), 2**20, dtype=np.int64)
    with pytest.raises(AccumulatorOverflow):
        gemm_accumulate(node, big, weight=np.full_like(node.params["weight"], 127))


def test_qgraph_round_trip_is_bit_exact(model, tmp_path) -> None:
    from codesign.quant.qserialize import load_qgraph, save_qgraph

    g, x = model
    qg = quantize_model(g, _mixed(g), x[:8])
    back = load_qgraph(save_qgraph(qg, tmp_path / "q"))
    xq = qg.quantize_input(x)
    np.testing.assert_array_equal(GoldenModel(back).run(xq), GoldenModel(qg).run(xq))
    assert back.bitconfig.layers == qg.bitconfig.layers
