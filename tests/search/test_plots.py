"""bits.png: a legend for every bar colour, placed where it hides no bar and no point."""

from __future__ import annotations

import pytest
from matplotlib.patches import Patch

from codesign.plots import bits_figure, plot_bits

pytestmark = pytest.mark.unit


def test_bits_legend_names_every_width_and_hides_nothing(tmp_path) -> None:
    layers = [f"l{i}" for i in range(12)]
    chosen = {n: (4 if i % 3 else 8) for i, n in enumerate(layers)} | {"l11": 6}
    sizes = [float(i + 1) for i in range(12)]  # the largest share is the last layer's, top right
    fig, ax = bits_figure(layers, chosen, sizes)
    fig.canvas.draw()
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["4-bit", "6-bit", "8-bit", "weights (share)"]
    patches = [h for h in legend.legend_handles if isinstance(h, Patch)]
    bars = {round(b.get_height()): b.get_facecolor() for b in ax.patches}
    assert [p.get_facecolor() for p in patches] == [bars[4], bars[6], bars[8]]
    box = legend.get_window_extent()
    assert not box.overlaps(ax.get_window_extent())  # outside the plot area: no bar, no point under it
    fig_box = fig.bbox
    assert box.x1 <= fig_box.x1 + 1 and box.y1 <= fig_box.y1 + 1  # and not cut off
    assert plot_bits(layers, chosen, tmp_path / "bits.png", sizes).stat().st_size > 0
