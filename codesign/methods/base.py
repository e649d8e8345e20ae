"""The interface every bit-allocation method shares: a ``Problem`` in, a ``MethodResult`` out.

A ``Problem`` holds what any method may look at: the float model, the OQA hardware table
measured on the (simulated) board, the candidate widths, the budgets (same ``ilp.Budgets`` the
OHQ search uses), the distilled images (data-free methods), for methods that need labels a
labelled subset of the training data, and the ILP's options (ties, pins, solver) for the
methods that allocate with :mod:`codesign.ilp`. Every method returns a ``BitConfig``; evaluation
(size, cycles from the same table, top-1 with the same integer golden model and the same
calibration) is done outside the method, so the comparison differs only in the allocation.

A :class:`SensitivityMethod` runs in two steps, a per-layer sensitivity (plain, JSON-able data:
``python -m codesign.search`` caches it in its run folder) and the allocation from it; its
``search`` is the two in a row, so the search and the bench run the same code.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codesign.graph.ir import Graph
from codesign.hwtable import HwTable
from codesign.ilp import Budgets, IlpResult
from codesign.quant.bitconfig import BitConfig
from codesign.quant.qgraph import SEARCH_PTQ, QuantOptions


@dataclass(frozen=True)
class IlpOptions:
    """How the ILP-based methods solve: tied layers, first/last pins, the solver, where to write the LP file."""

    ties: tuple[tuple[str, ...], ...] = ()  # layers that share one width (e.g. ``ilp.residual_ties``)
    pin_first_last: int | None = None  # pin the first and last quantizable layer to this width
    solver: str = "auto"  # codesign.solvers: auto | cbc | coin | builtin
    lp_path: Path | None = None  # also write the CPLEX-LP model here (a by-product, none from the built-in solver)


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
    ilp: IlpOptions = field(default_factory=IlpOptions)

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
    ilp: IlpResult | None = None  # the ILP solution, for the methods that solve one


@dataclass
class LayerSensitivity:
    """The first step of a :class:`SensitivityMethod`: per-layer (and per-width) scores, plain data.

    ``scores`` ranks the layers (one number each, in model order); ``per_width`` holds
    ``omega[layer][bits]`` for methods whose sensitivity depends on the width. ``label`` names
    the scores (the ``sensitivity.csv`` column), ``info`` carries timings and settings.
    """

    scores: dict[str, float]
    seconds: float
    label: str
    per_width: dict[str, dict[int, float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (width keys become strings)."""
        return {"scores": self.scores, "seconds": self.seconds, "label": self.label, "info": self.info,
                "per_width": {n: {str(b): v for b, v in row.items()} for n, row in self.per_width.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayerSensitivity:
        """Inverse of :meth:`to_json`."""
        return cls({n: float(v) for n, v in data["scores"].items()}, float(data["seconds"]), str(data["label"]),
                   {n: {int(b): float(v) for b, v in row.items()} for n, row in data.get("per_width", {}).items()},
                   dict(data.get("info", {})))

    def columns(self) -> dict[str, dict[str, float]]:
        """Named per-layer series: ``<label>-w<bits>`` per width below 8 when per-width, else ``label``."""
        widths = sorted({b for row in self.per_width.values() for b in row if b < 8})
        if not widths:
            return {self.label: self.scores}
        return {f"{self.label}-w{b}": {n: row[b] for n, row in self.per_width.items()} for b in widths}


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


class SensitivityMethod(Method):
    """A method in two steps, a sensitivity and an allocation from it (the search caches the first)."""

    @abstractmethod
    def sensitivity(self, problem: Problem) -> LayerSensitivity:
        """Per-layer sensitivity (the expensive step; depends on the data, not on the budgets)."""

    @abstractmethod
    def allocate(self, problem: Problem, sens: LayerSensitivity) -> MethodResult:
        """The configuration from ``sens`` under the problem's budgets (``search_seconds`` left at 0)."""

    def sensitivity_key(self) -> dict[str, Any]:
        """The settings the sensitivity depends on (a cache of it is valid while they stay the same)."""
        return {k: v for k, v in sorted(vars(self).items()) if isinstance(v, (int, float, str, bool)) and k != "name"}

    def _search(self, problem: Problem) -> MethodResult:
        return self.allocate(problem, self.sensitivity(problem))


__all__ = ["IlpOptions", "LayerSensitivity", "Method", "MethodResult", "Problem", "SensitivityMethod"]
