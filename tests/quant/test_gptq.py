"""GPTQ weight rounding: Gram matrices, the error-compensation rule, and its use in quantize_model."""

from __future__ import annotations

import numpy as np
import pytest
from ir_models import Builder, tiny_mobilenet, tiny_resnet

from codesign.graph import ops
from codesign.graph.execute import run_float
from codesign.graph.ir import Conv2D, Dense
from codesign.quant.bitconfig import BitConfig
from codesign.quant.dyadic import qrange, quantize
from codesign.quant.fold import fold_batchnorm
from codesign.quant.golden import GoldenModel
from codesign.quant.gptq import LayerGram, gptq_codes, input_gram
from codesign.quant.qgraph import quantize_model

pytestmark = pytest.mark.unit


def _images(g, n=6, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, *g[g.inputs[0]].shape)).astype(np.float32)


@pytest.mark.parametrize("make", [tiny_resnet, tiny_mobilenet])
def test_gram_reproduces_output_energy(make) -> None:
    """sum_c w_c^T H_g w_c * rows == ||layer output without bias||^2, with the output from ops.conv2d."""
    g = fold_batchnorm(make())
    x = _images(g)
    names = [ly.name for ly in g.quantizable()]
    grams = input_gram(g, x, names, batch_size=4)
    acts = run_float(g, x, collect=True)
    kinds = set()
    for ly in g.quantizable():
        xin = acts[ly.inputs[0]].astype(np.float64)
        w = ly.params["kernel"].astype(np.float64)
        if isinstance(ly, Conv2D):
            y = ops.conv2d(xin, w, tuple(ly.strides), tuple(ly.padding), ly.groups)
            rows = y.shape[0] * y.shape[1] * y.shape[2]
            groups = ly.groups
            kinds.add("depthwise" if groups > 1 else "conv")
        else:
            y = xin.reshape(len(xin), -1) @ w
            rows, groups = y.shape[0], 1
            kinds.add("dense")
        h = grams[ly.name].gram
        cout = w.shape[-1]
        wk = w.reshape(-1, cout).reshape(-1, groups, cout // groups).transpose(1, 0, 2)
        energy = sum(np.einsum("kc,kl,lc->", wk[i], h[i], wk[i]) for i in range(groups)) * rows
        assert energy == pytest.approx(float((y**2).sum()), rel=1e-9)
    assert kinds >= {"conv", "dense"}


def test_diagonal_gram_is_round_to_nearest() -> None:
    """With uncorrelated inputs there is nothing to compensate: GPTQ == round-to-nearest."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 3, 4, 5))
    s = np.abs(w).reshape(-1, 5).max(0) / 7
    gram = np.diag(rng.uniform(0.5, 2.0, 36))[None]
    assert np.array_equal(gptq_codes(w, s, 4, gram), quantize(w, s, 4, True, narrow=True))


def test_error_compensation_beats_rounding_on_correlated_inputs() -> None:
    """Output error ||X (W - sQ)||^2 on the data H was built from: GPTQ below round-to-nearest."""
    rng = np.random.default_rng(2)
    ratios = []
    for _ in range(10):
        k, cout, rows = 24, 8, 400
        mix = rng.normal(size=(k, k))
        x = rng.normal(size=(rows, k)) @ mix  # correlated inputs
        w = rng.normal(size=(k, cout))
        s = np.abs(w).max(0) / qrange(3, True, narrow=True)[1]
        gram = LayerGram((x.T @ x / rows)[None])
        q_g = gptq_codes(w, s, 3, gram)
        q_n = quantize(w, s, 3, True, narrow=True)
        lo, hi = qrange(3, True, narrow=True)
        assert q_g.min() >= lo and q_g.max() <= hi
        err_g = float(((x @ (w - q_g * s)) ** 2).sum())
        err_n = float(((x @ (w - q_n * s)) ** 2).sum())
        ratios.append(err_g / err_n)
    assert np.median(ratios) < 0.8 and max(ratios) < 1.05


def test_quantize_model_gptq() -> None:
    g = tiny_mobilenet()
    x = _images(g, 8)
    bc = BitConfig.uniform(g, 4)
    q_g = quantize_model(g, bc, x, method="mse", weight_clip="mse", weight_round="gptq")
    q_n = quantize_model(g, bc, x, method="mse", weight_clip="mse", weight_round="nearest")
    changed = 0
    for a, b in zip(q_g.nodes, q_n.nodes):
        assert a.name == b.name
        if a.is_gemm:
            lo, hi = qrange(4, True, narrow=True)
            assert a.params["weight"].min() >= lo and a.params["weight"].max() <= hi
            assert np.array_equal(a.params["w_scale"], b.params["w_scale"])  # same grid, other grid points
            changed += int(not np.array_equal(a.params["weight"], b.params["weight"]))
    assert changed >= 1
    GoldenModel(q_g).run(q_g.quantize_input(x))  # runs within the int32 accumulator
    # 8-bit layers keep round-to-nearest
    q8g = quantize_model(g, BitConfig.uniform(g, 8), x, weight_round="gptq")
    q8n = quantize_model(g, BitConfig.uniform(g, 8), x, weight_round="nearest")
    assert all(np.array_equal(a.params.get("weight", 0), b.params.get("weight", 0)) for a, b in zip(q8g.nodes, q8n.nodes))
    with pytest.raises(ValueError, match="weight rounding"):
        quantize_model(g, bc, x, weight_round="stochastic")


def test_calibration_memo_follows_the_data() -> None:
    """The memoised calibration is keyed on the data: new images give new ranges, same images the same."""
    g = tiny_resnet()
    bc = BitConfig.uniform(g, 4)
    x1, x2 = _images(g, 4, 0), _images(g, 4, 1) * 0.5
    a = quantize_model(g, bc, x1, method="mse")
    b = quantize_model(g, bc, x2, method="mse")
    c = quantize_model(g, bc, x1.copy(), method="mse")
    assert a.tensors[a.input].scale != b.tensors[b.input].scale
    assert all(a.tensors[t].scale == c.tensors[t].scale for t in a.tensors)


def test_two_bit_hswish_and_relu6_quantize() -> None:
    """2-bit outputs over a range > 6 used to give round(3/scale) = 0 and a division by zero."""
    b = Builder((8, 8, 2))
    h = b.cbr("input", "c1", 4, 3, 1, act="hswish")
    h = b.cbr(h, "c2", 4, 3, 1, act="relu6")
    g = b.graph("wide", b.softmax(b.dense(b.gpool(h, "gap"), "fc", 3), "sm"))
    x = _images(g, 4) * 40.0  # wide activations
    qg = quantize_model(g, BitConfig.uniform(g, 2), x)
    for n in qg.nodes:
        if n.is_gemm and n.attrs["act"] > 1:
            assert n.attrs["three"] >= 1 and n.attrs["six"] == 2 * n.attrs["three"]
    GoldenModel(qg).run(qg.quantize_input(x))


def test_dense_gram_shape() -> None:
    g = fold_batchnorm(tiny_resnet())
    dense = next(ly for ly in g.quantizable() if isinstance(ly, Dense))
    gr = input_gram(g, _images(g, 2), [dense.name])[dense.name]
    k = dense.params["kernel"].shape[0]
    assert gr.gram.shape == (1, k, k)
    assert np.allclose(gr.gram, gr.gram.transpose(0, 2, 1))
