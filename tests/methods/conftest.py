"""Shared fixtures of the baseline tests: small problems on tiny_resnet with a synthetic table."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
from ir_models import tiny_resnet
from method_helpers import random_images, synthetic_table

from codesign.graph.ir import Graph
from codesign.ilp import Budgets
from codesign.methods.base import Problem


@pytest.fixture
def make_problem() -> Callable[..., Problem]:
    """Factory: a Problem on tiny_resnet with a synthetic table (override any field by keyword)."""

    def make(graph: Graph | None = None, candidates: Sequence[int] = (2, 4, 8), budgets: Budgets | None = None,
             n_images: int = 8, train: int | None = None, seed: int = 0, **kw: object) -> Problem:
        g = graph if graph is not None else tiny_resnet()
        x = random_images(g, n_images, seed=1)
        lab = None
        if train:
            rng = np.random.default_rng(2)
            lab = (random_images(g, train, seed=3), rng.integers(0, 10, train))
        return Problem(g, synthetic_table(g, sorted(set(candidates) | {8})), list(candidates),
                       budgets if budgets is not None else Budgets(), x, train=lab, seed=seed, **kw)  # type: ignore[arg-type]

    return make
