"""Helpers of the baseline tests: a synthetic hardware table and stand-in images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from codesign.graph.ir import Graph
from codesign.hwtable import HwRow, HwTable


def synthetic_table(g: Graph, bits: Sequence[int] = (2, 4, 8), seed: int = 0) -> HwTable:
    """Rows at every width; cycles grow with the width but not in proportion to the size."""
    rng = np.random.default_rng(seed)
    rows = []
    for ly in g.quantizable():
        n = int(ly.params["kernel"].size)
        speed = rng.uniform(0.5, 2.0)  # layers differ in how well they map to the engine
        for b in bits:
            comp = int(n * speed * (b / 8) ** rng.uniform(0.3, 1.0)) + 50
            total = comp + 40
            rows.append(HwRow(ly.name, b, 10, comp, 20, 10, total, total / 1e5, total * b * 1e-5, n * 10, 0.5))
    return HwTable(rows, {"model": g.name, "device": "fixture"})


def random_images(g: Graph, n: int, seed: int = 0) -> np.ndarray:
    """Uniform [0, 1] images of the model's input shape (stand-in for distilled data)."""
    return np.random.default_rng(seed).uniform(0, 1, (n, *g.input_shape)).astype(np.float32)
