"""The public solves: :func:`solve` (the paper's ``max sum b_i*Omega_i``) and :func:`solve_table` (per-width objectives)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from codesign import solvers
from codesign.budgets import Budgets, LayerCost, Pair
from codesign.ilp.compile import CompiledProblem, compile_problem
from codesign.ilp.errors import IlpError
from codesign.ilp.feasibility import check_single_budgets, joint_infeasible
from codesign.ilp.mck import mck_model, within_budgets

if TYPE_CHECKING:
    from codesign.graph.ir import Graph
    from codesign.quant.bitconfig import BitConfig


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
    p = compile_problem(costs, candidates, budgets, beta, ties, pin or {}, separate_wa)
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
    p = compile_problem(costs, candidates, budgets, 0.5, ties, pin or {}, False, table=objective)
    raw = [np.asarray(c, dtype=np.float64) for c in p.coef["objective"] if c is not None]
    scale = max((float(np.abs(c).max()) for c in raw if c.size), default=0.0) or 1.0
    sign = -1.0 if sense == "min" else 1.0
    p.coef["objective"] = [sign * c / scale for c in raw]
    res, choice = _solve_compiled(p, budgets, t0, lp_path, solver)
    res.objective = math.fsum(float(c[k]) for c, k in zip(raw, choice))
    res.omega = {}
    res.n_options = sum(len(o) for o in p.options)
    return res


def _solve_compiled(p: CompiledProblem, budgets: Budgets, t0: float, lp_path: str | Path | None,
                    solver: str) -> tuple[IlpResult, list[int]]:
    """Check single budgets, build the maximising model, solve it exactly; result and option indices."""
    backend = solvers.resolve(solver)  # a solver that cannot run is a user error before any work
    check_single_budgets(p, budgets)
    model = mck_model(p, budgets)
    text = solvers.lp_text(model, lp_path)
    build_s = time.perf_counter() - t0
    sol = solvers.solve(model, backend, within_budgets(p, budgets))
    if sol.status == "Infeasible":
        raise joint_infeasible(p, budgets, backend)
    res = _result(p, sol.choice, sol.status, sol.seconds, build_s, text, sum(len(k) for k in model.keep))
    res.solver = sol.solver
    return res, sol.choice


def _result(p: CompiledProblem, choice: list[int], status: str, solve_s: float, build_s: float,
            lp_text: str, n_vars: int) -> IlpResult:
    widths = p.widths(choice)
    totals = p.totals(choice)
    order = [c.name for c in p.costs]
    return IlpResult(
        bits={n: widths[n][0] for n in order}, a_bits={n: widths[n][1] for n in order},
        objective=p.objective(choice), size_mbit=float(totals["size_mbit"] or 0.0),
        latency_cycles=totals["latency_cycles"], energy_uj=totals["energy_uj"],
        onchip_kbit=totals["onchip_kbit"], solve_seconds=solve_s, build_seconds=build_s,
        status=status, lp_text=lp_text, omega={c.name: float(o) for c, o in zip(p.costs, p.omega)},
        n_variables=n_vars,
    )

