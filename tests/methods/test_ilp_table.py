"""``codesign.ilp.solve_table`` (per-(layer, width) objective) against a brute-force oracle."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest

from codesign.ilp import Budgets, IlpError, InfeasibleBudgetError, LayerCost, check_budgets, solve_table

pytestmark = pytest.mark.unit


def random_instance(rng: np.random.Generator, n: int, cands: list[int]
                    ) -> tuple[list[LayerCost], dict[str, dict[int, float]]]:
    """Layers with costs at every width 2..8 and an arbitrary (signed, non-monotone) objective table."""
    costs, obj = [], {}
    for i in range(n):
        nw = int(rng.integers(1, 3000))
        c0, e0 = rng.uniform(1e3, 1e5), rng.uniform(0.1, 10.0)
        cyc = {b: c0 * (b / 8) ** rng.uniform(-0.2, 1.2) for b in range(2, 9)}
        en = {b: e0 * (b / 8) ** rng.uniform(0.2, 1.5) for b in range(2, 9)}
        mem = {b: float(nw * b + rng.integers(0, 500)) for b in range(2, 9)}
        costs.append(LayerCost(f"l{i}", nw, 0.0, cyc, en, mem))
        obj[f"l{i}"] = {b: float(rng.normal()) * 10.0 ** rng.uniform(-3, 1) for b in range(2, 9)}
    return costs, obj


def totals(costs: list[LayerCost], obj: dict, widths: tuple[int, ...], mode: str) -> dict[str, float]:
    """Objective and budget quantities of one assignment, written out independently."""
    mem = [c.onchip_bits[b] / 1e3 for c, b in zip(costs, widths)]  # type: ignore[index]
    return {
        "objective": math.fsum(obj[c.name][b] for c, b in zip(costs, widths)),
        "size_mbit": sum(c.n_weights * b for c, b in zip(costs, widths)) / 1e6,
        "latency_cycles": math.fsum(c.cycles[b] for c, b in zip(costs, widths)),
        "energy_uj": math.fsum(c.energy_uj[b] for c, b in zip(costs, widths)),
        "onchip_kbit": max(mem) if mode == "max" else math.fsum(mem),
    }


def fits(t: dict[str, float], budgets: Budgets) -> bool:
    """Budget semantics of codesign.ilp: whole bits for size, 1e-9 relative for the rest."""
    for k, lim in budgets.active().items():
        if k == "size_mbit":
            if round(t[k] * 1e6) > math.floor(lim * 1e6 + 1e-6):
                return False
        elif t[k] > lim + 1e-9 * max(1.0, abs(lim)):
            return False
    return True


def brute_force(costs, obj, cands, budgets, sense, ties=(), pin=None):
    """Best (objective, widths) over every assignment meeting ties, pins and budgets; None if none does."""
    pin = pin or {}
    names = [c.name for c in costs]
    options = [[pin[n]] if n in pin else cands for n in names]
    best = None
    for widths in product(*options):
        w = dict(zip(names, widths))
        if any(len({w[n] for n in tie}) > 1 for tie in ties):
            continue
        t = totals(costs, obj, widths, budgets.onchip_mode)
        if not fits(t, budgets):
            continue
        v = t["objective"] if sense == "min" else -t["objective"]
        if best is None or v < best[0]:
            best = (v, widths)
    return None if best is None else (best[0] if sense == "min" else -best[0], best[1])


@pytest.mark.parametrize("seed", range(40))
def test_solve_table_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 6))
    cands = sorted(rng.choice(range(2, 9), size=int(rng.integers(1, 4)), replace=False).tolist())
    costs, obj = random_instance(rng, n, cands)
    sense = "min" if seed % 2 == 0 else "max"
    mode = "max" if seed % 3 else "sum"
    ties = [["l0", "l1"]] if n >= 3 and seed % 4 == 1 else []
    pin = {f"l{n - 1}": 8} if n >= 2 and seed % 5 == 2 else None
    # budgets between the cheapest and dearest assignment, some of them inactive
    lo = totals(costs, obj, (min(cands),) * n, mode)
    hi = totals(costs, obj, (max(cands),) * n, mode)
    kw = {}
    for k in ("size_mbit", "latency_cycles", "energy_uj", "onchip_kbit"):
        if rng.random() < 0.6:
            a, b = sorted((lo[k], hi[k]))
            kw[k] = float(a + rng.uniform(-0.1, 1.0) * (b - a))
    budgets = Budgets(**kw, onchip_mode=mode)
    expect = brute_force(costs, obj, cands, budgets, sense, ties, pin)
    if expect is None:
        with pytest.raises(InfeasibleBudgetError):
            solve_table(costs, cands, budgets, obj, sense=sense, ties=ties, pin=pin)
        return
    res = solve_table(costs, cands, budgets, obj, sense=sense, ties=ties, pin=pin)
    widths = tuple(res.bits[c.name] for c in costs)
    t = totals(costs, obj, widths, mode)
    assert fits(t, budgets)
    assert res.objective == pytest.approx(t["objective"], rel=1e-12, abs=1e-15)
    assert res.objective == pytest.approx(expect[0], rel=1e-9, abs=1e-12)
    for tie in ties:
        assert len({res.bits[m] for m in tie}) == 1
    for name, b in (pin or {}).items():
        assert res.bits[name] == b
    assert res.size_mbit == pytest.approx(t["size_mbit"])
    assert res.latency_cycles == pytest.approx(t["latency_cycles"])


def test_tiny_objective_values_are_still_resolved() -> None:
    """An objective of ~1e-15 (e.g. trace x perturbation) is scaled, not lost in CBC's tolerances."""
    costs = [LayerCost(f"l{i}", 1000, 0.0, {b: 1.0 for b in (2, 8)}, {b: 1.0 for b in (2, 8)}) for i in range(3)]
    obj = {"l0": {2: 3e-15, 8: 0.0}, "l1": {2: 1e-15, 8: 0.0}, "l2": {2: 2e-15, 8: 0.0}}
    size = (1000 * 8 + 2 * 1000 * 2) / 1e6  # room for exactly one layer at 8 bit
    res = solve_table(costs, [2, 8], Budgets(size_mbit=size), obj)
    assert res.bits == {"l0": 8, "l1": 2, "l2": 2}
    assert res.objective == pytest.approx(3e-15)


def test_infeasible_budget_reports_range() -> None:
    costs, obj = random_instance(np.random.default_rng(0), 3, [4, 8])
    n = sum(c.n_weights for c in costs)
    with pytest.raises(InfeasibleBudgetError, match=r"size budget .* between .* and .* Mbit") as err:
        solve_table(costs, [4, 8], Budgets(size_mbit=n * 4e-6 * 0.9), obj)
    assert f"{n * 4e-6:.4g}" in str(err.value)
    with pytest.raises(InfeasibleBudgetError, match="Raise the budget"):
        check_budgets(costs, [4, 8], Budgets(size_mbit=n * 4e-6 * 0.9))
    check_budgets(costs, [4, 8], Budgets(size_mbit=n * 4e-6))  # exactly reachable: no error


def test_jointly_infeasible_budgets() -> None:
    """Each budget is reachable alone, not together: the message says so."""
    cyc_fast_wide = {2: 100.0, 8: 10.0}  # wide is fast here (depthwise-like), narrow is small
    costs = [LayerCost(f"l{i}", 1000, 0.0, cyc_fast_wide, {2: 1.0, 8: 1.0}) for i in range(2)]
    obj = {c.name: {2: 1.0, 8: 0.0} for c in costs}
    budgets = Budgets(size_mbit=4000e-6, latency_cycles=50.0)  # size needs both at 2, latency both at 8
    with pytest.raises(InfeasibleBudgetError, match="jointly infeasible"):
        solve_table(costs, [2, 8], budgets, obj)


def test_bad_objective_inputs() -> None:
    costs, obj = random_instance(np.random.default_rng(1), 2, [4, 8])
    with pytest.raises(IlpError, match="no value for layer 'l1' at 6 bit"):
        solve_table(costs, [4, 6], Budgets(), {**obj, "l1": {4: 1.0}})
    with pytest.raises(IlpError, match="without costs"):
        solve_table(costs, [4, 8], Budgets(), {**obj, "ghost": {4: 1.0, 8: 1.0}})
    with pytest.raises(IlpError, match="finite"):
        solve_table(costs, [4, 8], Budgets(), {**obj, "l0": {4: math.nan, 8: 1.0}})
    with pytest.raises(IlpError, match="sense"):
        solve_table(costs, [4, 8], Budgets(), obj, sense="minimise")


def test_lp_file_written(tmp_path) -> None:
    costs, obj = random_instance(np.random.default_rng(2), 2, [4, 8])
    res = solve_table(costs, [4, 8], Budgets(), obj, lp_path=tmp_path / "t.lp")
    assert (tmp_path / "t.lp").read_text() == res.lp_text and "budget" not in res.lp_text
