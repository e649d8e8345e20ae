"""The Fisher sensitivity (``ohq``'s default) against its oracles: finite differences, Monte Carlo, full re-runs."""

from __future__ import annotations

import numpy as np
import pytest
from ir_models import tiny_mobilenet, tiny_resnet
from method_helpers import random_images

from codesign.fisher import (
    activation_chain,
    dither_excess,
    fisher_probe,
    fisher_sensitivity,
    layer_output,
    logits_layer,
    weight_change,
)
from codesign.graph import grad
from codesign.graph.execute import float_layer, run_float
from codesign.graph.ir import Activation, Graph
from codesign.methods import get_method
from codesign.mqe import kl_divergence, spearman
from codesign.quant.fold import fold_batchnorm

pytestmark = pytest.mark.unit


def _logits(g: Graph, x: np.ndarray) -> np.ndarray:
    return run_float(g, x, collect=True, dtype=np.float64)[logits_layer(g)]


def _with_kernel(g: Graph, name: str, kernel: np.ndarray) -> Graph:
    out = g.copy()
    out[name].params["kernel"] = kernel
    return out


@pytest.mark.parametrize("model", [tiny_resnet, tiny_mobilenet])
def test_probe_gradient_matches_finite_differences(model) -> None:
    """<G_i, X_i dW> (recorded output gradient x layer output change) == d<a, logits>/d eps of W + eps dW."""
    g = fold_batchnorm(model())
    x = random_images(g, 3, seed=5).astype(np.float64)
    head = logits_layer(g)
    gemms = g.quantizable()
    tape = grad.forward(g, x, [head, *(ly.inputs[0] for ly in gemms)], dtype=np.float64)
    a = np.random.default_rng(0).standard_normal(tape.outputs[head].shape)
    dys = grad.output_grads(tape, {head: a}, [ly.name for ly in gemms])
    rng = np.random.default_rng(1)
    eps = 1e-6  # small enough that no ReLU or max-pool kink is crossed
    for ly in gemms:
        dw = rng.standard_normal(ly.params["kernel"].shape)
        analytic = (dys[ly.name] * layer_output(ly, tape.outputs[ly.inputs[0]], dw)).sum()
        up = _logits(_with_kernel(g, ly.name, ly.params["kernel"] + eps * dw), x)
        down = _logits(_with_kernel(g, ly.name, ly.params["kernel"] - eps * dw), x)
        numeric = ((up - down) * a).sum() / (2 * eps)
        assert analytic == pytest.approx(numeric, rel=1e-4, abs=1e-8), ly.name


def test_probe_covariance_is_the_softmax_fisher() -> None:
    """E[a a^T] = diag(p) - p p^T per image (Monte Carlo over 200k probes)."""
    logits = np.array([[2.0, 0.5, -1.0, 0.0], [0.0, 0.0, 0.0, 3.0]])
    rng = np.random.default_rng(3)
    a = np.stack([fisher_probe(logits, rng.standard_normal(logits.shape)) for _ in range(50_000)])  # (draws, images, classes)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    for n in range(len(logits)):
        cov = a[:, n, :].T @ a[:, n, :] / len(a)
        assert np.allclose(cov, np.diag(p[n]) - np.outer(p[n], p[n]), atol=4e-3)


@pytest.mark.parametrize("model", [tiny_resnet, tiny_mobilenet])
def test_estimate_is_the_second_order_kl_of_full_runs(model) -> None:
    """omega_i(6) == lim KL(full float runs with W + t dW) / t^2 (t = 0.1: second-order regime), within 10 %.

    The estimate is exactly quadratic in dW, so the brute-force KL at a tenth of the 6-bit
    rounding change, times 100, is its oracle; 1024 probes per image keep the Monte Carlo
    error at a few per cent.
    """
    g = fold_batchnorm(model())
    x = random_images(g, 16, seed=7)
    sens = fisher_sensitivity(g, x, [6, 8], probes=1024, perturb="round", clip="max")
    base = _logits(g, x)
    brute = []
    for ly in g.quantizable():
        dw = weight_change(ly, 6, "round", "max", None, np.random.default_rng(0))
        kl = kl_divergence(base, _logits(_with_kernel(g, ly.name, ly.params["kernel"] + 0.1 * dw), x)).mean()
        brute.append(kl * 100)
        assert sens.omega[ly.name][8] == 0.0
    est = np.array([sens.omega[ly.name][6] for ly in g.quantizable()])
    assert np.allclose(est, brute, rtol=0.1, atol=1e-8)
    assert spearman(est, np.array(brute)) > 0.9


def test_deterministic_per_seed_and_chunking_only_reorders() -> None:
    g = fold_batchnorm(tiny_resnet())
    x = random_images(g, 6, seed=2)
    a = fisher_sensitivity(g, x, [2, 4, 8], probes=2, seed=3)
    chunked = fisher_sensitivity(g, x, [2, 4, 8], probes=2, seed=3, batch_size=4)  # probes are seeded per image
    for name in a.layers:
        assert chunked.omega[name] == pytest.approx(a.omega[name], rel=1e-5)
    b = fisher_sensitivity(g, x, [2, 4, 8], probes=2, seed=3)
    assert a.omega == b.omega
    c = fisher_sensitivity(g, x, [2, 4, 8], probes=2, seed=4)
    assert a.omega != c.omega
    for name in a.layers:  # a narrower width moves the weights further: larger expected KL
        assert a.omega[name][2] > a.omega[name][4] > 0.0


def test_bad_arguments() -> None:
    g = fold_batchnorm(tiny_resnet())
    x = random_images(g, 2, seed=2)
    with pytest.raises(ValueError, match="probes"):
        fisher_sensitivity(g, x, [4, 8], probes=0)
    with pytest.raises(ValueError, match="perturb"):
        fisher_sensitivity(g, x, [4, 8], perturb="mask")


def test_ohq_uses_the_fisher_estimator(make_problem) -> None:
    """``ohq`` = Fisher per-width sensitivity; ``ohq-mqe`` keeps the measured MQE; both allocate a valid config."""
    p = make_problem(n_images=4)
    res = get_method("ohq").search(p)
    assert res.info["estimator"] == "fisher"
    assert set(res.bitconfig.layers) == set(p.layers)
    assert get_method("ohq-mqe").estimator == "mqe"
    with pytest.raises(ValueError, match="estimator"):
        get_method("ohq", estimator="hessian")


def test_dither_excess_is_the_rounding_variance() -> None:
    """E[(Q(y + d) - Q(y))^2] - d^2 over y uniform in a step (Monte Carlo), for changes below and above a step."""
    rng = np.random.default_rng(4)
    y = rng.random(400_000) * 10
    step = 0.25
    for d in (0.01, 0.1, 0.3, 0.61, -0.4):
        mc = ((np.round((y + d) / step) - np.round(y / step)) ** 2).mean() * step**2 - d**2
        assert dither_excess(np.array([d]), step)[0] == pytest.approx(mc, abs=2e-3 * step)
    assert dither_excess(np.array([0.0, 0.5]), step) == pytest.approx([0.0, 0.0])  # whole steps move deterministically


def test_flip_term_adds_only_where_a_quantizer_sits() -> None:
    """Steps on the layers' own (or their one-to-one activation's) outputs raise omega; no steps: the pure Fisher."""
    g = fold_batchnorm(tiny_resnet())
    x = random_images(g, 6, seed=2)
    plain = fisher_sensitivity(g, x, [4, 8], probes=2, seed=1)
    chains = {ly.name: activation_chain(g, ly.name) for ly in g.quantizable()}
    assert chains["stem"] == ["stem", "stem_act"] and chains["b1c2"] == ["b1c2"]  # b1c2 feeds an Add
    steps = {chains[name][-1]: 0.05 for name in chains}
    flip = fisher_sensitivity(g, x, [4, 8], probes=2, seed=1, steps=steps)
    for name in plain.layers:
        assert flip.omega[name][4] > plain.omega[name][4]
    far = fisher_sensitivity(g, x, [4, 8], probes=2, seed=1, steps={"pool": 0.05})  # not on any chain
    assert far.omega == plain.omega


def test_activation_jvp_is_the_directional_derivative() -> None:
    g = fold_batchnorm(tiny_mobilenet())
    x = random_images(g, 2, seed=3).astype(np.float64)
    acts = [ly.name for ly in g.layers if isinstance(ly, Activation)]
    tape = grad.forward(g, x, [logits_layer(g)], dtype=np.float64)
    full = run_float(g, x, collect=True, dtype=np.float64)
    for name in acts:
        z = full[g[name].inputs[0]]
        dz = np.random.default_rng(0).standard_normal(z.shape) * 1e-7
        numeric = float_layer(g[name], [z + dz]) - float_layer(g[name], [z])
        assert np.allclose(grad.activation_jvp(tape, name, dz), numeric, atol=1e-12), name
