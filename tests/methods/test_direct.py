"""Direct+OQA: Eq. 5 scores fed into the OHQ ILP, checked against an independent brute force."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest

from codesign.ilp import Budgets, InfeasibleBudgetError, omega, ratio_to_size
from codesign.methods import METHODS
from codesign.methods.direct import DirectMethod
from codesign.mqe import direct_sensitivity
from codesign.quant.qgraph import quantize_model

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("beta", [0.5, 0.9])
def test_direct_scores_and_optimal_allocation(make_problem, beta: float) -> None:
    p0 = make_problem()
    cands = [2, 4, 8]
    size = ratio_to_size(p0.graph, 0.5, cands)
    p = make_problem(budgets=Budgets(size_mbit=size))
    res = DirectMethod(beta=beta).search(p)
    # scores: Eq. 5 at the lowest candidate, with the problem's quantization options
    ref = direct_sensitivity(p.graph, p.distilled, p.distilled, low_bits=2, base_bits=8, progress=False,
                             quantize=lambda g, bc, x: quantize_model(g, bc, x, **p.quant))
    assert res.scores == pytest.approx(ref.as_dict(), rel=1e-12)
    assert res.info["low_bits"] == 2
    # allocation: max sum_i b_i * Omega_i (Omega with cycles/energy at the top width) under the size budget
    names = p.layers
    cyc = [p.table.get(n, 8).cycles_total for n in names]
    en = [p.table.get(n, 8).energy_uj for n in names]
    om = omega([res.scores[n] for n in names], cyc, en, beta)
    nw = [p.graph[n].params["kernel"].size for n in names]
    limit = math.floor(size * 1e6 + 1e-6)
    best = max(float(np.dot(om, ws)) for ws in product(cands, repeat=len(names))
               if sum(a * b for a, b in zip(nw, ws)) <= limit)
    got = [res.bitconfig[n].w_bits for n in names]
    assert float(np.dot(om, got)) == pytest.approx(best, rel=1e-9, abs=1e-12)
    assert res.bitconfig.size_mbit(p.graph) <= size + 1e-12 and res.info["meets"]["size_mbit"]
    assert all(lb.a_bits == lb.w_bits for lb in res.bitconfig.layers.values())


def test_direct_registry_and_energy_budget(make_problem) -> None:
    p0 = make_problem()
    e_lo = sum(p0.table.get(n, 2).energy_uj for n in p0.layers)
    e_hi = sum(p0.table.get(n, 8).energy_uj for n in p0.layers)
    p = make_problem(budgets=Budgets(size_mbit=ratio_to_size(p0.graph, 0.8, [2, 4, 8]), energy_uj=(e_lo + e_hi) / 2))
    res = METHODS["direct"]().search(p)
    assert res.info["meets"] == {"size_mbit": True, "energy_uj": True}
    assert res.info["energy_uj"] <= (e_lo + e_hi) / 2 * (1 + 1e-9)
    with pytest.raises(InfeasibleBudgetError, match="energy budget"):
        METHODS["direct"]().search(make_problem(budgets=Budgets(energy_uj=e_lo * 0.5)))
