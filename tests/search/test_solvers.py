"""The ILP solver chain: the built-in exact solver against brute force and CBC; probing and fallback.

Brute force (itertools.product, in tests/search/test_ilp.py) is the oracle on small instances;
on instances too big for it, the built-in solver's optimum must equal CBC's.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from test_ilp import check_against_oracle, random_costs, random_instance, two_layers

from codesign import solvers
from codesign.ilp import Budgets, InfeasibleBudgetError, feasible_range, solve, solve_table

pytestmark = pytest.mark.unit

needs_cbc = pytest.mark.skipif(solvers.probe("cbc")[0] is None, reason="PuLP's bundled CBC does not run here")


@pytest.fixture
def fresh_probes():
    """Forget cached probe results before and after (tests change what the probes see)."""
    solvers.probe.cache_clear()
    yield
    solvers.probe.cache_clear()


# ---- exactness ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(300))
def test_builtin_equals_brute_force(seed: int) -> None:
    check_against_oracle(*random_instance(seed), solver="builtin")


@pytest.mark.parametrize("seed", range(60))
def test_builtin_separate_wa_equals_brute_force(seed: int) -> None:
    check_against_oracle(*random_instance(1000 + seed, separate_wa=True), separate_wa=True, solver="builtin")


def mid_budgets(costs, cands, rng: np.random.Generator, kinds: tuple[str, ...]) -> Budgets:
    """Budgets somewhere inside each quantity's reachable range (often binding, sometimes infeasible jointly)."""
    reach = feasible_range(costs, cands)
    return Budgets(**{k: reach[k][0] + rng.uniform(0.1, 0.7) * (reach[k][1] - reach[k][0]) for k in kinds})


@needs_cbc
@pytest.mark.parametrize("seed", range(40))
def test_builtin_equals_cbc_on_larger_instances(seed: int) -> None:
    """15-30 layers, 3-4 widths, one to three budgets, ties: too big for brute force, compared with CBC."""
    rng = np.random.default_rng(5000 + seed)
    n = int(rng.integers(15, 31))
    costs = random_costs(rng, n)
    cands = [2, 4, 8] if seed % 2 else [2, 4, 6, 8]
    kinds = ("size_mbit", "latency_cycles", "energy_uj")[: 1 + seed % 3]
    budgets = mid_budgets(costs, cands, rng, kinds)
    ties = [[f"l{i}" for i in rng.choice(n, size=3, replace=False)]] if seed % 4 == 0 else []
    try:
        ref = solve(costs, cands, budgets, ties=ties, solver="cbc")
    except InfeasibleBudgetError:
        with pytest.raises(InfeasibleBudgetError):
            solve(costs, cands, budgets, ties=ties, solver="builtin")
        return
    got = solve(costs, cands, budgets, ties=ties, solver="builtin")
    assert got.solver == ("builtin (dp)" if len(kinds) == 1 else "builtin (branch and bound)")
    assert got.objective == pytest.approx(ref.objective, abs=1e-9)
    for kind, limit in budgets.active().items():
        assert getattr(got, kind) <= limit * (1 + 1e-9)


@needs_cbc
@pytest.mark.parametrize("seed", range(10))
def test_builtin_table_objective_equals_cbc(seed: int) -> None:
    """solve_table (HAWQ/ZeroQ form) with both solvers."""
    rng = np.random.default_rng(7000 + seed)
    costs = random_costs(rng, 12)
    table = {c.name: {b: float(rng.random() / b) for b in range(2, 9)} for c in costs}
    budgets = mid_budgets(costs, [2, 4, 8], rng, ("size_mbit", "latency_cycles"))
    try:
        ref = solve_table(costs, [2, 4, 8], budgets, table, solver="cbc")
    except InfeasibleBudgetError:
        return
    got = solve_table(costs, [2, 4, 8], budgets, table, solver="builtin")
    assert got.objective == pytest.approx(ref.objective, abs=1e-9)


@needs_cbc
def test_builtin_joint_infeasibility_message_equals_cbc() -> None:
    """Jointly infeasible budgets: the message minimises each row under the others, with either solver."""
    budgets = Budgets(size_mbit=0.006, latency_cycles=50)
    msgs = []
    for solver in ("cbc", "builtin"):
        with pytest.raises(InfeasibleBudgetError, match="jointly infeasible") as err:
            solve(two_layers(), [2, 4, 8], budgets, solver=solver)
        msgs.append(str(err.value))
    assert msgs[0] == msgs[1]


# ---- probing and the fallback chain -------------------------------------------------------------------
def foreign_binary(tmp_path: Path) -> Path:
    """An executable file the kernel cannot run (an ARM ELF header on this machine): Exec format error."""
    f = tmp_path / "cbc"
    f.write_bytes(b"\x7fELF\x01\x01\x01" + b"\0" * 9 + b"\x02\x00\x28\x00" + b"\0" * 40)  # ELF32, e_machine=ARM
    f.chmod(f.stat().st_mode | stat.S_IXUSR)
    return f


def test_foreign_bundled_cbc_falls_back(tmp_path, monkeypatch, fresh_probes) -> None:
    from pulp.apis import coin_api

    monkeypatch.setattr(coin_api, "pulp_cbc_path", str(foreign_binary(tmp_path)))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    path, why = solvers.probe("cbc")
    assert path is None and "does not run" in why
    assert solvers.resolve("auto") == "builtin"
    with pytest.raises(solvers.SolverError, match="cannot run"):
        solvers.resolve("cbc")
    with pytest.raises(solvers.SolverError, match="no `cbc` on PATH"):
        solvers.resolve("coin")
    costs = random_costs(np.random.default_rng(1), 5)
    res = solve(costs, [2, 8], Budgets(size_mbit=sum(feasible_range(costs, [2, 8])["size_mbit"]) / 2))
    assert res.solver == "builtin (dp)"


@needs_cbc
def test_system_cbc_on_path_is_used_when_the_bundled_one_fails(tmp_path, monkeypatch, fresh_probes) -> None:
    """A working ``cbc`` on PATH (here: the bundled binary linked under that name) is the second choice."""
    from pulp.apis import coin_api

    real = Path(coin_api.pulp_cbc_path).resolve()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(real, bindir / "cbc")
    monkeypatch.setattr(coin_api, "pulp_cbc_path", str(foreign_binary(tmp_path)))
    monkeypatch.setenv("PATH", str(bindir))
    assert solvers.resolve("auto") == "coin"
    costs = random_costs(np.random.default_rng(2), 5)
    res = solve(costs, [2, 8], Budgets(size_mbit=sum(feasible_range(costs, [2, 8])["size_mbit"]) / 2))
    assert res.solver == f"coin ({bindir / 'cbc'})"


def test_unknown_solver_is_a_user_error() -> None:
    with pytest.raises(solvers.SolverError, match="unknown ILP solver"):
        solvers.resolve("gurobi")


def test_pulp_api_has_no_deprecation_warnings(recwarn) -> None:
    """The PuLP 4.0-ready calls only (no PULP_CBC_CMD, no direct LpVariable construction)."""
    import warnings

    costs = random_costs(np.random.default_rng(4), 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        solve(costs, [2, 8], Budgets(size_mbit=1.0, latency_cycles=1e9))
