"""PNG plots for a search run: per-layer sensitivity, cycles, energy and chosen bits.

They follow the layout of the OHQ paper's Fig. 5/6: one bar group per layer, in network
order. Matplotlib runs headless (Agg). It is optional: without it (a board installed with
only NumPy and PuLP) every plot function writes nothing, returns None, and one line on
stderr says so.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None  # type: ignore[assignment]  # plots are optional: callers check `plt is None`

F = TypeVar("F", bound=Callable[..., Any])
_noted = False


def available() -> bool:
    """True when matplotlib is installed (plots are written)."""
    return plt is not None


def note_missing() -> None:
    """Say once per process that no plots are written."""
    global _noted
    if not _noted:
        print("note: matplotlib is not installed, so no plots (PNG) are written; the CSV/JSON results are complete.",
              file=sys.stderr)
        _noted = True


def _plotting(fn: F) -> F:
    """Without matplotlib the plot function returns None after the one-line note."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        if plt is None:
            note_missing()
            return None
        return fn(*args, **kw)

    return wrapper  # type: ignore[return-value]


def _layer_axis(ax, layers: Sequence[str]) -> None:
    ax.set_xticks(range(len(layers)))
    step = max(1, len(layers) // 40)  # keep labels legible on deep nets
    ax.set_xticklabels([n if i % step == 0 else "" for i, n in enumerate(layers)], rotation=90, fontsize=7)
    ax.set_xlim(-0.7, len(layers) - 0.3)
    ax.grid(axis="y", alpha=0.3)


def _save(fig, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


@_plotting
def plot_sensitivity(layers: Sequence[str], series: dict[str, np.ndarray], path: str | Path) -> Path:
    """Per-layer sensitivity, one bar series per method (each normalised to its max)."""
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(layers) + 2), 3.6))
    width = 0.8 / max(1, len(series))
    for k, (name, s) in enumerate(series.items()):
        s = np.asarray(s, float)
        ax.bar(np.arange(len(layers)) + (k - (len(series) - 1) / 2) * width, s / (s.max() or 1), width, label=name)
    ax.set_ylabel("sensitivity (normalised)")
    ax.set_title("per-layer sensitivity")
    ax.legend(fontsize=8)
    _layer_axis(ax, layers)
    return _save(fig, path)


@_plotting
def plot_per_bits(layers: Sequence[str], values: dict[int, np.ndarray], ylabel: str, title: str, path: str | Path,
                  log: bool = False) -> Path:
    """A per-layer quantity measured at several bit-widths (e.g. cycles or energy)."""
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(layers) + 2), 3.6))
    width = 0.8 / max(1, len(values))
    for k, (bits, v) in enumerate(sorted(values.items())):
        ax.bar(np.arange(len(layers)) + (k - (len(values) - 1) / 2) * width, v, width, label=f"{bits}-bit")
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    _layer_axis(ax, layers)
    return _save(fig, path)


def bits_figure(layers: Sequence[str], chosen: dict[str, int], sizes: Sequence[float] | None = None):
    """The chosen-bits figure: bars coloured by width, a legend per width, outside the axes.

    The legend sits to the right of the plot area, so it can hide neither a bar nor a point
    of the weight-share line (in the axes it covered the last layers' points).
    """
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(layers) + 3.5), 3.6))
    bits = [chosen[n] for n in layers]
    colour = {b: plt.cm.viridis(b / 8.0) for b in sorted(set(bits))}
    ax.bar(range(len(layers)), bits, color=[colour[b] for b in bits])
    ax.set_ylim(0, 8.8)
    ax.set_ylabel("bits (W/A)")
    ax.set_title("chosen bit-width per layer")
    handles = [Patch(color=c, label=f"{b}-bit") for b, c in colour.items()]
    if sizes is not None:
        ax2 = ax.twinx()
        (line,) = ax2.plot(range(len(layers)), np.asarray(sizes) / max(sizes), "k.--", lw=0.8,
                           label="weights (share)")
        ax2.set_ylabel("weights (normalised)")
        handles.append(line)  # type: ignore[arg-type]  # a legend takes any artist
    _layer_axis(ax, layers)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.12 if sizes is not None else 1.01, 1.0),
              borderaxespad=0.0)
    fig.tight_layout()
    return fig, ax


@_plotting
def plot_bits(layers: Sequence[str], chosen: dict[str, int], path: str | Path, sizes: Sequence[float] | None = None) -> Path:
    """Chosen weight/activation width per layer, with the layer's parameter share as a line."""
    fig, _ax = bits_figure(layers, chosen, sizes)
    return _save(fig, path)


@_plotting
def plot_curve(y: np.ndarray, ylabel: str, title: str, path: str | Path, log: bool = True) -> Path:
    """A loss curve (e.g. distillation) against iteration."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(np.arange(len(y)), y)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)
