"""Paired statistics on synthetic outcomes with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from codesign.methods.stats import mcnemar_exact, paired_bootstrap, significantly_better

pytestmark = pytest.mark.unit


def _pairs(n00: int, n01: int, n10: int, n11: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Outcome vectors with the given counts (a wrong/b wrong, a wrong/b right, ...), shuffled."""
    a = np.array([0] * n00 + [0] * n01 + [1] * n10 + [1] * n11, bool)
    b = np.array([0] * n00 + [1] * n01 + [0] * n10 + [1] * n11, bool)
    perm = np.random.default_rng(seed).permutation(a.size)
    return a[perm], b[perm]


def test_mcnemar_hand_computed() -> None:
    # 1 vs 9 discordant: p = 2 * (C(10,0) + C(10,1)) / 2^10
    a, b = _pairs(50, 9, 1, 40)
    t = mcnemar_exact(a, b)
    assert (t.n01, t.n10) == (9, 1)
    assert t.p_value == 2 * (1 + 10) / 1024
    assert mcnemar_exact(b, a).p_value == t.p_value  # symmetric
    assert not significantly_better(a, b) and significantly_better(b, a)


def test_mcnemar_no_discordance_and_balance() -> None:
    a, b = _pairs(10, 0, 0, 90)
    assert mcnemar_exact(a, b).p_value == 1.0
    a, b = _pairs(10, 7, 7, 90)
    assert mcnemar_exact(a, b).p_value == 1.0  # a perfectly balanced split caps at 1


@pytest.mark.parametrize("n01,n10", [(3, 17), (120, 150), (400, 480), (2500, 2600)])
def test_mcnemar_against_binomial_tail(n01: int, n10: int) -> None:
    """Large counts: against the tail summed in floating point with log-gamma (independent formula)."""
    a, b = _pairs(100, n01, n10, 1000)
    n, k = n01 + n10, min(n01, n10)
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2) for i in range(k + 1)]
    m = max(logs)
    ref = min(1.0, 2 * math.exp(m) * sum(math.exp(v - m) for v in logs))
    assert mcnemar_exact(a, b).p_value == pytest.approx(ref, rel=1e-9)
    scipy_stats = pytest.importorskip("scipy.stats")
    assert mcnemar_exact(a, b).p_value == pytest.approx(scipy_stats.binomtest(k, n, 0.5).pvalue, rel=1e-9)


def test_bootstrap_known_difference() -> None:
    """10,000 images, a right on 300 more than b: diff +3 points, CI ~ +-1.96 * paired SE."""
    a, b = _pairs(500, 200, 500, 8800)
    d = paired_bootstrap(a, b, n_boot=4000, seed=1)
    assert d.diff == pytest.approx(3.0)
    n = a.size
    p10, p01 = 500 / n, 200 / n
    se = 100 * math.sqrt((p10 + p01 - (p10 - p01) ** 2) / n)  # sd of the paired difference / sqrt(n)
    assert d.lo == pytest.approx(3.0 - 1.96 * se, abs=0.25 * se)
    assert d.hi == pytest.approx(3.0 + 1.96 * se, abs=0.25 * se)
    assert d.lo > 0  # the known +3 points is resolved


def test_bootstrap_identical_and_coverage() -> None:
    a, _ = _pairs(100, 0, 0, 900)
    d = paired_bootstrap(a, a)
    assert (d.diff, d.lo, d.hi) == (0.0, 0.0, 0.0)
    # coverage: over draws from a known model (true diff 0), the 90 % CI holds 0 about 90 % of the time
    rng = np.random.default_rng(5)
    hits = 0
    for s in range(200):
        u = rng.random(2000)
        a = u < 0.85
        # 10 % of images redrawn from the same marginal: b as accurate as a on average, E[diff] = 0
        b = np.where(rng.random(2000) < 0.1, rng.random(2000) < 0.85, a)
        ci = paired_bootstrap(a, b, n_boot=1000, level=0.9, seed=s)
        hits += ci.lo <= 0.0 <= ci.hi
    assert 0.8 <= hits / 200 <= 0.97


def test_unequal_lengths_rejected() -> None:
    with pytest.raises(ValueError):
        mcnemar_exact(np.ones(3, bool), np.ones(4, bool))
