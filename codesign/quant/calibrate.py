"""Activation range calibration: min-max or percentile over a calibration batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.graph.execute import run_float
from codesign.graph.ir import Graph

METHODS = ("minmax", "percentile")
SAMPLES_PER_TENSOR = 200_000


@dataclass(frozen=True)
class TensorRange:
    """Observed range of one tensor: ``lo``/``hi`` are what scales are derived from."""

    lo: float
    hi: float
    min: float
    max: float


def calibrate(
    graph: Graph,
    x: np.ndarray,
    method: str = "minmax",
    percentile: float = 99.99,
    batch_size: int = 8,
    seed: int = 0,
) -> dict[str, TensorRange]:
    """Run the float graph on ``x`` and return a range per tensor (layer name).

    ``minmax`` uses the extreme values; ``percentile`` clips each side to the given
    percentile of a uniform subsample (at most 200k values per tensor), which ignores rare
    outliers so that low bit-widths keep resolution where the mass is.
    """
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")
    rng = np.random.default_rng(seed)
    mins: dict[str, float] = {}
    maxs: dict[str, float] = {}
    samples: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(x), batch_size):
        acts = run_float(graph, x[start : start + batch_size], collect=True)
        for name, a in acts.items():
            mins[name] = min(mins.get(name, np.inf), float(a.min()))
            maxs[name] = max(maxs.get(name, -np.inf), float(a.max()))
            if method == "percentile":
                flat = a.reshape(-1)
                take = min(flat.size, SAMPLES_PER_TENSOR // max(1, (len(x) + batch_size - 1) // batch_size))
                samples.setdefault(name, []).append(rng.choice(flat, size=max(take, 1), replace=False))
    out = {}
    for name in mins:
        lo, hi = mins[name], maxs[name]
        if method == "percentile":
            s = np.concatenate(samples[name])
            lo = min(float(np.percentile(s, 100 - percentile)), 0.0) if lo < 0 else lo
            hi = float(np.percentile(s, percentile)) if hi > 0 else hi
        out[name] = TensorRange(lo=lo, hi=hi, min=mins[name], max=maxs[name])
    return out
