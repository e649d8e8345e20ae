"""OHQ and its ablations behind the baseline interface, checked against MQE + brute force."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest

from codesign.ilp import Budgets, minmax, omega, ratio_to_size
from codesign.methods import METHODS, get_method
from codesign.methods.ohq import OhqMethod, OqaOnlyMethod
from codesign.mqe import mqe_sensitivity
from codesign.quant.bitconfig import BitConfig

pytestmark = pytest.mark.unit
CANDS = [2, 4, 8]


def _brute(p, value) -> float:
    """max over all W=A assignments under the size budget of sum_i value(i, b_i)."""
    names = p.layers
    nw = [p.graph[n].params["kernel"].size for n in names]
    limit = math.floor(p.budgets.size_mbit * 1e6 + 1e-6)
    return max(sum(value(i, b) for i, b in enumerate(ws)) for ws in product(CANDS, repeat=len(names))
               if sum(a * b for a, b in zip(nw, ws)) <= limit)


def _achieved(p, bc, value) -> float:
    return sum(value(i, bc[n].w_bits) for i, n in enumerate(p.layers))


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_ohq_is_mqe_plus_the_optimal_ilp(make_problem, beta: float) -> None:
    p0 = make_problem()
    p = make_problem(budgets=Budgets(size_mbit=ratio_to_size(p0.graph, 0.5, CANDS)), seed=3)
    res = OhqMethod(beta=beta).search(p)
    ref = mqe_sensitivity(p.quantize(BitConfig.uniform(p.graph, 8)), p.distilled, alpha=0.5, seed=3, progress=False)
    assert res.scores == pytest.approx(ref.as_dict(), rel=1e-12)
    names = p.layers
    om = omega([res.scores[n] for n in names], [p.table.get(n, 8).cycles_total for n in names],
               [p.table.get(n, 8).energy_uj for n in names], beta)
    value = lambda i, b: b * om[i]  # noqa: E731
    assert _achieved(p, res.bitconfig, value) == pytest.approx(_brute(p, value), abs=1e-9)
    assert res.info["meets_all"] is True and res.search_seconds > 0


def test_oqa_only_spends_the_budget_on_cheap_layers(make_problem) -> None:
    p0 = make_problem()
    p = make_problem(budgets=Budgets(size_mbit=ratio_to_size(p0.graph, 0.6, CANDS)))
    res = OqaOnlyMethod().search(p)
    names = p.layers
    c = minmax([p.table.get(n, 8).cycles_total for n in names])
    e = minmax([p.table.get(n, 8).energy_uj for n in names])
    om = 1 - (c + e) / 2
    value = lambda i, b: b * om[i]  # noqa: E731
    assert _achieved(p, res.bitconfig, value) == pytest.approx(_brute(p, value), abs=1e-9)
    assert res.bitconfig.size_mbit(p.graph) > ratio_to_size(p.graph, 0.0, CANDS)  # not all at the minimum


def test_registry_and_seed(make_problem) -> None:
    assert {"ohq", "ohq-mqe-only", "ohq-oqa-only", "haq", "hawq-v3", "zeroq", "direct", "int8", "int4"} <= set(METHODS)
    assert get_method("ohq-mqe-only").beta == 1.0
    p0 = make_problem()
    p = make_problem(budgets=Budgets(size_mbit=ratio_to_size(p0.graph, 0.5, CANDS)), seed=1)
    a, b = get_method("ohq").search(p), get_method("ohq").search(p)
    assert a.scores == b.scores
    assert a.bitconfig.layers == b.bitconfig.layers
    assert np.isfinite(list(a.scores.values())).all()
