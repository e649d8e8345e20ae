"""The ILP's built-in exact solver: NumPy only (no PuLP, no CBC), the ``builtin`` backend.

One budget row: dynamic programming over the Pareto front of (cost, value) states; several
rows: depth-first branch and bound with a Lagrangian upper bound (the method is described in
:mod:`codesign.solvers`, which picks this backend where no CBC runs, e.g. on an armv7l board).
"""

from __future__ import annotations

import math

import numpy as np

from codesign.solver_model import MckModel, SolverError

MAX_NODES = 20_000_000  # branch-and-bound nodes before the built-in solver gives up (never seen in practice)


# ---- the built-in exact solver -------------------------------------------------------------------------
def solve_builtin(model: MckModel) -> tuple[list[int] | None, str]:
    """Optimal option index per group (None: infeasible) and the method used ('dp' or 'branch and bound')."""
    if any(len(k) == 0 for k in model.keep):
        return None, "dp"
    if len(model.rows) <= 1:
        local = _pareto_dp(model.value, model.rows[0].coef if model.rows else None,
                           model.rows[0].limit if model.rows else 0.0)
        method = "dp"
    else:
        local = _branch_and_bound(model)
        method = "branch and bound"
    if local is None:
        return None, method
    return [int(model.keep[g][k]) for g, k in enumerate(local)], method


def _pareto_dp(value: list[np.ndarray], cost: list[np.ndarray] | None, limit: float) -> list[int] | None:
    """One row: keep, after each group, the states not beaten on both cost and value; backtrack the best."""
    if cost is None:
        return [int(np.argmax(v)) for v in value]
    n = len(value)
    rest_min = np.zeros(n + 1)  # cheapest cost of groups g.. (so a state that cannot fit them is dropped)
    for g in range(n - 1, -1, -1):
        rest_min[g] = rest_min[g + 1] + float(cost[g].min())
    c_state, v_state = np.zeros(1), np.zeros(1)
    trail: list[tuple[np.ndarray, np.ndarray]] = []
    for g in range(n):
        k = len(value[g])
        c_new = (c_state[:, None] + cost[g][None, :]).ravel()
        v_new = (v_state[:, None] + value[g][None, :]).ravel()
        parent = np.repeat(np.arange(len(c_state)), k)
        option = np.tile(np.arange(k), len(c_state))
        fits = c_new + rest_min[g + 1] <= limit
        if not fits.any():
            return None
        c_new, v_new, parent, option = c_new[fits], v_new[fits], parent[fits], option[fits]
        order = np.lexsort((-v_new, c_new))  # by cost, the best value first among equal costs
        c_new, v_new, parent, option = c_new[order], v_new[order], parent[order], option[order]
        best_before = np.concatenate(([-np.inf], np.maximum.accumulate(v_new)[:-1]))
        front = v_new > best_before  # strictly better than every cheaper-or-equal state
        c_state, v_state = c_new[front], v_new[front]
        trail.append((parent[front], option[front]))
    state = int(np.argmax(v_state))  # first maximum: the cheapest optimal state
    choice = [0] * n
    for g in range(n - 1, -1, -1):
        parent, option = trail[g]
        choice[g] = int(option[state])
        state = int(parent[state])
    return choice


def _best_first(values: np.ndarray) -> list[int]:
    """Option indices by decreasing value (ties keep index order)."""
    return sorted(range(len(values)), key=lambda k: -float(values[k]))


def _dual_multipliers(value: list[np.ndarray], coef: list[list[np.ndarray]], iterations: int = 300) -> np.ndarray:
    """Approximate minimiser over lambda >= 0 of the Lagrangian bound (rows scaled to limit 1): projected subgradient."""
    n_rows = len(coef)
    lam = np.zeros(n_rows)
    best_lam, best = lam.copy(), math.inf
    spread = max((float(v.max() - v.min()) for v in value), default=1.0) or 1.0
    for it in range(iterations):
        bound = float(lam.sum())
        used = np.zeros(n_rows)
        for g, v in enumerate(value):
            a = np.stack([c[g] for c in coef])
            red = v - lam @ a
            k = int(np.argmax(red))
            bound += float(red[k])
            used += a[:, k]
        if bound < best:
            best, best_lam = bound, lam.copy()
        sub = 1.0 - used  # d bound / d lambda
        norm = float(sub @ sub)
        if norm == 0.0:
            break
        lam = np.maximum(0.0, lam - (spread / math.sqrt(it + 1)) * sub / math.sqrt(norm))
    return best_lam


def _branch_and_bound(model: MckModel) -> list[int] | None:
    """Several rows: depth-first search with a Lagrangian upper bound and a room-left feasibility cut."""
    rows = model.rows
    scale = [max(abs(r.limit), max(float(np.abs(c).max()) for c in r.coef), 1e-300) for r in rows]
    coef = [[c / s for c in r.coef] for r, s in zip(rows, scale)]
    limit = [r.limit / s for r, s in zip(rows, scale)]
    lam_star = _dual_multipliers(model.value, [[c for c in cs] for cs in coef])
    lams = [np.zeros(len(rows)), lam_star] if lam_star.any() else [np.zeros(len(rows))]
    n = len(model.value)
    # Branch on the groups whose choice matters most first (largest spread of Lagrangian value).
    red = [model.value[g] - lam_star @ np.stack([c[g] for c in coef]) for g in range(n)]
    order = sorted(range(n), key=lambda g: -float(red[g].max() - red[g].min()))
    # Per group (in branching order): options best-first, their value and per-row costs as Python floats.
    opts = []
    for g in order:
        ks = _best_first(red[g])
        opts.append([(k, float(model.value[g][k]), tuple(float(c[g][k]) for c in coef)) for k in ks])
    suffix = [[0.0] * (n + 1) for _ in lams]  # sum over groups i.. of max_k (v - lam.a)
    for j, lam in enumerate(lams):
        for i in range(n - 1, -1, -1):
            g = order[i]
            suffix[j][i] = suffix[j][i + 1] + float(np.max(model.value[g] - lam @ np.stack([c[g] for c in coef])))
    rest_min = [[0.0] * (n + 1) for _ in rows]  # cheapest remaining cost per row
    for r in range(len(rows)):
        for i in range(n - 1, -1, -1):
            rest_min[r][i] = rest_min[r][i + 1] + float(coef[r][order[i]].min())
    lam_list = [tuple(float(x) for x in lam) for lam in lams]
    n_rows = len(rows)
    best_val = -math.inf
    best: list[int] | None = None
    picked = [0] * n
    nodes = 0

    def visit(i: int, used: tuple[float, ...], val: float) -> None:
        nonlocal best_val, best, nodes
        nodes += 1
        if nodes > MAX_NODES:
            raise SolverError(f"the built-in ILP solver gave up after {MAX_NODES} branch-and-bound nodes; "
                              "install coinor-cbc (--solver coin) for this instance.")
        if i == n:
            if val > best_val:
                best_val, best = val, list(picked)
            return
        for k, v, a in opts[i]:
            nu = tuple(used[r] + a[r] for r in range(n_rows))
            if any(nu[r] + rest_min[r][i + 1] > limit[r] for r in range(n_rows)):
                continue
            nv = val + v
            bound = min(nv + sum(lam[r] * (limit[r] - nu[r]) for r in range(n_rows)) + suffix[j][i + 1]
                        for j, lam in enumerate(lam_list))
            if bound <= best_val + 1e-12 * (1.0 + abs(best_val)):
                continue
            picked[i] = k
            visit(i + 1, nu, nv)

    visit(0, tuple(0.0 for _ in rows), 0.0)
    if best is None:
        return None
    choice = [0] * n
    for i, g in enumerate(order):
        choice[g] = best[i]
    return choice


__all__ = ["MAX_NODES", "solve_builtin"]
