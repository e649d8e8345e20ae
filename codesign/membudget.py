"""A process-wide memory budget, and micro-batch sizes that respect it (a PYNQ-Z2 has 512 MB).

The search sets the budget once (``--max-memory-mb``, default 400); distillation, MQE and
calibration then ask :func:`micro_batch` how many images they may process at a time. It is
a resource setting of the process, like a thread count: library callers that never set it
get today's full batches, unchanged.

How a stage's micro-batch is sized: the stage's unit of work is run on 1 and on 2 images
under ``tracemalloc`` (NumPy reports its buffers to it), so ``peak(k) ~ fixed + k * per_image``
is *measured*, not guessed from shapes. The room is the budget minus the resident set size
(RSS) the process already has, less a 10 % margin for what tracemalloc cannot see (BLAS
work buffers, allocator slack); the micro-batch is ``(room - fixed) // (per_image * factor)``,
at least 1. ``factor`` covers work the probe does not repeat (MQE's per-layer re-runs).
"""

from __future__ import annotations

import math
import resource
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

MB = 1 << 20
MARGIN = 0.10  # of the budget, kept free for allocations tracemalloc does not see
_budget_mb: float | None = None


def set_budget_mb(mb: float | None) -> None:
    """Set (or clear, with None) the process's memory budget in MiB.

    Setting one also fixes glibc's mmap threshold at 256 KiB: by default glibc raises it after
    each large free, so freed NumPy buffers stay on the heap and the RSS only grows (measured on
    ResNet-18: 251 instead of 141 MiB resident after distillation).
    """
    global _budget_mb
    if mb is not None and not (math.isfinite(mb) and mb > 0):
        raise ValueError(f"memory budget must be a positive number of MiB, got {mb!r}")
    _budget_mb = None if mb is None else float(mb)
    if mb is not None:
        _fix_mmap_threshold(256 * 1024)


def _fix_mmap_threshold(nbytes: int) -> bool:
    """glibc ``mallopt(M_MMAP_THRESHOLD, nbytes)``; False where there is no glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL(name).mallopt(-3, nbytes))  # -3: M_MMAP_THRESHOLD in <malloc.h>
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False


def budget_mb() -> float | None:
    """The budget in MiB, or None when unbounded."""
    return _budget_mb


def rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux /proc; peak RSS elsewhere)."""
    statm = Path("/proc/self/statm")
    if statm.is_file():
        pages = int(statm.read_text().split()[1])
        return pages * resource.getpagesize() / MB
    return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


def traced_peak(fn: Callable[[], object]) -> int:
    """Peak bytes allocated (Python + NumPy) while ``fn`` runs, above what was allocated before."""
    running = tracemalloc.is_tracing()
    if not running:
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    try:
        fn()
        return max(0, tracemalloc.get_traced_memory()[1] - base)
    finally:
        if not running:
            tracemalloc.stop()


def micro_batch(n: int, probe: Callable[[int], object], factor: float = 1.0, default: int | None = None,
                reserve_bytes: float = 0.0) -> int:
    """Images per micro-batch for a stage whose work on ``k`` images is ``probe(k)``.

    Without a budget: ``default`` (or ``n``: one batch). With one: measured as described in the
    module docstring, clipped to [1, n]. ``reserve_bytes`` is what the stage will hold by its
    end beyond the micro-batch's work (e.g. calibration samples): it is not in the RSS yet,
    so it is taken off the room up front.
    """
    if _budget_mb is None or n <= 1:
        return max(1, min(n, default or n))
    one, two = traced_peak(lambda: probe(1)), traced_peak(lambda: probe(2))
    per_image = max(two - one, 1) * factor
    fixed = max(one * factor - per_image, 0.0)
    room = (_budget_mb * (1 - MARGIN) - rss_mb()) * MB - fixed - reserve_bytes
    fit = int(room // per_image) if room > 0 else 1
    return max(1, min(n, fit, default or n))


__all__ = ["budget_mb", "micro_batch", "peak_rss_mb", "rss_mb", "set_budget_mb", "traced_peak"]
