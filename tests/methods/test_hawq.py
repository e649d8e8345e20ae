"""HAWQ-v3: exact Hessian oracles for the HVP and Hutchinson, the perturbation, the method."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest
from ir_models import tiny_mobilenet, tiny_resnet
from method_helpers import random_images

from codesign.errors import CodesignError
from codesign.graph.ir import Activation, Dense, Flatten, Graph, Input, Softmax
from codesign.ilp import Budgets, ratio_to_size
from codesign.methods.hawq import HawqV3Method, hutchinson, quant_perturbation, rademacher
from codesign.quant.bitconfig import BitConfig
from codesign.quant.fold import fold_batchnorm
from codesign.quant.qgraph import quantize_model

pytestmark = pytest.mark.unit


# ---- tiny dense models with a closed-form / finite-difference Hessian ------------------------------
def dense_model(hidden: int | None, seed: int = 0, d: int = 4, k: int = 3) -> Graph:
    """Input (2,2,1) -> Flatten -> [Dense(hidden) -> ReLU] -> Dense(k) -> Softmax."""
    rng = np.random.default_rng(seed)
    layers = [Input("in", shape=(2, 2, 1)), Flatten("flat", ["in"])]
    prev, width = "flat", d
    if hidden:
        layers += [Dense("h", [prev], units=hidden, params={"kernel": rng.normal(0, 0.8, (d, hidden)),
                                                             "bias": rng.normal(0, 0.5, hidden)}),
                   Activation("relu", ["h"], kind="relu")]
        prev, width = "relu", hidden
    layers += [Dense("out", [prev], units=k, params={"kernel": rng.normal(0, 0.8, (width, k)),
                                                      "bias": rng.normal(0, 0.5, k)}),
               Softmax("sm", ["out"])]
    g = Graph("dense", layers, ["sm"])
    g.infer_shapes()
    return g


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def single_layer_hessian(g: Graph, x: np.ndarray) -> np.ndarray:
    """Closed form for softmax regression: H = mean_n (x x^T) kron (diag p - p p^T), W row-major."""
    xf = x.reshape(len(x), -1).astype(np.float64)
    p = softmax(xf @ g["out"].params["kernel"] + g["out"].params["bias"])
    return np.mean([np.kron(np.outer(a, a), np.diag(q) - np.outer(q, q)) for a, q in zip(xf, p)], axis=0)


def two_layer_grad(w1: np.ndarray, w2: np.ndarray, g: Graph, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Hand-written backprop of the mean cross-entropy, flattened [dW1, dW2] (an independent oracle)."""
    xf = x.reshape(len(x), -1)
    pre = xf @ w1 + g["h"].params["bias"]
    h = np.maximum(pre, 0)
    p = softmax(h @ w2 + g["out"].params["bias"])
    dz = (p - np.eye(w2.shape[1])[y]) / len(x)
    dw2 = h.T @ dz
    dh = (dz @ w2.T) * (pre > 0)
    return np.concatenate([(xf.T @ dh).ravel(), dw2.ravel()])


def two_layer_hessian(g: Graph, x: np.ndarray, y: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Full Hessian by central differences of the analytic gradient (exact up to O(eps^2) away from ReLU kinks)."""
    w1, w2 = g["h"].params["kernel"].astype(np.float64), g["out"].params["kernel"].astype(np.float64)
    theta = np.concatenate([w1.ravel(), w2.ravel()])
    cols = []
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = eps
        up, dn = theta + e, theta - e
        gp = two_layer_grad(up[: w1.size].reshape(w1.shape), up[w1.size:].reshape(w2.shape), g, x, y)
        gm = two_layer_grad(dn[: w1.size].reshape(w1.shape), dn[w1.size:].reshape(w2.shape), g, x, y)
        cols.append((gp - gm) / (2 * eps))
    h = np.array(cols).T
    return (h + h.T) / 2


def data(g: Graph, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (n, *g.input_shape)), rng.integers(0, 3, n)


# ---- Hutchinson (NumPy only) ----------------------------------------------------------------------
def test_hutchinson_is_the_mean_of_seeded_quadratic_forms() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(size=(6, 6))
    h = a @ a.T
    shapes = [(2, 2), (2,)]

    def hvp(vs):
        hv = h @ np.concatenate([v.ravel() for v in vs])
        return [hv[:4].reshape(2, 2), hv[4:]]

    est = hutchinson(hvp, ["a", "b"], shapes, max_samples=7, tol=0.0, seed=11)
    draws = np.random.default_rng(11)
    want = []
    for _ in range(7):
        v = np.concatenate([u.ravel() for u in rademacher(draws, shapes)])
        assert set(np.unique(v)) <= {-1.0, 1.0}
        hv = h @ v
        want.append([v[:4] @ hv[:4], v[4:] @ hv[4:]])
    np.testing.assert_allclose(est.samples, want, rtol=1e-12)
    np.testing.assert_allclose(est.traces, np.mean(want, axis=0), rtol=1e-12)
    assert est.n_samples == 7 and not est.converged
    again = hutchinson(hvp, ["a", "b"], shapes, max_samples=7, tol=0.0, seed=11)
    np.testing.assert_array_equal(again.samples, est.samples)


def test_hutchinson_stops_at_tolerance() -> None:
    """For a diagonal Hessian every Rademacher quadratic form equals the trace: stop after 2 draws."""
    d = np.arange(1.0, 6.0)
    est = hutchinson(lambda vs: [d * vs[0]], ["a"], [(5,)], max_samples=50, tol=1e-3, seed=0)
    assert est.n_samples == 2 and est.converged
    assert est.traces[0] == pytest.approx(d.sum())


# ---- TensorFlow HVP against exact Hessians --------------------------------------------------------------
@pytest.mark.tf
@pytest.mark.parametrize("builder", [tiny_resnet, tiny_mobilenet])
def test_tf_forward_matches_run_float(builder) -> None:
    import tensorflow as tf

    from codesign.graph.execute import run_float
    from codesign.methods._tfgraph import tf_forward

    g = builder()
    x = random_images(g, 3).astype(np.float64)
    f, names = tf_forward(g, "float64")
    out = f(tf.constant(x), [tf.constant(g[n].params["kernel"], tf.float64) for n in names]).numpy()
    ref = run_float(g, x, collect=True, dtype=np.float64)[g[g.outputs[0]].inputs[0]]  # logits before softmax
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)  # BN coefficients are float32 in run_float


@pytest.mark.tf
def test_hvp_matches_closed_form_hessian_of_softmax_regression() -> None:
    from codesign.methods.hawq import tf_hvp

    g = dense_model(None)
    x, y = data(g, 20)
    h = single_layer_hessian(g, x)
    xf = x.reshape(len(x), -1)
    p = softmax(xf @ g["out"].params["kernel"] + g["out"].params["bias"])
    assert np.trace(h) == pytest.approx(np.mean((xf**2).sum(1) * (1 - (p**2).sum(1))))  # the oracle itself
    hvp, names, kernels = tf_hvp(g, x, y, batch_size=7, dtype="float64")  # 3 batches accumulate
    assert names == ["out"]
    rng = np.random.default_rng(0)
    for _ in range(3):
        v = rng.normal(size=kernels[0].shape)
        np.testing.assert_allclose(hvp([v])[0].ravel(), h @ v.ravel(), rtol=1e-9, atol=1e-12)
    est = hutchinson(hvp, names, [k.shape for k in kernels], max_samples=400, tol=0.0, seed=3)
    off = h - np.diag(np.diag(h))
    sigma = math.sqrt(2 * (off**2).sum())  # std of one Rademacher quadratic form
    assert abs(est.traces[0] - np.trace(h)) < 5 * sigma / math.sqrt(400)


@pytest.mark.tf
def test_hvp_and_block_traces_match_finite_difference_hessian() -> None:
    from codesign.methods.hawq import tf_hvp

    g = dense_model(5, seed=1)
    x, y = data(g, 12, seed=2)
    pre = x.reshape(len(x), -1) @ g["h"].params["kernel"] + g["h"].params["bias"]
    assert np.abs(pre).min() > 1e-3  # finite differences stay on one side of every ReLU kink
    h = two_layer_hessian(g, x, y)
    hvp, names, kernels = tf_hvp(g, x, y, dtype="float64")
    assert names == ["h", "out"]
    n1 = kernels[0].size
    rng = np.random.default_rng(1)
    v = [rng.normal(size=k.shape) for k in kernels]
    got = np.concatenate([a.ravel() for a in hvp(v)])
    np.testing.assert_allclose(got, h @ np.concatenate([a.ravel() for a in v]), rtol=1e-6, atol=1e-8)
    # per-block traces (shared draws; cross-block terms average out)
    s = 600
    est = hutchinson(hvp, names, [k.shape for k in kernels], max_samples=s, tol=0.0, seed=4)
    blocks = [slice(0, n1), slice(n1, h.shape[0])]
    for i, bi in enumerate(blocks):
        hii = h[bi, bi]
        var = 2 * ((hii - np.diag(np.diag(hii))) ** 2).sum()
        var += sum((h[bi, bj] ** 2).sum() for j, bj in enumerate(blocks) if j != i)
        assert abs(est.traces[i] - np.trace(hii)) < 5 * math.sqrt(var / s), (i, est.traces[i], np.trace(hii))


# ---- perturbation ------------------------------------------------------------------------------------------
def test_quant_perturbation_uses_the_deployed_quantizer() -> None:
    g = tiny_resnet()
    x = random_images(g, 4)
    folded = fold_batchnorm(g)
    for bits, clip in ((4, "max"), (3, "mse")):
        qg = quantize_model(g, BitConfig.uniform(g, bits), x, weight_clip=clip)
        for name in ("stem", "b2sc", "fc"):
            node = qg.node(name)
            deq = node.params["weight"].astype(np.float64) * node.params["w_scale"]
            want = float(((deq - folded[name].params["kernel"].astype(np.float64)) ** 2).sum())
            assert quant_perturbation(folded[name].params["kernel"], bits, clip) == pytest.approx(want, rel=1e-12)
    w = folded["b1c1"].params["kernel"]
    assert quant_perturbation(w, 8) < quant_perturbation(w, 4) < quant_perturbation(w, 2)


def test_quant_perturbation_follows_gptq_rounding() -> None:
    import inspect

    if "weight_round" not in inspect.signature(quantize_model).parameters:
        pytest.skip("quantize_model has no weight_round option in this tree")
    from codesign.quant.gptq import input_gram

    g = tiny_resnet()
    x = random_images(g, 4)
    folded = fold_batchnorm(g)
    grams = input_gram(folded, x, ["b1c1"])
    qg = quantize_model(g, BitConfig.uniform(g, 3), x, weight_round="gptq")
    node = qg.node("b1c1")
    w = folded["b1c1"].params["kernel"].astype(np.float64)
    want = float(((node.params["weight"] * node.params["w_scale"] - w) ** 2).sum())
    assert quant_perturbation(w, 3, "max", grams["b1c1"]) == pytest.approx(want, rel=1e-12)


# ---- the method ---------------------------------------------------------------------------------------------
@pytest.mark.tf
def test_hawq_method_is_optimal_within_budget_and_seeded(make_problem) -> None:
    p0 = make_problem()
    size = ratio_to_size(p0.graph, 0.5, [2, 4, 8])
    p = make_problem(budgets=Budgets(size_mbit=size), train=12)
    method = HawqV3Method(max_samples=4, batch_size=8)
    res = method.search(p)
    assert res.data_used == "train 12 img (labels)" and res.info["hutchinson_samples"] == 4
    assert res.bitconfig.size_mbit(p.graph) <= size + 1e-12 and res.info["meets"] == {"size_mbit": True}
    names = p.layers
    n = {k: p.graph[k].params["kernel"].size for k in names}
    assert res.scores == pytest.approx({k: res.info["trace"][k] / n[k] for k in names})
    # the ILP optimum of sum_i max(tr_i/n_i, 0) * ||Q_b(W_i) - W_i||^2 by brute force
    pert = res.info["perturbation"]
    limit = math.floor(size * 1e6 + 1e-6)

    def obj(ws):
        return math.fsum(max(res.scores[k], 0.0) * pert[k][b] for k, b in zip(names, ws))

    best = min(obj(ws) for ws in product([2, 4, 8], repeat=len(names))
               if sum(n[k] * b for k, b in zip(names, ws)) <= limit)
    assert obj([res.bitconfig[k].w_bits for k in names]) == pytest.approx(best, rel=1e-9, abs=1e-15)
    again = method.search(p)
    assert again.info["trace"] == res.info["trace"] and again.bitconfig.layers == res.bitconfig.layers
    other = method.search(make_problem(budgets=Budgets(size_mbit=size), train=12, seed=1))
    assert other.info["trace"] != res.info["trace"]  # the Rademacher draws follow the seed


def test_hawq_needs_labelled_data(make_problem) -> None:
    with pytest.raises(CodesignError, match="labelled images"):
        HawqV3Method(max_samples=2).search(make_problem())
    p = make_problem(train=4)
    p.train = (p.train[0], p.train[1][:3])  # type: ignore[index]
    with pytest.raises(CodesignError, match="as many labels as images"):
        HawqV3Method(max_samples=2).search(p)
