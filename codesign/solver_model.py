"""The model every ILP backend of :mod:`codesign.solvers` solves, and what a backend returns.

:class:`MckModel` is a multiple-choice knapsack: one option per group, a value per option,
linear budget :class:`Row` s; :class:`Solution` is a backend's answer; :class:`SolverError`
is raised when a solver cannot run or finish. NumPy only: shared by the PuLP backends
(:mod:`codesign.solvers`) and the built-in exact solver (:mod:`codesign.solver_builtin`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codesign.errors import CodesignError


class SolverError(CodesignError):
    """The requested solver cannot run here, or could not finish."""


# ---- the model every backend solves ------------------------------------------------------------
@dataclass
class Row:
    """One budget row: ``sum_g coef[g][choice_g] <= limit`` (coefficients over the kept options)."""

    name: str
    coef: list[np.ndarray]
    limit: float


@dataclass
class MckModel:
    """Multiple-choice knapsack: per group, kept options with a value each; maximise the sum of values.

    ``keep[g]`` holds the indices (into the group's full option list) of the options that get
    a variable; ``value[g]`` and each row's ``coef[g]`` are aligned with ``keep[g]``.
    ``labels[g]`` names the group's variables in the LP file.
    """

    labels: list[str]
    tags: list[list[str]]
    keep: list[np.ndarray]
    value: list[np.ndarray]
    rows: list[Row] = field(default_factory=list)
    name: str = "ohq_bitwidths"


@dataclass
class Solution:
    """A backend's answer: option index (into the full option list) per group."""

    status: str  # "Optimal" or "Infeasible"
    choice: list[int]
    seconds: float
    solver: str  # which solver ran, e.g. "cbc (bundled with PuLP 3.3.2)" or "builtin (dp)"


__all__ = ["MckModel", "Row", "Solution", "SolverError"]
