"""The compiled ILP: tie groups x width options x the coefficients of the objective and every budget row.

Budget *evaluation* of a chosen assignment is :meth:`codesign.budgets.Budgets.totals` (the one
evaluator); the per-option coefficients here are what the MIP rows are built from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from codesign.budgets import BUDGET_KINDS, LABELS, SCALE, Budgets, LayerCost, Pair
from codesign.ilp.errors import IlpError
from codesign.ilp.omega import check_beta, omega_at_top
from codesign.quant.dyadic import check_bits
from codesign.unionfind import DisjointSets


@dataclass
class CompiledProblem:
    """Tie groups, their options (w, a) and per-option coefficients of every row."""

    costs: list[LayerCost]
    candidates: list[int]
    groups: list[list[int]]
    options: list[list[Pair]]
    omega: np.ndarray
    coef: dict[str, list[np.ndarray | None]]  # 'objective', BUDGET_KINDS -> per group (None: unknown)
    onchip_mode: str
    n_pinned: int

    def objective(self, choice: Sequence[int]) -> float:
        """The objective row at one option index per group."""
        return math.fsum(float(np.asarray(v)[k]) for v, k in zip(self.coef["objective"], choice))

    def widths(self, choice: Sequence[int]) -> dict[str, Pair]:
        """Layer -> (w, a) of one option index per group."""
        return {self.costs[i].name: opts[k] for members, opts, k in zip(self.groups, self.options, choice)
                for i in members}

    def totals(self, choice: Sequence[int]) -> dict[str, float | None]:
        """Size, latency, energy and on-chip memory of a choice: :meth:`Budgets.totals`, the one evaluator."""
        return Budgets(onchip_mode=self.onchip_mode).totals(self.costs, self.widths(choice))

    def extreme(self, kind: str) -> tuple[float, float] | None:
        """Smallest and largest achievable value of row ``kind`` (rows are separable)."""
        vals = [v for v in self.coef[kind] if v is not None]
        if len(vals) < len(self.coef[kind]):
            return None
        mins = [float(v.min()) for v in vals]
        maxs = [float(v.max()) for v in vals]
        if kind == "onchip_kbit" and self.onchip_mode == "max":
            return max(mins), max(maxs)
        return math.fsum(mins), math.fsum(maxs)


def check_candidates(candidates: Iterable[int]) -> list[int]:
    """The candidate widths sorted and de-duplicated; each in 2..8, at least one."""
    cands = sorted({check_bits(b, "candidate width") for b in candidates})
    if not cands:
        raise IlpError("the candidate set of widths is empty; give at least one width in 2..8.")
    return cands


def _union_groups(names: list[str], ties: Iterable[Iterable[str]]) -> list[list[int]]:
    """Merge overlapping tie lists (union-find); groups in first-layer order."""
    index = {n: i for i, n in enumerate(names)}
    sets: DisjointSets[int] = DisjointSets(range(len(names)))
    for tie in ties:
        members = list(tie)
        unknown = [m for m in members if m not in index]
        if unknown:
            raise IlpError(f"tie {members} names layer(s) without costs: {', '.join(map(str, unknown))}.")
        for m in members[1:]:
            sets.union(index[m], index[members[0]])
    return sets.groups(range(len(names)))


def _pin_pair(name: str, value: int | Pair) -> Pair:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return check_bits(value[0], f"pinned w bits of {name!r}"), check_bits(value[1], f"pinned a bits of {name!r}")
    b = check_bits(value, f"pinned width of {name!r}")
    return b, b


def _group_options(groups: list[list[int]], names: list[str], cands: list[int],
                   pins: Mapping[str, int | Pair], separate_wa: bool) -> list[list[Pair]]:
    index = {n: i for i, n in enumerate(names)}
    unknown = [p for p in pins if p not in index]
    if unknown:
        raise IlpError(f"pinned layer(s) {', '.join(unknown)} have no costs; known layers: {', '.join(names[:8])}...")
    pin_of = {index[n]: _pin_pair(n, v) for n, v in pins.items()}
    free = [(w, a) for w in cands for a in cands] if separate_wa else [(b, b) for b in cands]
    options = []
    for members in groups:
        pinned = {pin_of[i] for i in members if i in pin_of}
        if len(pinned) > 1:
            who = ", ".join(f"{names[i]}={pin_of[i]}" for i in members if i in pin_of)
            raise IlpError(f"tied layers are pinned to different widths ({who}); a tie group has one width.")
        options.append(sorted(pinned) if pinned else list(free))
    return options


def _row(costs: list[LayerCost], members: list[int], opts: list[Pair], kind: str, mode: str) -> np.ndarray | None:
    """Coefficients of one row for one group, in the budget's unit; None if any cost is unknown."""
    out = np.empty(len(opts))
    for k, (w, a) in enumerate(opts):
        if kind == "size_mbit":
            out[k] = sum(costs[i].n_weights for i in members) * w * SCALE[kind]
            continue
        attr = {"latency_cycles": "cycles", "energy_uj": "energy_uj", "onchip_kbit": "onchip_bits"}[kind]
        vals = [costs[i].cost(attr, w, a) for i in members]
        if any(v is None for v in vals):
            return None
        vals_f = [float(v) for v in vals if v is not None]
        if not all(math.isfinite(v) for v in vals_f):
            raise IlpError(f"a {LABELS[kind]} cost at W{w}/A{a} is not a finite number (layers {[costs[i].name for i in members]}).")
        out[k] = (max(vals_f) if kind == "onchip_kbit" and mode == "max" else math.fsum(vals_f)) * SCALE[kind]
    return out



def _table_objective(costs: list[LayerCost], groups: list[list[int]], options: list[list[Pair]],
                     table: Mapping[str, Mapping[int, float]]) -> list[np.ndarray]:
    """Objective coefficient of each (group, option): the sum over the group's layers of ``table[layer][w]``."""
    out = []
    for members, opts in zip(groups, options):
        row = np.empty(len(opts))
        for k, (w, _a) in enumerate(opts):
            total = 0.0
            for i in members:
                name = costs[i].name
                per = table.get(name)
                if per is None or w not in per:
                    have = sorted(per) if per is not None else []
                    raise IlpError(
                        f"the objective has no value for layer {name!r} at {w} bit (it has widths {have}); "
                        "give one for every candidate (and pinned) width of every layer."
                    )
                v = float(per[w])
                if not math.isfinite(v):
                    raise IlpError(f"the objective of layer {name!r} at {w} bit is not a finite number ({v!r}).")
                total += v
            row[k] = total
        out.append(row)
    return out


def compile_problem(costs: Sequence[LayerCost], candidates: Iterable[int], budgets: Budgets, beta: float,
             ties: Iterable[Iterable[str]], pin: Mapping[str, int | Pair], separate_wa: bool,
             table: Mapping[str, Mapping[int, float]] | None = None) -> CompiledProblem:
    """Validate the inputs and build groups, options and every row.

    With ``table`` (per layer, per width objective values) the objective row comes from it and
    Omega is not computed (all zeros); otherwise the objective is ``Omega_i * (w + a) / 2``.
    """
    costs = list(costs)
    if not costs:
        raise IlpError("the ILP needs at least one layer cost.")
    names = [c.name for c in costs]
    if len(set(names)) != len(names):
        raise IlpError("layer costs have duplicate names.")
    bad = [c.name for c in costs if isinstance(c.n_weights, bool) or not isinstance(c.n_weights, (int, np.integer))
           or c.n_weights < 0]
    if bad:
        raise IlpError(f"n_weights must be a non-negative integer; it is not for {', '.join(bad[:5])}.")
    if budgets.onchip_mode not in ("max", "sum"):
        raise IlpError(f"onchip_mode must be 'max' or 'sum', got {budgets.onchip_mode!r}.")
    for k, v in budgets.active().items():
        if not math.isfinite(v) or v < 0:
            raise IlpError(f"{LABELS[k]} budget must be a finite number >= 0, got {v!r}.")
    cands = check_candidates(candidates)
    om = omega_at_top(costs, cands, check_beta(beta)) if table is None else np.zeros(len(costs))
    groups = _union_groups(names, ties)
    options = _group_options(groups, names, cands, pin, separate_wa)
    coef: dict[str, list[np.ndarray | None]] = {}
    if table is None:
        coef["objective"] = [np.array([sum(om[i] for i in m) * (w + a) / 2.0 for (w, a) in o])
                             for m, o in zip(groups, options)]
    else:
        coef["objective"] = list(_table_objective(costs, groups, options, table))
    for kind in BUDGET_KINDS:
        coef[kind] = [_row(costs, m, o, kind, budgets.onchip_mode) for m, o in zip(groups, options)]
    return CompiledProblem(costs, cands, groups, options, om, coef, budgets.onchip_mode, len(pin))

