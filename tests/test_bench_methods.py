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
