"""ZeroQ: the Pareto DP against brute force, the KL table against full re-quantization, the method."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest
from ir_models import tiny_mobilenet, tiny_resnet
from method_helpers import random_images

from codesign.ilp import Budgets, InfeasibleBudgetError, ratio_to_size, solve_table
from codesign.methods import METHODS
from codesign.methods.zeroq import best_under, kl_sensitivity_table, pareto_frontier, substitute_width
from codesign.quant.bitconfig import BitConfig, LayerBits
from codesign.quant.fakequant import FakeQuantModel
from codesign.quant.fold import fold_batchnorm
from codesign.quant.golden import GoldenModel
from codesign.quant.qgraph import quantize_model

pytestmark = pytest.mark.unit


# ---- Pareto DP ------------------------------------------------------------------------------------
def brute_pareto(sizes, values):
    """All assignments, then the non-dominated (size, value) pairs, written independently."""
    pts = {}
    for widths in product(*[sorted(s) for s in sizes]):
        s = sum(sz[b] for sz, b in zip(sizes, widths))
        v = math.fsum(val[b] for val, b in zip(values, widths))
        pts.setdefault(s, []).append(v)
    best_per_size = sorted((s, min(vs)) for s, vs in pts.items())
    front, best = [], math.inf
    for s, v in best_per_size:
        if v < best:
            front.append((s, v))
            best = v
    return front


def random_dp_instance(rng: np.random.Generator):
    n = int(rng.integers(1, 6))
    cands = sorted(rng.choice(range(2, 9), size=int(rng.integers(1, 5)), replace=False).tolist())
    sizes, values = [], []
    for _ in range(n):
        nw = int(rng.integers(1, 40))
        sizes.append({b: nw * b for b in cands})
        # mostly decreasing with width, sometimes not (ZeroQ's S_i(b) need not be monotone)
        values.append({b: float(rng.exponential() * (9 - b) ** 2 + rng.choice([0.0, rng.random()])) for b in cands})
    return sizes, values


@pytest.mark.parametrize("seed", range(60))
def test_pareto_frontier_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes, values = random_dp_instance(rng)
    front = pareto_frontier(sizes, values)
    want = brute_pareto(sizes, values)
    assert [p.size_bits for p in front] == [s for s, _ in want]
    assert [p.value for p in front] == pytest.approx([v for _, v in want], rel=1e-12)
    for p in front:  # each point's widths really produce its size and value
        assert sum(sz[b] for sz, b in zip(sizes, p.widths)) == p.size_bits
        assert math.fsum(val[b] for val, b in zip(values, p.widths)) == pytest.approx(p.value, rel=1e-12)
    # the budgeted optimum: limited DP == best point under the limit == brute force
    total_lo, total_hi = want[0][0], max(s for s, _ in want)
    limit = int(rng.integers(total_lo, total_hi + 1))
    limited = pareto_frontier(sizes, values, limit)
    best = best_under(limited, limit)
    assert best is not None and best.size_bits <= limit
    assert best.value == pytest.approx(min(v for s, v in want if s <= limit), rel=1e-12)
    assert best_under(front, limit).value == pytest.approx(best.value, rel=1e-12)  # type: ignore[union-attr]
    assert pareto_frontier(sizes, values, total_lo - 1) == []


def test_pareto_frontier_rejects_mismatched_widths() -> None:
    with pytest.raises(ValueError, match="same"):
        pareto_frontier([{2: 2, 4: 4}], [{2: 1.0}])


# ---- KL sensitivity table -----------------------------------------------------------------------
@pytest.mark.parametrize("builder", [tiny_resnet, tiny_mobilenet])
def test_substitute_width_equals_full_requantization(builder) -> None:
    """Re-deriving one GEMM at b bits == quantize_model with that layer at (W=b, A=8), same calibration."""
    g = builder()
    x = random_images(g, 6)
    base = BitConfig.uniform(g, 8)
    qg8 = quantize_model(g, base, x, method="mse", weight_clip="mse")
    folded = fold_batchnorm(g)
    for name in [ly.name for ly in g.quantizable()][::2]:
        layers = dict(base.layers)
        layers[name] = LayerBits(3, 8)
        ref = quantize_model(g, BitConfig(layers, base.default_act_bits, g.name), x, method="mse", weight_clip="mse")
        sub = substitute_width(qg8, folded, name, 3, "mse")
        xq = qg8.quantize_input(x)
        np.testing.assert_array_equal(GoldenModel(sub).run(xq), GoldenModel(ref).run(xq))
        for key, val in ref.node(name).params.items():
            np.testing.assert_array_equal(sub.node(name).params[key], val)


def test_kl_table_matches_independent_computation() -> None:
    g = tiny_resnet()
    x = random_images(g, 10)
    qg8 = quantize_model(g, BitConfig.uniform(g, 8), x, method="mse")
    table = kl_sensitivity_table(qg8, fold_batchnorm(g), x, [2, 4, 8], batch_size=4)
    assert set(table) == {ly.name for ly in g.quantizable()}
    base = FakeQuantModel(qg8).predict(x)
    for name in ("stem", "b2c1", "fc"):
        assert table[name][8] == 0.0
        for b in (2, 4):
            # oracle: whole-model run of an independently quantized model, KL from probabilities
            layers = dict(BitConfig.uniform(g, 8).layers)
            layers[name] = LayerBits(b, 8)
            q = quantize_model(g, BitConfig(layers, 8, g.name), x, method="mse")
            p_ref, p_low = base, FakeQuantModel(q).predict(x)
            kl = float(np.mean(np.sum(p_ref * (np.log(p_ref) - np.log(p_low)), axis=1)))
            assert table[name][b] == pytest.approx(kl, rel=1e-6, abs=1e-12)
    assert all(v[b] >= -1e-12 for v in table.values() for b in v)


# ---- the method -------------------------------------------------------------------------------------
def test_zeroq_method_size_budget(make_problem) -> None:
    p0 = make_problem()
    size = ratio_to_size(p0.graph, 0.4, [2, 4, 8])
    p = make_problem(budgets=Budgets(size_mbit=size))
    res = METHODS["zeroq"]().search(p)
    bc = res.bitconfig
    assert bc.size_mbit(p.graph) <= size + 1e-12
    assert res.info["allocator"] == "pareto-dp" and res.info["meets"] == {"size_mbit": True}
    assert all(lb.w_bits == lb.a_bits and lb.w_bits in (2, 4, 8) for lb in bc.layers.values())
    sens = res.info["sensitivity"]
    # the DP optimum equals the ILP optimum of the same objective (independent solver)
    ilp = solve_table(_costs(p), [2, 4, 8], p.budgets, sens, sense="min")
    assert res.info["objective"] == pytest.approx(ilp.objective, rel=1e-9, abs=1e-15)
    # and it is the exact optimum: brute force over all 3^7 assignments
    names = p.layers
    nw = {n: p.graph[n].params["kernel"].size for n in names}
    limit = math.floor(size * 1e6 + 1e-6)
    best = min(math.fsum(sens[n][b] for n, b in zip(names, w)) for w in product([2, 4, 8], repeat=len(names))
               if sum(nw[n] * b for n, b in zip(names, w)) <= limit)
    assert res.info["objective"] == pytest.approx(best, rel=1e-12)
    # deterministic
    again = METHODS["zeroq"]().search(p)
    assert again.bitconfig.layers == bc.layers and again.info["sensitivity"] == sens


def test_zeroq_method_latency_budget_uses_ilp(make_problem) -> None:
    p0 = make_problem()
    lat_hi = sum(p0.table.get(n, 8).cycles_total for n in p0.layers)
    lat_lo = sum(p0.table.get(n, 2).cycles_total for n in p0.layers)
    budgets = Budgets(size_mbit=ratio_to_size(p0.graph, 0.7, [2, 4, 8]), latency_cycles=lat_lo + 0.3 * (lat_hi - lat_lo))
    p = make_problem(budgets=budgets)
    res = METHODS["zeroq"]().search(p)
    assert res.info["allocator"] == "ilp"
    assert res.info["meets"] == {"size_mbit": True, "latency_cycles": True}
    assert res.info["latency_cycles"] <= budgets.latency_cycles


def test_zeroq_infeasible_size_budget(make_problem) -> None:
    p0 = make_problem()
    too_small = ratio_to_size(p0.graph, 0.0, [2, 4, 8]) * 0.9
    with pytest.raises(InfeasibleBudgetError, match="between"):
        METHODS["zeroq"]().search(make_problem(budgets=Budgets(size_mbit=too_small)))


def _costs(p):
    from codesign.methods._common import layer_costs

    return layer_costs(p)


def test_substitute_width_follows_gptq_rounding() -> None:
    """With weight_round="gptq" the substituted layer uses GPTQ codes, as the full quantization does."""
    import inspect

    if "weight_round" not in inspect.signature(quantize_model).parameters:
        pytest.skip("quantize_model has no weight_round option in this tree")
    from codesign.quant.gptq import input_gram

    g = tiny_resnet()
    x = random_images(g, 6)
    base = BitConfig.uniform(g, 8)
    qg8 = quantize_model(g, base, x, method="mse", weight_round="gptq")
    folded = fold_batchnorm(g)
    grams = input_gram(folded, x, [ly.name for ly in g.quantizable()])
    for name in ("b1c1", "fc"):
        layers = dict(base.layers)
        layers[name] = LayerBits(3, 8)
        ref = quantize_model(g, BitConfig(layers, 8, g.name), x, method="mse", weight_round="gptq")
        sub = substitute_width(qg8, folded, name, 3, "max", grams[name])
        np.testing.assert_array_equal(sub.node(name).params["weight"], ref.node(name).params["weight"])
        rtn = substitute_width(qg8, folded, name, 3, "max")
        assert not np.array_equal(rtn.node(name).params["weight"], ref.node(name).params["weight"])
