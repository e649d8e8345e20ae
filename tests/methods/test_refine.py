"""``ohq``'s measured refinement against brute force: the neighbourhood, the budgets, local optimality."""

from __future__ import annotations

import itertools

import pytest

from codesign.ilp import Budgets
from codesign.methods import get_method
from codesign.methods._common import layer_costs
from codesign.methods.refine import base_logits, groups, measured_kl, neighbours, predicted, refine

pytestmark = pytest.mark.unit
WIDTHS = [2, 4, 8]


def test_groups_merge_ties_and_drop_pins() -> None:
    layers = ["a", "b", "c", "d", "e", "f"]
    units = groups(layers, [("a", "b"), ("b", "c"), ("x", "e")], {"d": 8})
    assert sorted(units) == [("a", "b", "c"), ("e",), ("f",)]
    assert groups(layers, [("c", "d")], {"d": 8}) == [("a",), ("b",), ("e",), ("f",)]  # a pin holds its tie


def _brute_neighbours(bits: dict[str, int], units: list[tuple[str, ...]]) -> set[tuple[tuple[str, int], ...]]:
    """Every configuration over the units, kept when one unit changed or two moved one step in opposite directions."""
    out = set()
    for choice in itertools.product(range(len(WIDTHS)), repeat=len(units)):
        cfg = dict(bits)
        delta = []
        for u, k in zip(units, choice):
            cfg.update({n: WIDTHS[k] for n in u})
            delta.append(k - WIDTHS.index(bits[u[0]]))
        moved = [d for d in delta if d]
        if len(moved) == 1 or sorted(moved) == [-1, 1]:
            out.add(tuple(sorted(cfg.items())))
    return out


@pytest.mark.parametrize("start", [(2, 2, 2, 2), (8, 8, 8, 8), (2, 4, 8, 4), (4, 4, 2, 8)])
def test_neighbours_match_brute_force(start: tuple[int, ...]) -> None:
    bits = dict(zip("abcde", (*start, start[0])))  # e is tied to a
    units = groups(list(bits), [("a", "e")], {})
    got = neighbours(bits, units, WIDTHS)
    keys = [tuple(sorted(c.items())) for c in got]
    assert len(keys) == len(set(keys))
    assert set(keys) == _brute_neighbours(bits, units)
    assert all(c["a"] == c["e"] for c in got)


def _setup(make_problem):
    p = make_problem(n_images=6)
    costs = layer_costs(p)
    names = [c.name for c in costs]
    lo = sum(c.cycles[2] for c in costs)
    hi = sum(c.cycles[8] for c in costs)
    budgets = Budgets(latency_cycles=lo + 0.3 * (hi - lo))
    fisher = get_method("ohq-fisher")
    sens = fisher.sensitivity(p)
    p.budgets = budgets
    start = fisher.allocate(p, sens).bitconfig
    return p, costs, budgets, sens.per_width, {n: start.layers[n].w_bits for n in names}


def test_refine_ends_at_a_measured_local_optimum(make_problem) -> None:
    """With room for every neighbour, no feasible neighbour of the result measures a lower KL (brute force)."""
    p, costs, budgets, table, start = _setup(make_problem)
    res = refine(p, costs, budgets, table, start, evals=10_000, batch=10_000)
    base = base_logits(p)
    assert not budgets.excess(budgets.totals(costs, res.bits))
    assert res.kl == pytest.approx(measured_kl(p, res.bits, base), rel=1e-6)
    assert res.start_kl == pytest.approx(measured_kl(p, start, base), rel=1e-6)
    assert res.kl <= res.start_kl
    assert res.predicted == pytest.approx(predicted(table, res.bits))
    units = groups(list(start), [], {})
    for cand in neighbours(res.bits, units, WIDTHS):
        if not budgets.excess(budgets.totals(costs, cand)):
            assert measured_kl(p, cand, base) >= res.kl - 1e-12
    assert res.evaluations == len(res.history)
    assert res.history[0]["kl"] == res.start_kl


def test_refine_respects_the_evaluation_cap_and_the_table_order(make_problem) -> None:
    p, costs, budgets, table, start = _setup(make_problem)
    res = refine(p, costs, budgets, table, start, evals=3, batch=2)
    assert res.evaluations <= 3
    assert res.kl <= res.start_kl
    first = res.history[1:3]  # the first round measures the two neighbours the table predicts cheapest
    fits = [c for c in neighbours(start, groups(list(start), [], {}), WIDTHS)
            if not budgets.excess(budgets.totals(costs, c))]
    cheapest = sorted(predicted(table, c) for c in fits)[:len(first)]
    assert [h["predicted"] for h in first] == pytest.approx(cheapest)
    assert refine(p, costs, budgets, table, start, evals=1).bits == start  # only the start measured


def test_ohq_refines_and_ohq_fisher_does_not(make_problem) -> None:
    p, _costs, _budgets, _table, _start = _setup(make_problem)
    ohq = get_method("ohq").search(p)
    plain = get_method("ohq-fisher").search(p)
    assert ohq.info["refine_kl"] <= ohq.info["refine_start_kl"]
    assert 1 <= ohq.info["refine_evaluations"] <= 16
    assert "refine_kl" not in plain.info
    assert {n: lb.w_bits for n, lb in ohq.bitconfig.layers.items()} != {} and ohq.info["meets_all"] is not False
    with pytest.raises(ValueError, match="refine"):
        get_method("ohq", refine=-1)
