"""The multiple-choice knapsack model the solvers see (:mod:`codesign.solvers`), built from a compiled problem."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from codesign import solvers
from codesign.budgets import SCALE, Budgets, exceeds, float_limit, size_limit_bits
from codesign.ilp.compile import CompiledProblem

_SAFE = re.compile(r"[^A-Za-z0-9_]")


def mck_model(p: CompiledProblem, budgets: Budgets, objective_kind: str = "objective") -> solvers.MckModel:
    """One option set per group (on-chip-bounded and dominated options dropped), the objective, the rows.

    Maximises row ``objective_kind``; any other kind is minimised (its row is negated).
    """
    allowed = _allowed_options(p, budgets)
    if objective_kind == "objective":
        allowed = _drop_dominated(p, budgets, allowed)
    keep = [np.flatnonzero(np.asarray(ok, dtype=bool)) for ok in allowed]
    sign = 1.0 if objective_kind == "objective" else -1.0
    value = [sign * np.asarray(p.coef[objective_kind][g], dtype=np.float64)[k] for g, k in enumerate(keep)]
    rows = []
    for kind, limit in budgets.active().items():
        if kind == "onchip_kbit" and p.onchip_mode == "max":
            continue  # per-layer bound: handled by dropping oversized options above
        coef = [np.asarray(p.coef[kind][g], dtype=np.float64)[k] for g, k in enumerate(keep)]
        if kind == "size_mbit":  # integer bits on both sides: exact
            rows.append(solvers.Row(f"budget_{kind}", [np.round(c / SCALE[kind]) for c in coef],
                                    float(size_limit_bits(limit))))
        else:
            rows.append(solvers.Row(f"budget_{kind}", coef, float_limit(limit)))
    labels = [_SAFE.sub("_", p.costs[m[0]].name)[:40] for m in p.groups]
    tags = [[f"w{w}" if w == a else f"w{w}a{a}" for (w, a) in opts] for opts in p.options]
    return solvers.MckModel(labels, tags, keep, value, rows)


def _allowed_options(p: CompiledProblem, budgets: Budgets) -> list[list[bool]]:
    limit = budgets.onchip_kbit
    if limit is None or p.onchip_mode != "max":
        return [[True] * len(o) for o in p.options]
    rows = p.coef["onchip_kbit"]
    return [[not exceeds(float(v), limit) for v in row] for row in rows]  # type: ignore[union-attr]


def _drop_dominated(p: CompiledProblem, budgets: Budgets, allowed: list[list[bool]]) -> list[list[bool]]:
    """Drop the options another allowed option beats on the objective and on every active row.

    Exact (swapping a dominated option for its dominator keeps feasibility and never lowers
    the objective; ties break by option index, so dominance is a strict partial order and
    every dropped option has an undropped dominator). It shrinks the MIP: a layer with
    Omega < 0 and monotone costs keeps only its narrowest width, and in W/A mode (w, a < w)
    loses to (w, w) when Omega > 0.
    """
    kinds = [k for k in budgets.active() if not (k == "onchip_kbit" and p.onchip_mode == "max")]
    out = []
    for g, ok in enumerate(allowed):
        obj = np.asarray(p.coef["objective"][g])
        cost = np.stack([np.asarray(p.coef[k][g]) for k in kinds]) if kinds else np.zeros((0, len(ok)))
        n = len(ok)
        # [i, j]: option i is at least as good as option j everywhere / strictly better somewhere
        no_worse = (obj[:, None] >= obj[None, :]) & np.all(cost[:, :, None] <= cost[:, None, :], axis=0)
        strictly = (obj[:, None] > obj[None, :]) | np.any(cost[:, :, None] < cost[:, None, :], axis=0)
        earlier = np.arange(n)[:, None] < np.arange(n)[None, :]
        dominates = no_worse & (strictly | earlier) & np.asarray(ok)[:, None]
        out.append([bool(ok[j]) and not dominates[:, j].any() for j in range(n)])
    return out


def within_budgets(p: CompiledProblem, budgets: Budgets) -> Callable[[list[int]], bool]:
    """The exact budget check of a choice (the solvers' rows are met to their own tolerance)."""
    return lambda choice: not budgets.excess(p.totals(choice))


def minimise(p: CompiledProblem, kind: str, budgets: Budgets, solver: str) -> float | None:
    """Smallest value of row ``kind`` under ``budgets`` (None: infeasible)."""
    if kind == "onchip_kbit" and p.onchip_mode == "max":
        return _min_peak_onchip(p, budgets, solver)
    sol = solvers.solve(mck_model(p, budgets, objective_kind=kind), solver, within_budgets(p, budgets))
    return p.totals(sol.choice)[kind] if sol.status == "Optimal" else None


def _min_peak_onchip(p: CompiledProblem, budgets: Budgets, solver: str) -> float | None:
    """Min over feasible assignments of the peak on-chip memory: try thresholds in increasing order."""
    floor = (p.extreme("onchip_kbit") or (0.0, 0.0))[0]  # below it some layer has no option at all
    levels = sorted({float(v) for row in p.coef["onchip_kbit"] for v in row if v >= floor})  # type: ignore[union-attr]
    rest = {k: v for k, v in budgets.active().items() if k != "onchip_kbit"}
    for lvl in levels:
        b = Budgets(**rest, onchip_kbit=lvl, onchip_mode="max")
        if solvers.solve(mck_model(p, b), solver, within_budgets(p, b)).status == "Optimal":
            return lvl
    return None

