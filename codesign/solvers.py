"""The ILP's solvers: PuLP's bundled CBC, a system ``cbc``, or a built-in exact NumPy solver.

The bit-width ILP is a multiple-choice knapsack: pick one option per group (a layer, or a
tie group of layers) to maximise a sum of values under a few linear budget rows. The search
must solve it on the board too, and PuLP bundles CBC for x86, i386 and aarch64 only: on a
32-bit armv7l Python, PuLP picks the i386 binary and its ``available()`` only checks that the
file exists, so running it fails with ``Exec format error``. Hence a fallback chain:

1. ``cbc``: the CBC binary bundled with PuLP, used only if it *runs*. It is probed once per
   process on a one-variable problem and the answer is cached.
2. ``coin``: a ``cbc`` on ``PATH`` (Debian/Ubuntu ``coinor-cbc``, which exists for armhf),
   through PuLP's ``COIN_CMD``; probed the same way.
3. ``builtin``: exact and NumPy only (PuLP is not even needed):

   * one budget row: dynamic programming over the Pareto front of (cost, value) states,
     group by group (states another state beats on both cost and value are dropped; states
     that cannot fit the remaining groups' cheapest options are dropped too);
   * several rows: depth-first branch and bound; the bound is the Lagrangian relaxation
     ``val + lambda.(room left) + sum over the remaining groups of max_k(v - lambda.a)``
     for a few fixed multiplier vectors (0, and the dual optimum found by a projected
     subgradient at the root), precomputed as suffix sums so that a node costs O(rows).
     Any lambda >= 0 gives a valid upper bound, so pruning never loses the optimum.

``auto`` takes the first that works. Both PuLP paths use the PuLP 4.0-ready API
(``COIN_CMD`` with an explicit path, ``LpProblem.add_variable``), not the deprecated
``PULP_CBC_CMD`` or direct ``LpVariable`` construction.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from codesign.solver_builtin import MAX_NODES, solve_builtin
from codesign.solver_model import MckModel, Row, Solution, SolverError

SOLVERS = ("auto", "cbc", "coin", "builtin")
_MAX_REPAIRS = 20


# ---- probing the PuLP solvers ----------------------------------------------------------------------
def _pulp() -> Any:
    try:
        import pulp
    except ImportError:
        return None
    return pulp


def _probe_cmd(path: str) -> str | None:
    """Run CBC at ``path`` on ``max x, x <= 1`` (x binary); None if it worked, else the reason."""
    pulp = _pulp()
    if pulp is None:
        return "PuLP is not installed"
    if not Path(path).is_file():
        return f"{path} does not exist"
    prob = pulp.LpProblem("probe", pulp.LpMaximize)
    x = _variable(prob, "x")
    prob += x
    prob += x <= 1, "c"
    try:
        prob.solve(pulp.COIN_CMD(path=path, msg=False))
    except Exception as err:  # OSError (Exec format error), PulpSolverError: any failure means "not usable"
        return f"{path} does not run here ({type(err).__name__}: {err})"
    if pulp.LpStatus[prob.status] != "Optimal" or abs((x.varValue or 0.0) - 1.0) > 1e-6:
        return f"{path} ran but returned a wrong answer on a one-variable problem"
    return None


@functools.cache
def probe(backend: str) -> tuple[str | None, str]:
    """``(path, why)`` of a PuLP backend ('cbc' bundled, 'coin' on PATH): path None when it cannot run. Cached."""
    pulp = _pulp()
    if pulp is None:
        return None, "PuLP is not installed"
    if backend == "cbc":
        from pulp.apis import coin_api

        path = str(Path(coin_api.pulp_cbc_path).resolve())
    elif backend == "coin":
        found = shutil.which("cbc")
        if found is None:
            return None, "no `cbc` on PATH (install coinor-cbc)"
        path = found
    else:
        raise ValueError(f"not a PuLP backend: {backend!r}")
    why = _probe_cmd(path)
    return (None, why) if why else (path, "ok")


def describe(backend: str) -> str:
    """Human name of a usable backend, with the binary it runs."""
    if backend == "builtin":
        return "builtin"
    path, _ = probe(backend)
    pulp = _pulp()
    version = getattr(pulp, "__version__", "?")
    return f"cbc (bundled with PuLP {version})" if backend == "cbc" else f"coin ({path})"


def resolve(solver: str) -> str:
    """The backend to use for ``solver`` ('auto' walks cbc -> coin -> builtin); raises SolverError."""
    if solver not in SOLVERS:
        raise SolverError(f"unknown ILP solver {solver!r}; choose one of {', '.join(SOLVERS)}.")
    if solver == "builtin":
        return solver
    if solver == "auto":
        return next((b for b in ("cbc", "coin") if probe(b)[0] is not None), "builtin")
    path, why = probe(solver)
    if path is None:
        hint = "use --solver coin with a system cbc, or --solver builtin" if solver == "cbc" else \
            "install coinor-cbc, or use --solver builtin"
        raise SolverError(f"ILP solver {solver!r} cannot run: {why}; {hint} (or --solver auto).")
    return solver


# ---- PuLP model --------------------------------------------------------------------------------------
def _variable(prob: Any, name: str) -> Any:
    """A binary of ``prob``: ``add_variable`` on PuLP >= 3.3 (4.0 API), ``LpVariable`` on older PuLP."""
    pulp = _pulp()
    add = getattr(prob, "add_variable", None)
    if add is not None:
        return add(name, cat=pulp.LpBinary)
    return pulp.LpVariable(name, cat=pulp.LpBinary)


def to_pulp(model: MckModel) -> tuple[Any, list[dict[int, Any]]]:
    """The model as a PuLP maximisation: one-hot binaries per group, the objective and the rows."""
    pulp = _pulp()
    prob = pulp.LpProblem(model.name, pulp.LpMaximize)
    xs: list[dict[int, Any]] = []
    for g, (label, tags, keep) in enumerate(zip(model.labels, model.tags, model.keep)):
        row = {int(k): _variable(prob, f"x{g}_{label}_{tags[int(k)]}") for k in keep}
        xs.append(row)
        prob += pulp.lpSum(row.values()) == 1, f"one_width_{g}"
    prob += _affine(pulp, xs, model.value, model.keep), "objective"
    for r in model.rows:
        prob += _affine(pulp, xs, r.coef, model.keep) <= r.limit, r.name
    return prob, xs


def _chosen(row: dict[int, Any]) -> int:
    """The option whose binary variable CBC set (the largest value, robust to 0.9999)."""
    return max(row, key=lambda k: row[k].varValue or 0.0)


def _affine(pulp: Any, xs: list[dict[int, Any]], coef: list[np.ndarray], keep: list[np.ndarray]) -> Any:
    pairs = [(xs[g][int(k)], float(c)) for g in range(len(xs)) for k, c in zip(keep[g], coef[g])]
    return pulp.LpAffineExpression(pairs)


def lp_text(model: MckModel, path: str | Path | None = None) -> str:
    """The model in CPLEX-LP format (also written to ``path``); empty without PuLP."""
    if _pulp() is None:
        return ""
    prob, _ = to_pulp(model)
    if path is not None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        prob.writeLP(str(p))
        return p.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "ilp.lp"
        prob.writeLP(str(f))
        return f.read_text()


def _solve_pulp(model: MckModel, backend: str, accept: Callable[[list[int]], bool]) -> Solution:
    """CBC through COIN_CMD; CBC meets rows to ~1e-7, so a choice ``accept`` rejects is cut off and re-solved."""
    pulp = _pulp()
    path, _ = probe(backend)
    prob, xs = to_pulp(model)
    cmd = pulp.COIN_CMD(path=path, msg=False, gapRel=0.0, gapAbs=0.0, threads=1)
    t0 = time.perf_counter()
    for attempt in range(_MAX_REPAIRS + 1):
        prob.solve(cmd)
        status = pulp.LpStatus[prob.status]
        if status == "Infeasible":
            return Solution("Infeasible", [], time.perf_counter() - t0, describe(backend))
        if status != "Optimal":
            raise SolverError(f"CBC did not find an optimal bit assignment (status {status!r}).")
        choice = [_chosen(row) for row in xs]
        if accept(choice):
            return Solution("Optimal", choice, time.perf_counter() - t0, describe(backend))
        picked = [row[k] for row, k in zip(xs, choice)]  # one-hot no-good cut: not all of these again
        prob += pulp.lpSum(picked) <= len(picked) - 1, f"exclude_tolerance_{attempt}"
    raise SolverError(f"CBC kept returning assignments that exceed a budget by its tolerance ({_MAX_REPAIRS} tries).")



# ---- entry point ---------------------------------------------------------------------------------------------
def solve(model: MckModel, solver: str = "auto", accept: Callable[[list[int]], bool] | None = None) -> Solution:
    """Solve ``model`` with ``solver`` (see :data:`SOLVERS`); ``accept`` re-checks a choice exactly."""
    backend = resolve(solver)
    check = accept or (lambda _choice: True)
    if backend != "builtin":
        return _solve_pulp(model, backend, check)
    t0 = time.perf_counter()
    choice, method = solve_builtin(model)
    seconds = time.perf_counter() - t0
    if choice is None:
        return Solution("Infeasible", [], seconds, f"builtin ({method})")
    if not check(choice):  # the rows use the same limits, so only float summation order could differ
        raise SolverError("the built-in solver's assignment fails the exact budget check (float rounding).")
    return Solution("Optimal", choice, seconds, f"builtin ({method})")


def available() -> dict[str, str]:
    """Each backend and whether it runs here (for ``codesign inspect``-style reports and benches)."""
    out = {b: ("ok: " + describe(b)) if probe(b)[0] else f"unavailable: {probe(b)[1]}" for b in ("cbc", "coin")}
    out["builtin"] = "ok"
    return out


__all__ = ["MAX_NODES", "SOLVERS", "MckModel", "Row", "Solution", "SolverError", "available", "lp_text", "probe",
           "resolve", "solve", "solve_builtin", "to_pulp"]
