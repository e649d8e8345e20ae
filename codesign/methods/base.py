"""The interface every bit-allocation method shares: a ``Problem`` in, a ``MethodResult`` out.

A ``Problem`` holds what any method may look at: the float model, the OQA hardware table
measured on the (simulated) board, the candidate widths, the budgets (same ``ilp.Budgets`` the
OHQ search uses), the distilled images (data-free methods) and, for methods that need labels,
a labelled subset of the training data. Every method returns a ``BitConfig``; evaluation
(size, cycles from the same table, top-1 with the same integer golden model and the same
calibration) is done outside the method, so the comparison differs only in the allocation.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codesign.graph.ir import Graph
from codesign.hwtable import HwTable
from codesign.ilp import Budgets
from codesign.quant.bitconfig import BitConfig
from codesign.quant.qgraph import SEARCH_PTQ, QuantOptions


@dataclass
class Problem:
    """One search problem: model, board table, widths, budgets and the data a method may use."""

    graph: Graph
    table: HwTable
    candidates: list[int]
    budgets: Budgets
    distilled: np.ndarray  # BN-statistics images (N, H, W, C); also the calibration set of every method
    train: tuple[np.ndarray, np.ndarray] | None = None  # labelled images for Hessian / reward methods
    seed: int = 0
    quant: QuantOptions = field(default_factory=lambda: SEARCH_PTQ.copy())
    progress: bool = False

    @property
    def layers(self) -> list[str]:
        """Quantizable layer names in model order."""
        return [ly.name for ly in self.graph.quantizable()]

    def quantize(self, bc: BitConfig) -> Any:
        """Quantize the model with ``bc`` exactly as the evaluation does (same calibration data)."""
        from codesign.quant.qgraph import quantize_model

        return quantize_model(self.graph, bc, self.distilled, **self.quant)


@dataclass
class MethodResult:
    """A method's chosen configuration and what it took to find it."""

    method: str
    bitconfig: BitConfig
    search_seconds: float
    data_used: str  # e.g. "distilled 32 img", "train 1024 img (labels)", "none"
    scores: dict[str, float] = field(default_factory=dict)  # per-layer sensitivity, when the method has one
    info: dict[str, Any] = field(default_factory=dict)


class Method(ABC):
    """A bit-allocation method. Subclasses set ``name``, ``stochastic`` and implement ``_search``."""

    name: str = "method"
    stochastic: bool = False  # True: results depend on the seed (report >= 3 seeds)

    def search(self, problem: Problem) -> MethodResult:
        """Run the method and time it (wall clock, everything the method computes)."""
        t0 = time.perf_counter()
        res = self._search(problem)
        res.search_seconds = time.perf_counter() - t0
        res.bitconfig.meta.setdefault("method", self.name)
        return res

    @abstractmethod
    def _search(self, problem: Problem) -> MethodResult:
        """Return the configuration (``search_seconds`` is filled in by ``search``)."""


__all__ = ["Method", "MethodResult", "Problem"]
