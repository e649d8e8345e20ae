"""Paired statistics for comparing two configurations on the same test images.

Two quantized models evaluated on the same images differ only where one is right and the
other wrong, so the comparison is paired: the images both get right (or both wrong) carry no
information about which is better. Two tools, NumPy/stdlib only:

* :func:`mcnemar_exact` -- McNemar's exact test: under "equally accurate" the ``n01 + n10``
  discordant images split as Binomial(n01 + n10, 1/2); the two-sided p-value is twice the
  smaller tail (capped at 1), computed in exact integer arithmetic.
* :func:`paired_bootstrap` -- the difference in top-1 (points) with a percentile bootstrap CI
  that resamples images, keeping each image's pair of outcomes together.

:func:`significantly_better` is the decision rule the bench uses ("a is more accurate than b
at level ``alpha``": McNemar rejects and a has more of the discordant images).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class McNemar:
    """Discordant counts (``n01``: only b right, ``n10``: only a right) and the exact two-sided p-value."""

    n01: int
    n10: int
    p_value: float


def _as_bool(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, bool).ravel(), np.asarray(b, bool).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes need equal lengths, got {a.size} and {b.size}")
    return a, b


def mcnemar_exact(a_correct: np.ndarray, b_correct: np.ndarray) -> McNemar:
    """McNemar's exact test of ``a`` vs ``b`` from per-image correctness (bool arrays, same images)."""
    a, b = _as_bool(a_correct, b_correct)
    n10 = int(np.count_nonzero(a & ~b))
    n01 = int(np.count_nonzero(~a & b))
    n = n01 + n10
    if n == 0:
        return McNemar(0, 0, 1.0)
    k = min(n01, n10)
    tail = sum(math.comb(n, i) for i in range(k + 1))  # exact: P(X <= k) * 2^n
    return McNemar(n01, n10, float(min(Fraction(1), Fraction(2 * tail, 2**n))))


@dataclass(frozen=True)
class PairedDiff:
    """top-1(a) - top-1(b) in points and its bootstrap confidence interval."""

    diff: float
    lo: float
    hi: float


def paired_bootstrap(a_correct: np.ndarray, b_correct: np.ndarray, n_boot: int = 2000, level: float = 0.95,
                     seed: int = 0) -> PairedDiff:
    """Difference in top-1 (percentage points) with a paired percentile bootstrap CI over images.

    Only the per-image difference ``d = a - b`` in {-1, 0, 1} matters, so a resample is drawn
    as multinomial counts of the three values (exactly the image bootstrap, in O(1) per draw).
    """
    a, b = _as_bool(a_correct, b_correct)
    n = a.size
    if n == 0:
        raise ValueError("no images")
    d = a.astype(np.int8) - b.astype(np.int8)
    probs = np.array([np.count_nonzero(d == v) for v in (-1, 0, 1)], dtype=np.float64) / n
    counts = np.random.default_rng(seed).multinomial(n, probs, size=n_boot)
    boot = 100.0 * (counts[:, 2] - counts[:, 0]) / n
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [tail, 1.0 - tail])
    return PairedDiff(100.0 * float(d.mean()), float(lo), float(hi))


def significantly_better(a_correct: np.ndarray, b_correct: np.ndarray, alpha: float = 0.05) -> bool:
    """True when ``a`` is more accurate than ``b`` on these images by McNemar's exact test at ``alpha``."""
    t = mcnemar_exact(a_correct, b_correct)
    return t.n10 > t.n01 and t.p_value < alpha


__all__ = ["McNemar", "PairedDiff", "mcnemar_exact", "paired_bootstrap", "significantly_better"]
