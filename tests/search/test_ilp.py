"""The bit-width ILP against an independent brute-force oracle (itertools.product)."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest
from ir_models import tiny_mobilenet, tiny_resnet

from codesign.errors import BitWidthError
from codesign.hwtable import HwRow, HwTable
from codesign.ilp import (
    Budgets,
    IlpError,
    InfeasibleBudgetError,
    LayerCost,
    feasible_range,
    first_last_pins,
    from_hw_table,
    omega,
    ratio_to_size,
    residual_ties,
    solve,
)
from codesign.quant.bitconfig import BitConfig

pytestmark = pytest.mark.unit

ALL_BITS = range(2, 9)
TOL = 1e-9


# ---- random instances ----------------------------------------------------------------------
def random_costs(rng: np.random.Generator, n: int, with_onchip: bool = False) -> list[LayerCost]:
    """Layers with costs at every width 2..8; cycles are not always monotone (depthwise-like)."""
    out = []
    for i in range(n):
        nw = int(rng.integers(1, 5000))
        base_c, base_e = rng.uniform(1e3, 1e6), rng.uniform(0.1, 100.0)
        cyc = {b: base_c * (b / 8) ** rng.uniform(-0.3, 1.2) * rng.uniform(0.9, 1.1) for b in ALL_BITS}
        en = {b: base_e * (b / 8) ** rng.uniform(0.2, 1.5) for b in ALL_BITS}
        mem = {b: float(nw * b + rng.integers(0, 2000)) for b in ALL_BITS} if with_onchip else None
        sens = float(rng.choice([rng.random(), 0.5]))  # some repeated values
        out.append(LayerCost(f"l{i}", nw, sens, cyc, en, mem))
    return out


def oracle_omega(costs: list[LayerCost], top: int, beta: float) -> np.ndarray:
    """Omega written out independently of codesign.ilp.omega."""
    def scale(v: list[float]) -> np.ndarray:
        a = np.array(v, dtype=float)
        span = a.max() - a.min()
        return np.zeros_like(a) if span == 0 else (a - a.min()) / span

    s = scale([c.sensitivity for c in costs])
    cyc = scale([c.cycles[top] for c in costs])
    en = scale([c.energy_uj[top] for c in costs])
    return beta * s - (1 - beta) / 2 * (cyc + en)


def evaluate(costs: list[LayerCost], pairs: list[tuple[int, int]], om: np.ndarray, onchip_mode: str) -> dict:
    """Objective and every budget quantity of one assignment (cost at (w, a) = table at max(w, a))."""
    hw = [max(w, a) for w, a in pairs]
    out = {
        "objective": sum(o * (w + a) / 2 for o, (w, a) in zip(om, pairs)),
        "size_mbit": sum(c.n_weights * w for c, (w, _a) in zip(costs, pairs)) / 1e6,
        "latency_cycles": math.fsum(c.cycles[b] for c, b in zip(costs, hw)),
        "energy_uj": math.fsum(c.energy_uj[b] for c, b in zip(costs, hw)),
    }
    if costs[0].onchip_bits is not None:
        mem = [c.onchip_bits[b] / 1e3 for c, b in zip(costs, hw)]  # type: ignore[index]
        out["onchip_kbit"] = max(mem) if onchip_mode == "max" else math.fsum(mem)
    return out


def within(value: float, budget: float, kind: str = "") -> bool:
    """The documented budget semantics: sizes as whole bits, other quantities to 1e-9 relative."""
    if kind == "size_mbit":
        return round(value * 1e6) <= math.floor(budget * 1e6 + 1e-6)
    return value <= budget + TOL * max(1.0, abs(budget))


def tie_component(name: str, ties: list[list[str]]) -> set[str]:
    """Layers transitively tied to ``name`` (naive fixed point)."""
    comp = {name}
    while True:
        grown = comp.union(*[set(t) for t in ties if comp & set(t)])
        if grown == comp:
            return comp
        comp = grown


def brute_force(costs, cands, budgets: Budgets, beta, ties, pins, separate_wa=False):
    """Best objective over every combination that meets budgets, ties and pins (None: infeasible)."""
    om = oracle_omega(costs, max(cands), beta)
    free = [(w, a) for w in cands for a in cands] if separate_wa else [(b, b) for b in cands]
    domains = []
    for c in costs:  # a pin on one member of a tie component fixes the whole component
        p = next((pins[m] for m in tie_component(c.name, ties) if m in pins), None)
        domains.append([p if isinstance(p, tuple) else (p, p)] if p is not None else free)
    index = {c.name: i for i, c in enumerate(costs)}
    best = None
    for pairs in product(*domains):
        if any(len({pairs[index[n]] for n in tie}) > 1 for tie in ties):
            continue
        ev = evaluate(costs, list(pairs), om, budgets.onchip_mode)
        if all(within(ev[k], v, k) for k, v in budgets.active().items()) and (best is None or ev["objective"] > best):
            best = ev["objective"]
    return best, om


def random_instance(seed: int, separate_wa: bool = False):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5 if separate_wa else 13))
    per_layer_cap = 4000 ** (1 / n)  # keep the product small enough for brute force
    k_max = max(1, min(7, int(math.isqrt(int(per_layer_cap)) if separate_wa else per_layer_cap)))
    k = int(rng.integers(1, k_max + 1))
    cands = sorted(int(b) for b in rng.choice(list(ALL_BITS), size=k, replace=False))
    costs = random_costs(rng, n, with_onchip=rng.random() < 0.25)
    ties = []
    if n >= 3 and rng.random() < 0.35:
        for _ in range(int(rng.integers(1, 3))):
            ties.append([f"l{i}" for i in rng.choice(n, size=int(rng.integers(2, min(n, 4) + 1)), replace=False)])
    pins = {}
    if rng.random() < 0.3:
        pins[f"l{int(rng.integers(n))}"] = int(rng.choice(list(ALL_BITS)))
    if ties and pins and rng.random() < 0.5:  # pin a tie group consistently
        pins = {name: 8 for name in ties[0][:1]}
    # Budgets around the value of a random assignment, so instances are sometimes tight/infeasible.
    ref = [int(rng.choice(cands)) for _ in range(n)]
    ev = evaluate(costs, [(b, b) for b in ref], np.zeros(n), "max")
    kw = {"size_mbit": ev["size_mbit"] * rng.uniform(0.8, 1.3)}
    if rng.random() < 0.5:
        kw["latency_cycles"] = ev["latency_cycles"] * rng.uniform(0.85, 1.2)
    if rng.random() < 0.5:
        kw["energy_uj"] = ev["energy_uj"] * rng.uniform(0.85, 1.2)
    mode = "max"
    if costs[0].onchip_bits is not None:
        mode = str(rng.choice(["max", "sum"]))
        kw["onchip_kbit"] = evaluate(costs, [(b, b) for b in ref], np.zeros(n), mode)["onchip_kbit"] * rng.uniform(0.9, 1.3)
    return costs, cands, Budgets(**kw, onchip_mode=mode), float(rng.random()), ties, pins


def check_against_oracle(costs, cands, budgets, beta, ties, pins, separate_wa=False, solver="auto") -> None:
    best, om = brute_force(costs, cands, budgets, beta, ties, pins, separate_wa)
    if best is None:
        with pytest.raises(InfeasibleBudgetError, match="infeasible"):
            solve(costs, cands, budgets, beta=beta, ties=ties, pin=pins, separate_wa=separate_wa, solver=solver)
        return
    res = solve(costs, cands, budgets, beta=beta, ties=ties, pin=pins, separate_wa=separate_wa, solver=solver)
    assert res.status == "Optimal" and res.solve_seconds > 0
    assert res.solver.startswith("builtin") == (solver == "builtin")
    np.testing.assert_allclose([res.omega[c.name] for c in costs], om, atol=1e-12)
    pairs = [(res.bits[c.name], res.a_bits[c.name]) for c in costs]
    ev = evaluate(costs, pairs, om, budgets.onchip_mode)
    assert abs(ev["objective"] - best) <= TOL, (ev["objective"], best)
    assert abs(res.objective - best) <= TOL
    for kind, limit in budgets.active().items():
        assert within(ev[kind], limit, kind), kind
    assert abs(res.size_mbit - ev["size_mbit"]) < 1e-12
    for tie in ties:
        assert len({pairs[int(n[1:])] for n in tie}) == 1
    for name, b in pins.items():
        for member in tie_component(name, ties):
            assert (res.bits[member], res.a_bits[member]) == (b, b)
    for w, a in pairs:
        assert separate_wa or w == a


@pytest.mark.parametrize("seed", range(300))
def test_ilp_equals_brute_force(seed: int) -> None:
    check_against_oracle(*random_instance(seed))


@pytest.mark.parametrize("seed", range(60))
def test_separate_wa_equals_brute_force(seed: int) -> None:
    check_against_oracle(*random_instance(1000 + seed, separate_wa=True), separate_wa=True)


def test_dominance_filter_keeps_the_optimum_on_a_large_instance(monkeypatch) -> None:
    """54 layers x 4 widths (too big for brute force): the filtered MIP equals the unfiltered one."""
    import codesign.ilp.mck as mck  # the MIP builder, where the pre-filter runs

    costs = random_costs(np.random.default_rng(5), 54)
    rng = feasible_range(costs, [2, 4, 6, 8])
    budgets = Budgets(size_mbit=sum(rng["size_mbit"]) / 2, latency_cycles=rng["latency_cycles"][0] * 1.3,
                      energy_uj=sum(rng["energy_uj"]) / 2)
    for wa in (False, True):
        filtered = solve(costs, [2, 4, 6, 8], budgets, separate_wa=wa)
        with monkeypatch.context() as m:
            m.setattr(mck, "_drop_dominated", lambda p, b, allowed: allowed)
            full = solve(costs, [2, 4, 6, 8], budgets, separate_wa=wa)
        assert full.n_variables == full.n_options > filtered.n_variables
        assert filtered.objective == pytest.approx(full.objective, abs=1e-9)


# ---- infeasibility messages ------------------------------------------------------------------
def two_layers() -> list[LayerCost]:
    """l1 is slower at 2 bit than at 8 bit (poor mapping), so size and latency pull apart."""
    flat = {b: 10.0 for b in ALL_BITS}
    return [
        LayerCost("l0", 1000, 0.2, flat, flat),
        LayerCost("l1", 1000, 0.9, {b: 100.0 - 10 * b for b in ALL_BITS}, flat),
    ]


def test_infeasible_size_names_budget_and_range() -> None:
    costs = two_layers()
    with pytest.raises(InfeasibleBudgetError) as err:
        solve(costs, [2, 4, 8], Budgets(size_mbit=0.001))
    msg = str(err.value)
    assert "size budget 0.001 Mbit is infeasible" in msg
    assert "{2,4,8}" in msg and "between 0.004 and 0.016 Mbit" in msg


def test_infeasible_latency_range_respects_pins() -> None:
    with pytest.raises(InfeasibleBudgetError, match=r"latency budget 25 cycles .* pinned .* between 30 and 90 cycles"):
        solve(two_layers(), [2, 8], Budgets(latency_cycles=25), pin={"l0": 4})


def test_jointly_infeasible_budgets_say_so() -> None:
    # size <= 0.006 Mbit forces l1 <= 4 bit (latency >= 70); latency <= 50 needs l1 at 8 bit.
    with pytest.raises(InfeasibleBudgetError) as err:
        solve(two_layers(), [2, 4, 8], Budgets(size_mbit=0.006, latency_cycles=50))
    msg = str(err.value)
    assert "jointly infeasible" in msg and "latency" in msg and "size" in msg
    assert "cannot go below 70 cycles" in msg


def test_jointly_infeasible_with_peak_onchip_memory() -> None:
    # on-chip peak <= 0.45 kbit allows at most 4 bit; latency <= 50 needs l1 at 8 bit.
    costs = [LayerCost(c.name, c.n_weights, c.sensitivity, c.cycles, c.energy_uj, {b: 100.0 * b for b in ALL_BITS})
             for c in two_layers()]
    with pytest.raises(InfeasibleBudgetError) as err:
        solve(costs, [2, 4, 8], Budgets(latency_cycles=50, onchip_kbit=0.45))
    msg = str(err.value)
    assert "jointly infeasible" in msg and "on-chip memory" in msg and "cannot go below 0.8 kbit" in msg


def test_separate_wa_tuple_pins_and_bitconfig() -> None:
    g = tiny_resnet()
    sens = {ly.name: float(i) for i, ly in enumerate(g.quantizable())}
    costs = from_hw_table(g, synthetic_table(g), sens)
    res = solve(costs, [2, 4, 8], Budgets(size_mbit=ratio_to_size(g, 0.3, [2, 4, 8])), separate_wa=True,
                pin={"stem": (8, 4), "fc": [4, 8]})
    assert (res.bits["stem"], res.a_bits["stem"]) == (8, 4) and (res.bits["fc"], res.a_bits["fc"]) == (4, 8)
    bc = res.to_bitconfig(g)
    assert bc["stem"].w_bits == 8 and bc["stem"].a_bits == 4


def test_feasible_range_matches_brute_force() -> None:
    rng = np.random.default_rng(7)
    costs = random_costs(rng, 5, with_onchip=True)
    ties, pins = [["l0", "l3"]], {"l2": 8}
    got = feasible_range(costs, [2, 5, 7], ties=ties, pin=pins)
    vals = []
    for bits in product([2, 5, 7], repeat=5):
        if bits[0] == bits[3] and bits[2] == 7:
            vals.append(evaluate(costs, [(b if i != 2 else 8,) * 2 for i, b in enumerate(bits)], np.zeros(5), "max"))
    for kind in ("size_mbit", "latency_cycles", "energy_uj", "onchip_kbit"):
        lo, hi = min(v[kind] for v in vals), max(v[kind] for v in vals)
        assert got[kind] == pytest.approx((lo, hi), rel=1e-12)


# ---- ties, pins, inputs ------------------------------------------------------------------------
def test_ties_and_pins_respected_and_conflicts_rejected() -> None:
    costs = random_costs(np.random.default_rng(3), 6)
    res = solve(costs, [2, 4, 8], Budgets(size_mbit=1.0), ties=[["l0", "l1"], ["l1", "l4"]], pin={"l4": 6})
    assert res.bits["l0"] == res.bits["l1"] == res.bits["l4"] == 6
    with pytest.raises(IlpError, match="pinned to different widths"):
        solve(costs, [2, 4], Budgets(size_mbit=1.0), ties=[["l0", "l1"]], pin={"l0": 2, "l1": 4})
    with pytest.raises(IlpError, match="nope"):
        solve(costs, [2, 4], Budgets(size_mbit=1.0), ties=[["l0", "nope"]])
    assert first_last_pins(costs) == {"l0": 8, "l5": 8}


def test_negative_omega_layers_go_to_the_narrowest_width() -> None:
    costs = random_costs(np.random.default_rng(11), 8)
    res = solve(costs, [2, 4, 8], Budgets(size_mbit=1e3))  # no binding budget
    for c in costs:
        if res.omega[c.name] < 0:
            assert res.bits[c.name] == 2
        elif res.omega[c.name] > 0:
            assert res.bits[c.name] == 8


def test_lp_file_written(tmp_path) -> None:
    path = tmp_path / "run" / "ilp.lp"
    res = solve(two_layers(), [2, 4], Budgets(size_mbit=0.01, energy_uj=100), lp_path=path)
    text = path.read_text()
    assert text == res.lp_text and "Maximize" in text and "budget_size_mbit" in text and "budget_energy_uj" in text


def test_bad_inputs_raise_user_errors() -> None:
    with pytest.raises(IlpError, match="beta"):
        solve(two_layers(), [2, 4], Budgets(size_mbit=1), beta=1.5)
    with pytest.raises(IlpError, match="on-chip"):
        solve(two_layers(), [2, 4], Budgets(onchip_kbit=1))
    with pytest.raises(BitWidthError, match="outside the supported range"):
        solve(two_layers(), [1, 4], Budgets(size_mbit=1))


# ---- omega ---------------------------------------------------------------------------------------
def test_omega_scaling_properties() -> None:
    rng = np.random.default_rng(0)
    s, c, e = rng.random(20), rng.uniform(1e3, 1e7, 20), rng.uniform(1, 100, 20)
    for beta in (0.0, 0.3, 0.5, 1.0):
        om = omega(s, c, e, beta)
        assert om.min() >= -(1 - beta) - 1e-12 and om.max() <= beta + 1e-12
    np.testing.assert_allclose(omega(s, c, e, 1.0), (s - s.min()) / np.ptp(s))
    np.testing.assert_allclose(omega(s, c, e, 0.5), omega(s * 7 + 3, c * 1e3, e + 5, 0.5))  # affine-invariant
    assert not omega(np.ones(4), np.ones(4), np.ones(4)).any()  # constant terms map to 0
    assert omega([1.0], [5.0], [5.0]).tolist() == [0.0]
    more_sens = omega([0.1, 0.9], [1, 1], [1, 1])
    assert more_sens[1] > more_sens[0]
    costlier = omega([0.5, 0.5], [1, 9], [1, 9])
    assert costlier[1] < costlier[0]
    with pytest.raises(IlpError):
        omega([1, 2], [1], [1])


# ---- ratio_to_size, residual ties, hardware table ----------------------------------------------------
def test_ratio_to_size_endpoints() -> None:
    g = tiny_resnet()
    assert ratio_to_size(g, 0.0, [8, 2, 4]) == pytest.approx(BitConfig.uniform(g, 2).size_mbit(g))
    assert ratio_to_size(g, 1.0, [2, 4, 8]) == pytest.approx(BitConfig.uniform(g, 8).size_mbit(g))
    assert ratio_to_size(g, 0.5, [2, 8]) == pytest.approx(BitConfig.uniform(g, 5).size_mbit(g))
    with pytest.raises(IlpError, match=r"\[0, 1\]"):
        ratio_to_size(g, 1.2, [2, 8])


def test_residual_ties_on_tiny_models() -> None:
    assert sorted(map(sorted, residual_ties(tiny_resnet()))) == [["b1c2", "stem"], ["b2c2", "b2sc"]]
    assert residual_ties(tiny_mobilenet()) == [["stem", "proj"]]


def synthetic_table(g) -> HwTable:
    rows = []
    for ly in g.quantizable():
        for b in (2, 4, 8):
            n = int(ly.params["kernel"].size)
            rows.append(HwRow(ly.name, b, n, n * b, 10, n, 2 * n + n * b + 10, 1e-3, n * b * 1e-4, n * 10, 0.5))
    return HwTable(rows, {"model": g.name})


def test_from_hw_table_to_bitconfig() -> None:
    g = tiny_resnet()
    sens = {ly.name: float(i) for i, ly in enumerate(g.quantizable())}
    costs = from_hw_table(g, synthetic_table(g), sens)
    assert [c.name for c in costs] == [ly.name for ly in g.quantizable()]
    assert costs[0].cycles[4] == synthetic_table(g).get(costs[0].name, 4).cycles_total
    size = ratio_to_size(g, 0.5, [2, 4, 8])
    res = solve(costs, [2, 4, 8], Budgets(size_mbit=size), ties=residual_ties(g), pin=first_last_pins(costs))
    bc = res.to_bitconfig(g)
    assert bc.size_mbit(g) == pytest.approx(res.size_mbit) and res.size_mbit <= size
    assert bc["stem"].w_bits == bc["b1c2"].w_bits == 8 and bc["fc"].w_bits == 8
    with pytest.raises(IlpError, match="sensitivity"):
        from_hw_table(g, synthetic_table(g), {})
