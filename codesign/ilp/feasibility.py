"""Budget feasibility: the reachable range of every budget, and messages that say how to fix an infeasible one."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from codesign.budgets import BUDGET_KINDS, LABELS, UNITS, Budgets, LayerCost, Pair, exceeds
from codesign.ilp.compile import CompiledProblem, check_candidates, compile_problem
from codesign.ilp.errors import IlpError, InfeasibleBudgetError
from codesign.ilp.mck import minimise


def _fmt(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.4e}"


def _context(p: CompiledProblem) -> str:
    extra = []
    if p.n_pinned:
        extra.append(f"{p.n_pinned} pinned layer(s)")
    tied = [g for g in p.groups if len(g) > 1]
    if tied:
        extra.append(f"{len(tied)} tie group(s)")
    cands = "{" + ",".join(map(str, p.candidates)) + "}"
    return f"with candidate widths {cands}" + (f" and {', '.join(extra)}" if extra else "")


def _ranges(p: CompiledProblem) -> dict[str, tuple[float, float]]:
    return {k: r for k in BUDGET_KINDS if (r := p.extreme(k)) is not None}


def feasible_range(costs: Sequence[LayerCost], candidates: Iterable[int], ties: Iterable[Iterable[str]] = (),
                   pin: Mapping[str, int | Pair] | None = None, separate_wa: bool = False,
                   onchip_mode: str = "max") -> dict[str, tuple[float, float]]:
    """Per budget kind, the (min, max) value any assignment can reach, respecting ties and pins.

    Kinds whose costs are unknown for some layer are left out. Units are those of ``Budgets``.
    """
    p = compile_problem(costs, candidates, Budgets(onchip_mode=onchip_mode), 0.5, ties, pin or {}, separate_wa)
    return _ranges(p)


def check_budgets(costs: Sequence[LayerCost], candidates: Iterable[int], budgets: Budgets,
                  ties: Iterable[Iterable[str]] = (), pin: Mapping[str, int] | None = None) -> None:
    """Raise ``InfeasibleBudgetError`` (with the reachable range) if one budget alone is below the cheapest
    assignment, or ``IlpError`` if a set budget lacks costs; the checks :func:`solve` runs before CBC."""
    cands = check_candidates(candidates)
    zero = {c.name: {b: 0.0 for b in range(2, 9)} for c in costs}
    p = compile_problem(costs, cands, budgets, 0.5, ties, pin or {}, False, table=zero)
    check_single_budgets(p, budgets)


def check_single_budgets(p: CompiledProblem, budgets: Budgets) -> None:
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


def joint_infeasible(p: CompiledProblem, budgets: Budgets, solver: str) -> InfeasibleBudgetError:
    """Each budget is reachable alone but not together: report the best value under the others."""
    active = budgets.active()
    parts = []
    for kind in active:
        others = Budgets(**{k: v for k, v in active.items() if k != kind}, onchip_mode=budgets.onchip_mode)
        best = minimise(p, kind, others, solver)
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

