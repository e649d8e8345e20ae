"""Activation range calibration: min-max or percentile over a calibration batch."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codesign.graph.execute import run_float
from codesign.graph.ir import Graph

METHODS = ("minmax", "percentile", "mse")
SAMPLES_PER_TENSOR = 200_000


@dataclass(frozen=True)
class TensorRange:
    """Observed range of one tensor: ``lo``/``hi`` are what scales are derived from."""

    lo: float
    hi: float
    min: float
    max: float
    samples: np.ndarray | None = None  # kept for "mse": the clip depends on the bit-width
    clips: dict[tuple[float, int, int], float] = field(default_factory=dict, compare=False, repr=False)

    def mse_clip(self, mag: float, qmax: int, qmin: int) -> float:
        """:func:`mse_clip` of this tensor's samples, memoised per (magnitude, grid)."""
        key = (mag, qmax, qmin)
        if key not in self.clips:
            self.clips[key] = mse_clip(self.samples, mag, qmax, qmin) if self.samples is not None else mag
        return self.clips[key]


def calibrate(
    graph: Graph,
    x: np.ndarray,
    method: str = "minmax",
    percentile: float = 99.99,
    batch_size: int = 8,
    seed: int = 0,
    micro_batch: int | None = None,
) -> dict[str, TensorRange]:
    """Run the float graph on ``x`` and return a range per tensor (layer name).

    ``minmax`` uses the extreme values; ``percentile`` clips each side to the given
    percentile of a uniform subsample (at most 200k values per tensor), which ignores rare
    outliers so that low bit-widths keep resolution where the mass is; ``mse`` keeps the
    subsample so that the quantizer can pick, per tensor and bit-width, the clipping range
    with the least squared quantization error (:func:`mse_clip`).

    ``batch_size`` images form one sampling group (the subsample is drawn per group). The
    float graph runs ``micro_batch`` images at a time (default: sized from the process memory
    budget, :mod:`codesign.membudget`; else the whole group). The sample indices are drawn per
    group before its micro-batches run, so the ranges and samples are the same, value for
    value, whatever the micro-batch.
    """
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")
    if micro_batch is None:
        from codesign.membudget import micro_batch as fit

        micro_batch = fit(len(x), lambda k: run_float(graph, x[:k], collect=True), default=batch_size)
    rng = np.random.default_rng(seed)
    sampling = method in ("percentile", "mse")
    n_groups = max(1, (len(x) + batch_size - 1) // batch_size)
    mins: dict[str, float] = {}
    maxs: dict[str, float] = {}
    samples: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(x), batch_size):
        group = x[start : start + batch_size]
        picks: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # tensor -> (flat indices into the group, values)
        for sub in range(0, len(group), micro_batch):
            acts = run_float(graph, group[sub : sub + micro_batch], collect=True)
            for name, a in acts.items():
                mins[name] = min(mins.get(name, np.inf), float(a.min()))
                maxs[name] = max(maxs.get(name, -np.inf), float(a.max()))
                if not sampling:
                    continue
                per_image = a.size // a.shape[0]
                if name not in picks:  # first micro-batch: draw this group's indices, in tensor order
                    size = per_image * len(group)
                    idx = rng.choice(size, size=max(min(size, SAMPLES_PER_TENSOR // n_groups), 1), replace=False)
                    picks[name] = (idx, np.empty(idx.shape, a.dtype))
                idx, vals = picks[name]
                lo = sub * per_image
                here = (idx >= lo) & (idx < lo + a.size)
                vals[here] = a.reshape(-1)[idx[here] - lo]
        for name, (_idx, vals) in picks.items():
            samples.setdefault(name, []).append(vals)
    out = {}
    for name in mins:
        lo, hi = mins[name], maxs[name]
        if method == "percentile":
            s = np.concatenate(samples[name])
            lo = min(float(np.percentile(s, 100 - percentile)), 0.0) if lo < 0 else lo
            hi = float(np.percentile(s, percentile)) if hi > 0 else hi
        kept = np.concatenate(samples[name]) if method == "mse" else None
        out[name] = TensorRange(lo=lo, hi=hi, min=mins[name], max=maxs[name], samples=kept)
    return out


MSE_RATIOS = np.linspace(0.2, 1.0, 41)


def mse_clip(samples: np.ndarray, mag: float, qmax: int, qmin: int) -> float:
    """The magnitude ``c <= mag`` whose grid ``scale = c / qmax`` minimises the squared error.

    Candidates are ``r * mag`` for r in [0.2, 1]; values are rounded half up and clamped to
    ``[qmin, qmax]`` exactly as the integer quantizer does.
    """
    if mag <= 0 or samples is None or samples.size == 0:
        return mag
    x = samples.astype(np.float64)
    best_c, best_err = mag, np.inf
    for r in MSE_RATIOS:
        s = r * mag / qmax
        err = float(np.mean((np.clip(np.floor(x / s + 0.5), qmin, qmax) * s - x) ** 2))
        if err < best_err:
            best_c, best_err = r * mag, err
    return best_c
