"""Helpers of the baseline tests: a synthetic hardware table, stand-in images, a brute-force oracle."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from codesign.graph.ir import Graph
from codesign.hwtable import HwRow, HwTable
from codesign.methods.base import Problem
from codesign.methods.haq import BudgetEnforcer


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


def brute_force(problem: Problem, reward: Callable[[Mapping[str, int]], float]) -> tuple[float, dict[str, int]]:
    """Best budget-feasible configuration by exhaustive search (small instances only)."""
    cands = sorted(set(problem.candidates))
    enforcer = BudgetEnforcer(problem, cands)
    names = problem.layers
    best: tuple[float, dict[str, int]] = (-math.inf, {})
    for idx in itertools.product(range(len(cands)), repeat=len(names)):
        if enforcer.excess(list(idx)):
            continue
        w = {n: cands[i] for n, i in zip(names, idx)}
        r = float(reward(w))
        if r > best[0]:
            best = (r, w)
    return best
