"""Cortex-A9 time estimates from host measurements (PYNQ-Z2 PS; no board here).

The method (docs/results/board.md): the A9 at 650 MHz has a 64-bit NEON datapath, 2 fp32
multiply-accumulates = 4 FLOP per cycle, 2.6 GFLOP/s peak on one core. A host measurement of
``ops`` operations taking ``host_s`` seconds reaches some fraction of this machine's measured
float32 matmul throughput; the A9 is assumed to reach the same fraction of its own peak. The
estimate is therefore ``host_s x host GFLOP/s / A9 GFLOP/s``, capped below at the A9 peak time
of the operations. It is an estimate and is always labelled so.
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np

A9_MHZ = 650.0  # PYNQ-Z2's Cortex-A9 clock
A9_FLOP_PER_CYCLE = 4.0  # NEON: 64-bit datapath = 2 fp32 lanes x multiply-accumulate (2 FLOP) per cycle


def sgemm_gflops() -> float:
    """This machine's float32 matmul throughput (best of 5, 1024^3): the efficiency reference."""
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t0)
    return 2 * 1024**3 / best / 1e9


@lru_cache(maxsize=1)
def host_gflops() -> float:
    """:func:`sgemm_gflops`, measured once per process."""
    return sgemm_gflops()


def a9_from_host(host_s: float, here_peak_gflops: float) -> float:
    """A9 seconds of CPU work that took ``host_s`` here: the same fraction of the A9's peak (an estimate)."""
    return host_s * here_peak_gflops / (A9_MHZ * A9_FLOP_PER_CYCLE / 1e3)


def a9_seconds(macs: float, here_s: float, here_peak_gflops: float) -> tuple[float, float]:
    """(at A9 NEON peak, at the fraction of peak the work reaches here) in seconds; both estimates."""
    peak = A9_MHZ * 1e6 * A9_FLOP_PER_CYCLE
    flops = 2 * macs
    at_peak = flops / peak
    efficiency = min(1.0, flops / max(here_s, 1e-9) / (here_peak_gflops * 1e9))
    return at_peak, at_peak / max(efficiency, 1e-9)


METHOD = (
    f"Cortex-A9 estimate (not measured): host CPU time x (this machine's float32 matmul GFLOP/s) / "
    f"(A9 NEON peak {A9_MHZ * A9_FLOP_PER_CYCLE / 1e3:.1f} GFLOP/s = {A9_MHZ:.0f} MHz x "
    f"{A9_FLOP_PER_CYCLE:.0f} FLOP/cycle), i.e. the A9 is assumed to reach the same fraction of its peak as "
    "the host does (codesign.cpu_estimate.a9_seconds, the method of docs/results/board.md)"
)

__all__ = ["A9_FLOP_PER_CYCLE", "A9_MHZ", "METHOD", "a9_from_host", "a9_seconds", "host_gflops", "sgemm_gflops"]
