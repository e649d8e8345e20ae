"""MQE sensitivity: determinism, suffix re-execution ≡ full run, KL and rank statistics vs SciPy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from ir_models import tiny_mobilenet, tiny_resnet

from codesign.mqe import (
    direct_sensitivity,
    kl_divergence,
    layer_mask,
    mqe_sensitivity,
    rankdata,
    save_sensitivity_csv,
    spearman,
)
from codesign.quant.bitconfig import BitConfig
from codesign.quant.golden import GoldenModel
from codesign.quant.qgraph import quantize_model

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module", params=["tiny_resnet", "tiny_mobilenet"])
def setup(request):
    g = {"tiny_resnet": tiny_resnet, "tiny_mobilenet": tiny_mobilenet}[request.param]()
    x = np.random.default_rng(3).uniform(0, 1, (12, *g.input_shape)).astype(np.float32)
    return g, x, quantize_model(g, BitConfig.uniform(g, 8), x)


def test_deterministic_under_seed(setup) -> None:
    _g, x, qg = setup
    a = mqe_sensitivity(qg, x, seed=7, progress=False)
    b = mqe_sensitivity(qg, x, seed=7, progress=False)
    c = mqe_sensitivity(qg, x, seed=8, progress=False)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not np.array_equal(a.scores, c.scores)
    assert a.layers == [n.name for n in qg.gemm_nodes()]
    assert np.all(a.scores >= 0)


def test_suffix_execution_equals_full_masked_run(setup) -> None:
    """The cached-prefix trick must give exactly the KL of running the masked model from scratch."""
    _g, x, qg = setup
    s = mqe_sensitivity(qg, x, alpha=0.5, seed=1, engine="integer", batch_size=5, progress=False)
    base = qg.dequantize_output(GoldenModel(qg).run(qg.quantize_input(x)))
    for k, node in enumerate(qg.gemm_nodes()):
        w = node.params["weight"]
        qm = qg.with_params(node.name, weight=np.where(layer_mask(w.shape, 0.5, 1, k), 0, w))
        out = qm.dequantize_output(GoldenModel(qm).run(qm.quantize_input(x)))
        assert s.scores[k] == pytest.approx(kl_divergence(base, out).mean(), rel=1e-12, abs=1e-15)


def test_mask_fraction_is_alpha() -> None:
    m = layer_mask((64, 64, 9), 0.5, 0, 3)
    assert abs(m.mean() - 0.5) < 0.01
    assert abs(layer_mask((64, 64, 9), 0.2, 0, 3).mean() - 0.2) < 0.01


def test_kl_matches_definition() -> None:
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(5, 10)), rng.normal(size=(5, 10))
    pp = np.exp(p) / np.exp(p).sum(1, keepdims=True)
    qq = np.exp(q) / np.exp(q).sum(1, keepdims=True)
    np.testing.assert_allclose(kl_divergence(p, q), scipy.stats.entropy(pp, qq, axis=1), rtol=1e-10)
    np.testing.assert_allclose(kl_divergence(p, p), 0, atol=1e-12)


def test_rank_statistics_match_scipy() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = rng.integers(0, 6, 15).astype(float)  # with ties
        b = rng.normal(size=15)
        np.testing.assert_allclose(rankdata(a), scipy.stats.rankdata(a))
        assert spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-12)


def test_direct_sensitivity_and_csv(setup, tmp_path) -> None:
    g, x, qg = setup
    d = direct_sensitivity(g, x, x, low_bits=2, progress=False)
    m = mqe_sensitivity(qg, x, progress=False)
    assert d.layers == m.layers and np.all(d.scores >= 0) and d.scores.max() > 0
    p = save_sensitivity_csv(tmp_path / "sensitivity.csv", [m, d])
    lines = p.read_text().splitlines()
    assert lines[0] == "layer,mqe,mqe_rank,direct,direct_rank" and len(lines) == len(m.layers) + 1
