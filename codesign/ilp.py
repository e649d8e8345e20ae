"""The OHQ bit-width ILP (method steps 4 and 5): combine MQE and OQA, then solve it exactly.

The solver is PuLP's bundled CBC where it runs, else a system ``cbc``, else a built-in exact
NumPy solver (:mod:`codesign.solvers`; ``solver=`` picks one).

**Objective (paper, faithful).** ``Omega_i = beta*w^_i - gamma/2*(c^_i + e^_i)`` with
``gamma = 1 - beta``; ``w`` is the MQE sensitivity, ``c`` the cycles and ``e`` the energy of
layer ``i``, each min-max scaled to [0, 1] across layers. The ILP maximises
``sum_i b_i * Omega_i`` (one-hot binaries ``x_{i,b}``) subject to the budgets.

* ``c_i`` and ``e_i`` in ``Omega`` are taken at the **highest candidate width** (W=A=max): the
  objective needs one scalar per layer, and MQE measures sensitivity on the model quantized
  at 8 bit, so both terms describe the same operating point. The per-width costs enter where
  they are exact: the latency/energy/on-chip budget rows use the table value at each width.
* ``Omega_i`` lies in ``[-gamma, beta]`` and **can be negative** (an insensitive,
  costly layer). Maximising ``sum b_i Omega_i`` then drives such a layer to the narrowest
  width *whatever the budget*: the ILP does not spend spare budget on it. Layers with
  ``Omega_i > 0`` compete for the budget; ``Omega_i == 0`` layers are indifferent (CBC picks
  any width). This is the paper's model; it is kept as is and documented, not patched.
* A term that is constant across layers (one layer, equal costs) scales to 0: it carries no
  information for ranking layers, and 0 avoids a division by zero.

**Budgets** (all upper bounds, combinable): model size in Mbit (10^6 bits of quantized
weights, biases excluded, as ``BitConfig.size_mbit``), latency in cycles and energy in uJ
(sums over layers of the hardware-table values per (layer, width)), and on-chip memory in
kbit (10^3 bits; ``onchip_mode="max"``: the largest layer's working set must fit, as on the
layer-by-layer OQA overlay; ``"sum"``: all layers resident, as in a dataflow design).

Sizes compare as whole bits (exact integer row); the float rows (latency, energy, on-chip)
are met to 1e-9 relative, and after CBC the exact sums are re-checked (an assignment CBC
accepted within its own 1e-7 tolerance is cut off and the MIP re-solved). The size budget is
the paper's constraint and the search always sets it; ``None`` is allowed for library use.

**Exact pre-filter.** Before CBC, an option that another option of the same layer (group)
beats on the objective and on every active budget row gets no variable. This keeps the
optimum and shrinks the MIP (a negative-Omega layer with monotone costs keeps one width).

**Separate W/A bits** (optional): a layer picks a pair (w, a) from ``candidates x candidates``.
Size uses ``w``; the objective uses ``Omega_i * (w + a) / 2`` (equal to ``b * Omega_i`` when
``w == a``); cycles/energy use the cost entry keyed ``(w, a)`` if the ``LayerCost`` has one,
else the entry at ``max(w, a)``: the overlay has one GEMM engine per width and a mixed pair runs
on the engine wide enough for both.

**Ties and pins.** Tied layers share one width (a tie group has one set of binaries, so the
model is smaller, not just constrained). A pin fixes a layer's (group's) width; a pinned width
need not be a candidate (e.g. first/last layer at 8 bit while searching {2, 4}).

**Per-(layer, width) objectives** (:func:`solve_table`): the baselines (HAWQ-v3, ZeroQ with
hardware budgets) minimise a table ``sum_i f_i(b_i)`` instead of ``sum_i b_i * Omega_i``,
with the same budget rows, ties, pins, pre-filter and infeasibility reporting.

NumPy (+ PuLP for CBC and the LP file) only: this runs on the board.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from codesign import solvers
from codesign.budgets import (
    BUDGET_KINDS,
    LABELS,
    SCALE,
    UNITS,
    Budgets,
    LayerCost,
    Pair,
    exceeds,
    float_limit,
    size_limit_bits,
)
from codesign.errors import CodesignError
from codesign.graph.ir import Activation, Add, BatchNorm, Flatten, Graph, Layer, Pool2D, Reshape, ZeroPad2D
from codesign.quant.dyadic import check_bits
from codesign.unionfind import DisjointSets

if TYPE_CHECKING:
    from codesign.hwtable import HwTable
    from codesign.quant.bitconfig import BitConfig

_MAX_REPAIRS = 20


class IlpError(CodesignError):
    """The ILP inputs are inconsistent (unknown tie/pin names, missing costs, bad beta...)."""


class InfeasibleBudgetError(CodesignError):
    """No bit assignment meets the budgets; the message gives the feasible range."""


# ---- plain data (LayerCost and Budgets: codesign.budgets) ----------------------------------
@dataclass
class IlpResult:
    """The chosen widths plus what they cost and how the solve went."""

    bits: dict[str, int]  # weight bits (== a_bits unless separate_wa)
    a_bits: dict[str, int]
    objective: float
    size_mbit: float
    latency_cycles: float | None
    energy_uj: float | None
    onchip_kbit: float | None
    solve_seconds: float  # solver wall time
    build_seconds: float  # Omega + model construction (and the LP file)
    status: str
    lp_text: str
    omega: dict[str, float] = field(default_factory=dict)
    n_variables: int = 0  # binaries in the MIP after dominated options are dropped
    n_options: int = 0  # (group, width) options before dropping
    solver: str = ""  # which solver ran, e.g. "cbc (bundled with PuLP 3.3.2)", "builtin (dp)"

    @property
    def w_bits(self) -> dict[str, int]:
        """Alias of ``bits``."""
        return self.bits

    def to_bitconfig(self, graph: Graph, **kw: Any) -> BitConfig:
        """The solution as a BitConfig validated against ``graph``."""
        from codesign.quant.bitconfig import BitConfig, LayerBits

        layers = {n: LayerBits(self.bits[n], self.a_bits[n]) for n in self.bits}
        return BitConfig(layers, model=graph.name, **kw).validated(graph)


# ---- Omega ---------------------------------------------------------------------------------
def minmax(v: Sequence[float] | np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant vector maps to all zeros (it cannot rank layers)."""
    a = np.asarray(v, dtype=np.float64)
    if a.size == 0:
        return a
    lo, hi = float(a.min()), float(a.max())
    return np.zeros_like(a) if hi - lo <= 0.0 else (a - lo) / (hi - lo)


def omega(sens: Sequence[float] | np.ndarray, cycles: Sequence[float], energy: Sequence[float], beta: float = 0.5) -> np.ndarray:
    """Paper Eq.: ``beta*w^ - (1-beta)/2*(c^ + e^)``, each term min-max scaled; in [-(1-beta), beta]."""
    beta = _check_beta(beta)
    arrays = [np.asarray(x, dtype=np.float64) for x in (sens, cycles, energy)]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1:
        raise IlpError(f"omega needs three 1-D vectors of equal length, got shapes {[a.shape for a in arrays]}.")
    if not all(np.isfinite(a).all() for a in arrays):
        raise IlpError("omega: sensitivities, cycles and energies must be finite numbers.")
    s, c, e = (minmax(a) for a in arrays)
    return beta * s - (1.0 - beta) / 2.0 * (c + e)


def _check_beta(beta: float) -> float:
    if not (isinstance(beta, (int, float)) and 0.0 <= float(beta) <= 1.0):
        raise IlpError(f"beta must be in [0, 1] (gamma = 1 - beta), got {beta!r}.")
    return float(beta)


# ---- the compiled problem: groups x options x coefficients ---------------------------------
@dataclass
class _Problem:
    """Tie groups, their options (w, a) and per-option coefficients of every row."""

    costs: list[LayerCost]
    candidates: list[int]
    groups: list[list[int]]
    options: list[list[Pair]]
    omega: np.ndarray
    coef: dict[str, list[np.ndarray | None]]  # 'objective', BUDGET_KINDS -> per group (None: unknown)
    onchip_mode: str
    n_pinned: int

    def total(self, kind: str, choice: Sequence[int]) -> float | None:
        """Row ``kind`` evaluated at one option index per group (None when a cost is unknown)."""
        vals = [v for g in range(len(self.groups)) if (v := self.coef[kind][g]) is not None]
        if len(vals) < len(self.groups):
            return None
        picked = [float(v[k]) for v, k in zip(vals, choice)]
        if kind == "onchip_kbit" and self.onchip_mode == "max":
            return max(picked)
        return math.fsum(picked)

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


def _check_candidates(candidates: Iterable[int]) -> list[int]:
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


def _omega_of(costs: list[LayerCost], cands: list[int], beta: float) -> np.ndarray:
    """Omega with cycles/energy at the highest candidate width (see module docstring)."""
    top = cands[-1]
    cyc, en = [], []
    for c in costs:
        cv, ev = c.cost("cycles", top, top), c.cost("energy_uj", top, top)
        if cv is None or ev is None:
            raise IlpError(
                f"layer {c.name!r} has no cycles/energy at {top} bit, the highest candidate width, which Omega "
                "uses; re-run OQA with this width or drop it from the candidates."
            )
        cyc.append(cv)
        en.append(ev)
    return omega([c.sensitivity for c in costs], cyc, en, beta)


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


def _compile(costs: Sequence[LayerCost], candidates: Iterable[int], budgets: Budgets, beta: float,
             ties: Iterable[Iterable[str]], pin: Mapping[str, int | Pair], separate_wa: bool,
             table: Mapping[str, Mapping[int, float]] | None = None) -> _Problem:
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
    cands = _check_candidates(candidates)
    om = _omega_of(costs, cands, _check_beta(beta)) if table is None else np.zeros(len(costs))
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
    return _Problem(costs, cands, groups, options, om, coef, budgets.onchip_mode, len(pin))


# ---- feasibility ---------------------------------------------------------------------------
def _fmt(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.4e}"


def _context(p: _Problem) -> str:
    extra = []
    if p.n_pinned:
        extra.append(f"{p.n_pinned} pinned layer(s)")
    tied = [g for g in p.groups if len(g) > 1]
    if tied:
        extra.append(f"{len(tied)} tie group(s)")
    cands = "{" + ",".join(map(str, p.candidates)) + "}"
    return f"with candidate widths {cands}" + (f" and {', '.join(extra)}" if extra else "")


def _ranges(p: _Problem) -> dict[str, tuple[float, float]]:
    return {k: r for k in BUDGET_KINDS if (r := p.extreme(k)) is not None}


def feasible_range(costs: Sequence[LayerCost], candidates: Iterable[int], ties: Iterable[Iterable[str]] = (),
                   pin: Mapping[str, int | Pair] | None = None, separate_wa: bool = False,
                   onchip_mode: str = "max") -> dict[str, tuple[float, float]]:
    """Per budget kind, the (min, max) value any assignment can reach, respecting ties and pins.

    Kinds whose costs are unknown for some layer are left out. Units are those of ``Budgets``.
    """
    p = _compile(costs, candidates, Budgets(onchip_mode=onchip_mode), 0.5, ties, pin or {}, separate_wa)
    return _ranges(p)


def check_budgets(costs: Sequence[LayerCost], candidates: Iterable[int], budgets: Budgets,
                  ties: Iterable[Iterable[str]] = (), pin: Mapping[str, int] | None = None) -> None:
    """Raise ``InfeasibleBudgetError`` (with the reachable range) if one budget alone is below the cheapest
    assignment, or ``IlpError`` if a set budget lacks costs; the checks :func:`solve` runs before CBC."""
    cands = _check_candidates(candidates)
    zero = {c.name: {b: 0.0 for b in range(2, 9)} for c in costs}
    p = _compile(costs, cands, budgets, 0.5, ties, pin or {}, False, table=zero)
    _check_single_budgets(p, budgets)


def _check_single_budgets(p: _Problem, budgets: Budgets) -> None:
    """Raise InfeasibleBudgetError if some budget is below what the cheapest assignment needs."""
    for kind, limit in budgets.active().items():
        rng = p.extreme(kind)
        if rng is None:
            raise IlpError(
                f"a {LABELS[kind]} budget is set but some layers lack a {LABELS[kind]} cost at some candidate "
                "(or pinned) width; give those costs (hardware table / LayerCost) or drop the budget."
            )
        if exceeds(rng[0], limit, kind):
            raise InfeasibleBudgetError(
                f"{LABELS[kind]} budget {_fmt(limit)} {UNITS[kind]} is infeasible: {_context(p)} the model needs "
                f"between {_fmt(rng[0])} and {_fmt(rng[1])} {UNITS[kind]}. Raise the budget to at least "
                f"{_fmt(rng[0])} {UNITS[kind]}, or change the candidate widths, pins or ties."
            )


def _joint_infeasible(p: _Problem, budgets: Budgets, solver: str) -> InfeasibleBudgetError:
    """Each budget is reachable alone but not together: report the best value under the others."""
    active = budgets.active()
    parts = []
    for kind in active:
        others = Budgets(**{k: v for k, v in active.items() if k != kind}, onchip_mode=budgets.onchip_mode)
        best = _minimise(p, kind, others, solver)
        lo, hi = p.extreme(kind) or (math.nan, math.nan)
        under = ", ".join(f"{LABELS[k]} <= {_fmt(v)} {UNITS[k]}" for k, v in others.active().items())
        if best is None:
            parts.append(f"the other budgets ({under}) cannot be met together either")
        else:
            parts.append(
                f"{LABELS[kind]} alone ranges over {_fmt(lo)}..{_fmt(hi)} {UNITS[kind]}, but with {under} it "
                f"cannot go below {_fmt(best)} {UNITS[kind]} (budget {_fmt(active[kind])})"
            )
    names = " and ".join(f"{LABELS[k]} {_fmt(v)} {UNITS[k]}" for k, v in active.items())
    return InfeasibleBudgetError(
        f"the budgets {names} are jointly infeasible {_context(p)}: each is reachable alone but not all "
        f"together; " + "; ".join(parts) + ". Relax one of them."
    )


# ---- the model the solvers see -------------------------------------------------------------
_SAFE = re.compile(r"[^A-Za-z0-9_]")


def _model(p: _Problem, budgets: Budgets, objective_kind: str = "objective") -> solvers.MckModel:
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


def _allowed_options(p: _Problem, budgets: Budgets) -> list[list[bool]]:
    limit = budgets.onchip_kbit
    if limit is None or p.onchip_mode != "max":
        return [[True] * len(o) for o in p.options]
    rows = p.coef["onchip_kbit"]
    return [[not exceeds(float(v), limit) for v in row] for row in rows]  # type: ignore[union-attr]


def _drop_dominated(p: _Problem, budgets: Budgets, allowed: list[list[bool]]) -> list[list[bool]]:
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


def _within(p: _Problem, budgets: Budgets) -> Callable[[list[int]], bool]:
    """The exact budget check of a choice (the solvers' rows are met to their own tolerance)."""
    return lambda choice: not any(exceeds(p.total(k, choice) or 0.0, lim, k) for k, lim in budgets.active().items())


def _minimise(p: _Problem, kind: str, budgets: Budgets, solver: str) -> float | None:
    """Smallest value of row ``kind`` under ``budgets`` (None: infeasible)."""
    if kind == "onchip_kbit" and p.onchip_mode == "max":
        return _min_peak_onchip(p, budgets, solver)
    sol = solvers.solve(_model(p, budgets, objective_kind=kind), solver, _within(p, budgets))
    return p.total(kind, sol.choice) if sol.status == "Optimal" else None


def _min_peak_onchip(p: _Problem, budgets: Budgets, solver: str) -> float | None:
    """Min over feasible assignments of the peak on-chip memory: try thresholds in increasing order."""
    floor = (p.extreme("onchip_kbit") or (0.0, 0.0))[0]  # below it some layer has no option at all
    levels = sorted({float(v) for row in p.coef["onchip_kbit"] for v in row if v >= floor})  # type: ignore[union-attr]
    rest = {k: v for k, v in budgets.active().items() if k != "onchip_kbit"}
    for lvl in levels:
        b = Budgets(**rest, onchip_kbit=lvl, onchip_mode="max")
        if solvers.solve(_model(p, b), solver, _within(p, b)).status == "Optimal":
            return lvl
    return None


# ---- public solve ----------------------------------------------------------------------------
def solve(costs: Sequence[LayerCost], candidates: Iterable[int], budgets: Budgets, beta: float = 0.5,
          ties: Iterable[Iterable[str]] = (), pin: Mapping[str, int | Pair] | None = None,
          separate_wa: bool = False, lp_path: str | Path | None = None, solver: str = "auto") -> IlpResult:
    """Maximise ``sum_i b_i * Omega_i`` under the budgets; infeasible budgets raise InfeasibleBudgetError.

    ``ties``: lists of layer names that share one width (overlapping lists merge). ``pin``:
    layer -> width (or (w, a) with ``separate_wa``). ``lp_path``: also write the model as a
    CPLEX-LP file there (the search run folder keeps it). ``solver``: 'auto' (bundled CBC if
    it runs, else a system cbc, else the built-in exact solver), 'cbc', 'coin' or 'builtin'
    (:mod:`codesign.solvers`); ``IlpResult.solver`` names the one that ran.
    """
    t0 = time.perf_counter()
    p = _compile(costs, candidates, budgets, beta, ties, pin or {}, separate_wa)
    res, _choice_idx = _solve_compiled(p, budgets, t0, lp_path, solver)
    res.n_options = sum(len(o) for o in p.options)
    return res


def solve_table(costs: Sequence[LayerCost], candidates: Iterable[int], budgets: Budgets,
                objective: Mapping[str, Mapping[int, float]], sense: str = "min",
                ties: Iterable[Iterable[str]] = (), pin: Mapping[str, int] | None = None,
                lp_path: str | Path | None = None, solver: str = "auto") -> IlpResult:
    """Minimise (``sense="min"``) or maximise ``sum_i objective[layer_i][b_i]`` under the budgets.

    The generic form of :func:`solve` for methods whose objective is a per-(layer, width)
    table rather than ``b_i * Omega_i`` (HAWQ-v3's ``trace * ||Q_b(W) - W||^2``, ZeroQ's KL
    sensitivity). Budget rows, ties, pins, the exact dominated-option pre-filter, the
    infeasibility messages (``InfeasibleBudgetError`` with the reachable range), the solver
    choice and the repair of CBC's row tolerance are those of :func:`solve`;
    ``LayerCost.sensitivity`` is ignored. W = A (one width per layer). ``objective`` needs a
    finite value for every layer at every candidate width (and at a pinned width).
    ``IlpResult.objective`` is the objective in its own units and sense; ``IlpResult.omega``
    is empty.

    Internally the coefficients are divided by their largest magnitude (CBC sees values in
    [-1, 1] however small the table is) and negated for minimisation, so one maximising model
    serves both senses.
    """
    if sense not in ("min", "max"):
        raise IlpError(f"sense must be 'min' or 'max', got {sense!r}.")
    t0 = time.perf_counter()
    known = {c.name for c in costs}
    extra = [n for n in objective if n not in known]
    if extra:
        raise IlpError(f"the objective names layer(s) without costs: {', '.join(map(str, extra[:8]))}.")
    p = _compile(costs, candidates, budgets, 0.5, ties, pin or {}, False, table=objective)
    raw = [np.asarray(c, dtype=np.float64) for c in p.coef["objective"] if c is not None]
    scale = max((float(np.abs(c).max()) for c in raw if c.size), default=0.0) or 1.0
    sign = -1.0 if sense == "min" else 1.0
    p.coef["objective"] = [sign * c / scale for c in raw]
    res, choice = _solve_compiled(p, budgets, t0, lp_path, solver)
    res.objective = math.fsum(float(c[k]) for c, k in zip(raw, choice))
    res.omega = {}
    res.n_options = sum(len(o) for o in p.options)
    return res


def _solve_compiled(p: _Problem, budgets: Budgets, t0: float, lp_path: str | Path | None,
                    solver: str) -> tuple[IlpResult, list[int]]:
    """Check single budgets, build the maximising model, solve it exactly; result and option indices."""
    backend = solvers.resolve(solver)  # a solver that cannot run is a user error before any work
    _check_single_budgets(p, budgets)
    model = _model(p, budgets)
    text = solvers.lp_text(model, lp_path)
    build_s = time.perf_counter() - t0
    sol = solvers.solve(model, backend, _within(p, budgets))
    if sol.status == "Infeasible":
        raise _joint_infeasible(p, budgets, backend)
    res = _result(p, budgets, sol.choice, sol.status, sol.seconds, build_s, text, sum(len(k) for k in model.keep))
    res.solver = sol.solver
    return res, sol.choice


def _result(p: _Problem, budgets: Budgets, choice: list[int], status: str, solve_s: float, build_s: float,
            lp_text: str, n_vars: int) -> IlpResult:
    bits: dict[str, int] = {}
    a_bits: dict[str, int] = {}
    for members, opts, k in zip(p.groups, p.options, choice):
        w, a = opts[k]
        for i in members:
            bits[p.costs[i].name] = w
            a_bits[p.costs[i].name] = a
    order = [c.name for c in p.costs]
    return IlpResult(
        bits={n: bits[n] for n in order}, a_bits={n: a_bits[n] for n in order},
        objective=float(p.total("objective", choice) or 0.0),
        size_mbit=float(p.total("size_mbit", choice) or 0.0),
        latency_cycles=p.total("latency_cycles", choice), energy_uj=p.total("energy_uj", choice),
        onchip_kbit=p.total("onchip_kbit", choice), solve_seconds=solve_s, build_seconds=build_s,
        status=status, lp_text=lp_text, omega={c.name: float(o) for c, o in zip(p.costs, p.omega)},
        n_variables=n_vars,
    )


# ---- helpers for the search CLI ----------------------------------------------------------------
def _n_weights(graph_or_costs: Graph | Sequence[LayerCost]) -> list[int]:
    if isinstance(graph_or_costs, Graph):
        return [int(ly.params["kernel"].size) for ly in graph_or_costs.quantizable()]
    return [int(c.n_weights) for c in graph_or_costs]


def ratio_to_size(graph_or_costs: Graph | Sequence[LayerCost], ratio: float, candidates: Iterable[int]) -> float:
    """Size budget (Mbit) at ``ratio`` in [0, 1] between all-narrowest (0) and all-widest (1)."""
    if not (isinstance(ratio, (int, float)) and 0.0 <= float(ratio) <= 1.0):
        raise IlpError(f"the size ratio must be in [0, 1] (0: all layers at the narrowest width, 1: widest), got {ratio!r}.")
    cands = _check_candidates(candidates)
    n = sum(_n_weights(graph_or_costs))
    lo, hi = n * cands[0] * SCALE["size_mbit"], n * cands[-1] * SCALE["size_mbit"]
    return lo + float(ratio) * (hi - lo)


def first_last_pins(costs: Sequence[LayerCost], bits: int = 8) -> dict[str, int]:
    """Pin the first and last layer at ``bits`` (the common, optional, convention)."""
    check_bits(bits, "pinned width")
    return {costs[0].name: bits, costs[-1].name: bits} if costs else {}


def from_hw_table(graph: Graph, hwtable: HwTable, sensitivities: Mapping[str, float],
                  candidates: Iterable[int] | None = None) -> list[LayerCost]:
    """LayerCosts of the quantizable layers: n_weights from the IR, cycles/energy from the OQA table."""
    bits = _check_candidates(candidates) if candidates is not None else hwtable.bits
    hwtable.check_model(graph, bits)
    missing = [ly.name for ly in graph.quantizable() if ly.name not in sensitivities]
    if missing:
        raise IlpError(f"no MQE sensitivity for {len(missing)} layer(s): {', '.join(missing[:8])}. Re-run MQE.")
    return table_costs(graph, hwtable, sensitivities)


def table_costs(graph: Graph, hwtable: HwTable, sensitivities: Mapping[str, float] | None = None) -> list[LayerCost]:
    """LayerCosts of the quantizable layers from the rows the table has (a missing row: unknown cost).

    Unchecked (:func:`from_hw_table` checks coverage); a layer without a sensitivity gets 0.
    """
    rows: dict[str, dict[int, Any]] = {}
    for r in hwtable.rows:
        rows.setdefault(r.layer, {})[r.bits] = r
    sens = sensitivities or {}
    return [LayerCost(name=ly.name, n_weights=int(ly.params["kernel"].size), sensitivity=float(sens.get(ly.name, 0.0)),
                      cycles={b: float(r.cycles_deployed) for b, r in rows.get(ly.name, {}).items()},
                      energy_uj={b: float(r.energy_uj) for b, r in rows.get(ly.name, {}).items()})
            for ly in graph.quantizable()]


# ---- residual ties ---------------------------------------------------------------------------------
_PASS_ACTS = {"relu", "relu6", "hswish"}  # fused into the producer's post-process: same integer stream


def _passes_through(layer: Layer) -> bool:
    """Ops between a GEMM and an Add that do not requantize to a new domain on the overlay."""
    if isinstance(layer, (BatchNorm, ZeroPad2D, Flatten, Reshape)):
        return True  # BN is folded into the conv; the others move codes unchanged
    if isinstance(layer, Activation):
        return layer.kind in _PASS_ACTS
    return isinstance(layer, Pool2D) and layer.kind == "max"


def _source(graph: Graph, name: str) -> str | None:
    """Walk back from tensor ``name`` through pass-through ops to a quantizable layer or an Add."""
    layer = graph[name]
    while not (layer.quantizable or isinstance(layer, Add)):
        if not (_passes_through(layer) and len(layer.inputs) == 1):
            return None  # input, avg-pool, SE multiply, sigmoid...: a new quantization domain
        layer = graph[layer.inputs[0]]
    return layer.name


def residual_ties(graph: Graph) -> list[list[str]]:
    """Tie groups: GEMM layers whose outputs meet in the same residual adder (transitively).

    Rule: for every Add, each operand is traced back through ops that keep the integer stream
    (folded BN, fused ReLU/ReLU6/h-swish, max-pool, pad, flatten, reshape) to its producing
    Conv2D/Dense or to an earlier Add. Everything that meets in one Add, and chains of Adds
    (a ResNet stage's identity shortcut), forms one group. Why: an adder of fixed width fused
    into the post-process stage adds two streams in one format, so the engines producing them
    must run at one width; the residual stream of a stage then has one width end to end.
    On the current OQA overlay the Add runs on the PS in int32 with dyadic rescaling of both
    operands (see ``codesign.quant.qgraph``), so these ties are not needed for correctness:
    they are opt-in (the search's tie flag) for overlays that fuse the add.
    """
    sets: DisjointSets[str] = DisjointSets()
    for layer in graph:
        if isinstance(layer, Add):
            for src in (_source(graph, i) for i in layer.inputs):
                if src is not None:
                    sets.union(src, layer.name)
    groups = sets.groups(ly.name for ly in graph.quantizable() if ly.name in sets)
    return [g for g in groups if len(g) > 1]


__all__ = [
    "Budgets", "IlpError", "IlpResult", "InfeasibleBudgetError", "LayerCost", "check_budgets", "feasible_range",
    "first_last_pins", "from_hw_table", "minmax", "omega", "ratio_to_size", "residual_ties", "solve",
    "solve_table", "table_costs",
]
