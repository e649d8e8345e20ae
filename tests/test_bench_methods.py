"""The Pareto helpers of bench/bench_methods.py against brute force."""

from __future__ import annotations

import importlib.util
from itertools import product
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.unit
_spec = importlib.util.spec_from_file_location("bench_methods", Path(__file__).resolve().parents[1] / "bench" / "bench_methods.py")
bm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bm)  # type: ignore[union-attr]


def test_pareto_front_is_the_non_dominated_set() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        pts = [(float(a), float(b)) for a, b in rng.integers(0, 6, (12, 2))]
        front = bm.pareto(pts)
        dominated = {p for p, q in product(pts, pts) if q != p and q[0] <= p[0] and q[1] >= p[1]}
        assert set(front) == set(pts) - dominated
        assert all(bm.covered(front, p) for p in pts)  # every point is covered by the front
        lats = [p[0] for p in front]
        assert lats == sorted(lats)


def test_covered_needs_both_faster_and_as_accurate() -> None:
    front = [(1.0, 90.0), (2.0, 93.0)]
    assert bm.covered(front, (1.5, 89.0))
    assert not bm.covered(front, (0.9, 80.0))  # faster than every front point
    assert not bm.covered(front, (3.0, 94.0))  # more accurate than every front point


def test_paired_coverage_uses_the_test_not_the_raw_top1(tmp_path, monkeypatch) -> None:
    """A baseline 0.15 points above ohq on 2,000 images (5 vs 2 discordant) is covered; 5 points above is not."""
    n = 2000
    rng = np.random.default_rng(0)
    base = rng.random(n) < 0.9
    small = base.copy()
    small[np.flatnonzero(~base)[:5]] = True  # 5 more right, 2 more wrong: McNemar p = 2 * 29 / 128
    small[np.flatnonzero(base)[:2]] = False
    big = base.copy()
    big[np.flatnonzero(~base)[:100]] = True  # +5 points
    correct = {k: np.packbits(v) for k, v in {"o": base, "s": small, "b": big, "f": base}.items()}

    def rec(method, cfg, lat, vec):
        return {"method": method, "set": "4,8", "frac": 0.5, "seed": 0, "config": cfg, "latency_ms": lat,
                "top1": float(vec.mean() * 100)}

    res = {"val_images": n, "records": [rec("ohq", "o", 1.0, base), rec("zeroq", "s", 1.0, small),
                                         rec("hawq-v3", "b", 1.0, big), rec("direct", "f", 0.5, base)]}
    cov, tot, missed = bm.coverage(res, "4,8", correct)
    assert tot == 3 and cov == 1
    assert any(m.startswith("hawq-v3") for m in missed)  # significantly better at equal latency
    assert any(m.startswith("direct") and "faster" in m for m in missed)  # faster than every ohq point
    assert not any(m.startswith("zeroq") for m in missed)  # higher raw top-1, not significant


def test_latency_budgets_span_all_narrowest_to_int8_in_the_ilps_units() -> None:
    """f = 0 / 1 are the summed deployed cycles (jobs + bus) of the all-4-bit / all-8-bit configs, as the ILP prices them."""
    import dataclasses

    from ir_models import fixture_table, tiny_resnet

    from codesign.ilp import table_costs

    g = tiny_resnet()
    table = fixture_table(g, (4, 8))
    table.rows = [dataclasses.replace(r, cycles_bus=37 * r.bits) for r in table.rows]  # bus cycles the budget must count
    costs = table_costs(g, table)
    for b, f in ((4, 0.0), (8, 1.0)):
        assert bm.budget_for(g, table, [4, 8], "latency", f).latency_cycles == pytest.approx(sum(c.cycles[b] for c in costs))


def test_raw_runs_merge_per_set(tmp_path, monkeypatch) -> None:
    """Two runs of one model: each set comes from the newest run that has it, records keep their run's distillation."""
    import json
    import os

    monkeypatch.setattr(bm, "RAW", tmp_path)
    old = {"sets": ["4,8", "2,4,8"], "val_images": 10, "distill_s": 5.0,
           "records": [{"set": "4,8", "method": "ohq", "v": 1}, {"set": "2,4,8", "method": "ohq", "v": 2}]}
    new = {"sets": ["4,8"], "val_images": 10, "distill_s": 7.0, "records": [{"set": "4,8", "method": "ohq", "v": 3}]}
    (tmp_path / "m@48_248.json").write_text(json.dumps(old))
    (tmp_path / "m@48.json").write_text(json.dumps(new))
    os.utime(tmp_path / "m@48_248.json", (1, 1))
    merged = bm.load_results("m")
    assert merged is not None and sorted(merged["sets"]) == ["2,4,8", "4,8"]
    assert sorted((r["set"], r["v"], r["distill_s"]) for r in merged["records"]) == [("2,4,8", 2, 5.0), ("4,8", 3, 7.0)]
    assert bm.load_results("other") is None
