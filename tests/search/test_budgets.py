"""codesign.budgets: the one evaluator of a configuration's cost, against direct sums."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.budgets import Budgets, LayerCost, exceeds

pytestmark = pytest.mark.unit


def _costs(rng: np.random.Generator, n: int) -> list[LayerCost]:
    out = []
    for i in range(n):
        out.append(LayerCost(f"l{i}", int(rng.integers(1, 5000)), 0.0,
                             cycles={b: float(rng.uniform(1e3, 1e5)) for b in (2, 4, 8)},
                             energy_uj={b: float(rng.uniform(1.0, 50.0)) for b in (2, 4, 8)},
                             onchip_bits={b: float(rng.integers(1e3, 1e5)) for b in (2, 4, 8)}))
    return out


@pytest.mark.parametrize("mode", ["max", "sum"])
def test_totals_equal_direct_sums(mode: str) -> None:
    rng = np.random.default_rng(3)
    costs = _costs(rng, 7)
    pairs = {c.name: (int(rng.choice([2, 4, 8])), int(rng.choice([2, 4, 8]))) for c in costs}
    t = Budgets(onchip_mode=mode).totals(costs, pairs)
    top = {n: max(w, a) for n, (w, a) in pairs.items()}  # a mixed pair runs on the wider engine
    assert t["size_mbit"] == pytest.approx(sum(c.n_weights * pairs[c.name][0] for c in costs) / 1e6, rel=1e-15)
    assert t["latency_cycles"] == pytest.approx(sum(c.cycles[top[c.name]] for c in costs), rel=1e-12)
    assert t["energy_uj"] == pytest.approx(sum(c.energy_uj[top[c.name]] for c in costs), rel=1e-12)
    onchip = [c.onchip_bits[top[c.name]] for c in costs]  # type: ignore[index]
    assert t["onchip_kbit"] == pytest.approx((max(onchip) if mode == "max" else sum(onchip)) / 1e3, rel=1e-12)


def test_unknown_cost_is_none_and_counts_only_given_layers() -> None:
    costs = [LayerCost("a", 10, 0.0, cycles={4: 5.0}), LayerCost("b", 20, 0.0, cycles={8: 7.0})]
    t = Budgets().totals(costs, {"a": 4, "b": 4})
    assert t["latency_cycles"] is None and t["energy_uj"] is None and t["size_mbit"] == pytest.approx(120 / 1e6)
    assert Budgets().totals(costs, {"b": 8})["latency_cycles"] == 7.0


def test_exceeds_sizes_as_whole_bits_and_floats_to_tolerance() -> None:
    assert not exceeds(1000 / 1e6, 0.001, "size_mbit")
    assert exceeds(1001 / 1e6, 0.001, "size_mbit")
    assert not exceeds(100.0 * (1 + 1e-12), 100.0, "latency_cycles")
    assert exceeds(100.0 * (1 + 1e-6), 100.0, "latency_cycles")
    over = Budgets(size_mbit=0.001, latency_cycles=100.0).excess({"size_mbit": 0.002, "latency_cycles": 50.0})
    assert over == {"size_mbit": pytest.approx(0.001)}
