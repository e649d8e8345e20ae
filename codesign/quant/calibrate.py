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
    budget, :mod:`codesign.membudget`, keeping room for the samples; else the whole group).
    Statistics are taken from each tensor as the graph produces it, so a micro-batch holds
    only the live tensors, not all of them. The sample indices are drawn per group before its
    micro-batches run, in layer order, so the ranges and samples are the same, value for
    value, whatever the micro-batch.
    """
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")
    sampling = method in ("percentile", "mse")
    n_groups = max(1, (len(x) + batch_size - 1) // batch_size)
    if micro_batch is None:
        from codesign.membudget import micro_batch as fit

        reserve = sample_bytes(graph, len(x), batch_size) if sampling else 0
        micro_batch = fit(len(x), lambda k: run_float(graph, x[:k]), default=batch_size, reserve_bytes=reserve)
    stats = _Stats(np.random.default_rng(seed), sampling, n_groups)
    for start in range(0, len(x), batch_size):
        group = x[start : start + batch_size]
        stats.new_group(len(group))
        for sub in range(0, len(group), micro_batch):
            stats.offset = sub
            run_float(graph, group[sub : sub + micro_batch], visit=stats.observe)
        stats.end_group()
    mins, maxs, samples = stats.mins, stats.maxs, stats.samples
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


class _Stats:
    """Running min/max and the per-group subsample of every tensor, fed one tensor at a time."""

    def __init__(self, rng: np.random.Generator, sampling: bool, n_groups: int) -> None:
        self.rng, self.sampling, self.n_groups = rng, sampling, n_groups
        self.mins: dict[str, float] = {}
        self.maxs: dict[str, float] = {}
        self.samples: dict[str, list[np.ndarray]] = {}
        self.picks: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # tensor -> (flat indices into the group, values)
        self.group_len = 0
        self.offset = 0  # first image of the running micro-batch within the group

    def new_group(self, n: int) -> None:
        """Start a sampling group of ``n`` images."""
        self.group_len, self.picks = n, {}

    def observe(self, name: str, a: np.ndarray) -> None:
        """Take tensor ``name`` of the running micro-batch into the statistics."""
        self.mins[name] = min(self.mins.get(name, np.inf), float(a.min()))
        self.maxs[name] = max(self.maxs.get(name, -np.inf), float(a.max()))
        if not self.sampling:
            return
        per_image = a.size // a.shape[0]
        if name not in self.picks:  # first micro-batch: draw this group's indices, in tensor order
            size = per_image * self.group_len
            idx = self.rng.choice(size, size=_picks_per_group(size, self.n_groups), replace=False)
            self.picks[name] = (idx, np.empty(idx.shape, a.dtype))
        idx, vals = self.picks[name]
        lo = self.offset * per_image
        here = (idx >= lo) & (idx < lo + a.size)
        vals[here] = a.reshape(-1)[idx[here] - lo]

    def end_group(self) -> None:
        """Keep the finished group's samples."""
        for name, (_idx, vals) in self.picks.items():
            self.samples.setdefault(name, []).append(vals)
        self.picks = {}


def _picks_per_group(size: int, n_groups: int) -> int:
    """Values sampled from one tensor of ``size`` elements in one group."""
    return max(min(size, SAMPLES_PER_TENSOR // n_groups), 1)


def sample_bytes(graph: Graph, n_images: int, batch_size: int = 8) -> int:
    """Bytes :func:`calibrate` keeps for its samples (float32 values, plus one group's int64 indices)."""
    n_groups = max(1, (n_images + batch_size - 1) // batch_size)
    groups = [min(batch_size, n_images - s) for s in range(0, n_images, batch_size)]
    total = 0
    for ly in graph.layers:
        per_image = int(np.prod(ly.output_shape))
        picks = [_picks_per_group(per_image * m, n_groups) for m in groups]
        total += 4 * sum(picks) + 8 * max(picks)
    return total


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
