"""HAQ baseline: NumPy DDPG (gradients, learning), budget enforcement, reward plumbing, seeding.

The hardware tables here are fixtures (cycles proportional to MACs x bits); the labelled data
is random: these tests check the machinery, not HAQ's accuracy on a real model.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from ir_models import Builder, tiny_resnet
from method_helpers import brute_force

from codesign.errors import CodesignError
from codesign.graph.execute import run_float
from codesign.graph.ir import Graph
from codesign.hwtable import HwRow, HwTable
from codesign.ilp import Budgets, InfeasibleBudgetError, ratio_to_size
from codesign.methods.base import Problem
from codesign.methods.ddpg import Mlp, truncated_normal
from codesign.methods.haq import (
    BudgetEnforcer,
    HaqError,
    HaqMethod,
    action_to_index,
    layer_embedding,
    plot_rewards,
)
from codesign.optim import Adam

pytestmark = pytest.mark.unit


def chain_model() -> Graph:
    """Four quantizable layers: conv, strided conv, depthwise conv, dense."""
    b = Builder((8, 8, 3), 0)
    x = b.cbr("input", "c1", 8)
    x = b.cbr(x, "c2", 16, s=2)
    x = b.cbr(x, "c3", 16, groups=16)
    x = b.gpool(x, "gap")
    x = b.dense(x, "fc", 10)
    return b.graph("chain", b.softmax(x, "softmax"))


def fixture_table(g: Graph, bits: tuple[int, ...] = (2, 4, 6, 8)) -> HwTable:
    """Cycles ~ MACs x bits, energy ~ cycles; overheads make the costs not proportional to size."""
    rows = []
    for ly in g.quantizable():
        macs = ly.macs(g.in_shapes(ly))
        for b in bits:
            c = macs * b // 64 + 50
            rows.append(HwRow(ly.name, b, 10, c, 5, 5, c + 20, (c + 20) / 1e5, c * 1e-4 + 0.01 * b, macs, 0.9))
    return HwTable(rows, {"model": g.name})


def problem(g: Graph, cands: list[int], budgets: Budgets, seed: int = 0,
            train: tuple[np.ndarray, np.ndarray] | None = None) -> Problem:
    shape = g.layers[0].output_shape
    distilled = np.random.default_rng(99).uniform(0, 1, (8, *shape)).astype(np.float32)
    return Problem(g, fixture_table(g, tuple(cands)), cands, budgets, distilled, train=train, seed=seed)


def totals(p: Problem, widths: dict[str, int]) -> tuple[int, float, float]:
    """Size in bits, cycles and energy of a configuration, straight from the graph and table."""
    bits = sum(int(p.graph[n].params["kernel"].size) * b for n, b in widths.items())
    cyc = sum(p.table.get(n, b).cycles_total for n, b in widths.items())
    en = sum(p.table.get(n, b).energy_uj for n, b in widths.items())
    return bits, cyc, en


# ---- the networks ---------------------------------------------------------------------------
def _numeric_grad(loss, arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of ``loss()`` with respect to ``arr`` (perturbed in place, restored)."""
    num = np.zeros_like(arr)
    for i in np.ndindex(arr.shape):
        old = arr[i]
        arr[i] = old + eps
        up = loss()
        arr[i] = old - eps
        down = loss()
        arr[i] = old
        num[i] = (up - down) / (2 * eps)
    return num


@pytest.mark.parametrize("out_act,n_in", [("sigmoid", 5), ("linear", 6)])  # actor, critic
def test_mlp_gradients_match_finite_differences(out_act: str, n_in: int) -> None:
    rng = np.random.default_rng(1)
    net = Mlp([n_in, 7, 6, 1], out_act, rng, init_w=0.5)
    x = rng.normal(size=(4, n_in))
    weights = rng.normal(size=(4, 1))

    def loss() -> float:
        return float((net(x) * weights).sum())

    _, acts = net.forward(x)
    grads, g_in = net.backward(acts, weights)
    for p, g in zip(net.params, grads):
        np.testing.assert_allclose(g, _numeric_grad(loss, p), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(g_in, _numeric_grad(loss, x), rtol=1e-5, atol=1e-8)


def test_adam_minimises_a_quadratic_and_soft_update_interpolates() -> None:
    p = [np.array([3.0, -2.0])]
    opt = Adam(p, lr=0.1)
    for _ in range(500):
        opt.step(p, [2.0 * p[0]])
    assert np.abs(p[0]).max() < 1e-2
    rng = np.random.default_rng(0)
    a, b = Mlp([2, 3, 1], "linear", rng), Mlp([2, 3, 1], "linear", rng)
    target = a.copy()
    target.soft_update(b, 0.25)
    for t, pa, pb in zip(target.params, a.params, b.params):
        np.testing.assert_allclose(t, 0.75 * pa + 0.25 * pb)


def test_truncated_normal_and_action_mapping() -> None:
    rng = np.random.default_rng(0)
    xs = np.array([truncated_normal(rng, 0.05, 0.5) for _ in range(2000)])
    assert xs.min() >= 0.0 and xs.max() <= 1.0
    assert abs(np.mean([truncated_normal(rng, 0.4, 0.01) for _ in range(200)]) - 0.4) < 0.005
    cands = [2, 3, 4, 5, 6, 7, 8]
    assert action_to_index(0.0, cands) == 0 and action_to_index(1.0, cands) == 6
    counts = np.bincount([action_to_index(a, cands) for a in np.linspace(0, 1, 7001)], minlength=7)
    assert counts.min() > 900 and counts.max() < 1100  # each width gets 1/7 of [0, 1]
    assert [action_to_index(a, [4, 8]) for a in (0.0, 0.49, 0.51, 1.0)] == [0, 0, 1, 1]


def test_layer_embedding_is_scaled_and_flags_depthwise() -> None:
    g = chain_model()
    emb = layer_embedding(g)
    assert emb.shape == (4, 8) and emb.min() >= 0.0 and emb.max() <= 1.0
    np.testing.assert_allclose(emb[:, 0], [0, 1 / 3, 2 / 3, 1])
    assert list(emb[:, 7]) == [0.0, 0.0, 1.0, 0.0]  # only c3 is depthwise


# ---- learning ---------------------------------------------------------------------------------
def test_ddpg_finds_the_brute_force_optimum_of_a_toy_reward() -> None:
    g = chain_model()
    cands = [2, 4, 6, 8]
    p = problem(g, cands, Budgets(size_mbit=ratio_to_size(g, 1.0, cands)))
    target = dict(zip(p.layers, [8, 2, 6, 4]))
    calls: list[tuple[int, ...]] = []

    def reward(w: dict[str, int]) -> float:
        calls.append(tuple(w.values()))
        return -sum(abs(w[n] - target[n]) for n in p.layers) / 2.0

    best_r, best_w = brute_force(p, reward)
    calls.clear()
    res = HaqMethod(episodes=150, reward_fn=reward).search(p)
    chosen = {n: res.bitconfig[n].w_bits for n in p.layers}
    assert chosen == best_w and res.info["best_reward"] == best_r
    assert reward(res.info["policy_widths"]) == best_r  # the noise-free actor has learnt it too
    curve = res.info["reward_curve"]
    assert np.mean(curve[-20:]) > np.mean(curve[:20]) + 2.0  # warm-up (random) vs the end
    # the cache: one reward call per distinct configuration
    assert res.info["evaluations"] == len(set(calls[:-1])) == len(calls) - 1 < 150
    assert res.data_used == "none (reward_fn)" and res.search_seconds > 0


# ---- budgets ----------------------------------------------------------------------------------
def test_budget_enforcement_always_meets_size_latency_and_energy() -> None:
    g = tiny_resnet()
    cands = [2, 4, 6, 8]
    p0 = problem(g, cands, Budgets())
    hi = totals(p0, dict.fromkeys(p0.layers, 8))
    lo = totals(p0, dict.fromkeys(p0.layers, 2))
    rng = np.random.default_rng(0)
    for kinds in (("size",), ("size", "latency"), ("size", "latency", "energy"), ("energy",)):
        for _ in range(5):
            f = rng.uniform(0.05, 0.7, 3)
            kw = {"size_mbit": (lo[0] + f[0] * (hi[0] - lo[0])) / 1e6,
                  "latency_cycles": lo[1] + f[1] * (hi[1] - lo[1]),
                  "energy_uj": lo[2] + f[2] * (hi[2] - lo[2])}
            names = {"size": "size_mbit", "latency": "latency_cycles", "energy": "energy_uj"}
            budgets = Budgets(**{names[k]: kw[names[k]] for k in kinds})
            p = problem(g, cands, budgets)
            enf = BudgetEnforcer(p, cands)
            for _ in range(20):
                idx, _steps = enf.enforce(rng.integers(0, 4, len(p.layers)))
                assert not enf.excess(idx)
            # the method: a reward that wants every layer wide makes every budget bind
            res = HaqMethod(episodes=6, warmup=3, hidden=(16, 16), reward_fn=lambda w: float(sum(w.values()))).search(p)
            bits, cyc, en = totals(p, {n: res.bitconfig[n].w_bits for n in p.layers})
            assert res.bitconfig.size_mbit(g) == pytest.approx(bits / 1e6)
            assert budgets.size_mbit is None or bits <= budgets.size_mbit * 1e6 + 1e-6
            assert budgets.latency_cycles is None or cyc <= budgets.latency_cycles * (1 + 1e-9)
            assert budgets.energy_uj is None or en <= budgets.energy_uj * (1 + 1e-9)
            assert res.info["size_mbit"] == pytest.approx(bits / 1e6)


def test_enforcement_lowers_only_what_is_needed() -> None:
    g = chain_model()
    cands = [4, 8]
    budget = ratio_to_size(g, 1.0, cands)
    enf = BudgetEnforcer(problem(g, cands, Budgets(size_mbit=budget)), cands)
    assert enf.enforce([1, 1, 1, 1]) == ([1, 1, 1, 1], 0)  # already fits: untouched
    n = [int(ly.params["kernel"].size) for ly in g.quantizable()]
    # budget one bit short of all-8: the cheapest single step that fixes it is taken
    enf = BudgetEnforcer(problem(g, cands, Budgets(size_mbit=(8 * sum(n) - 1) / 1e6)), cands)
    idx, steps = enf.enforce([1, 1, 1, 1])
    assert steps == 1 and sum(idx) == 3


def test_infeasible_budgets_raise() -> None:
    g = chain_model()
    cands = [4, 8]
    size_lo = ratio_to_size(g, 0.0, cands)
    with pytest.raises(InfeasibleBudgetError, match="size budget"):
        HaqMethod(episodes=2, reward_fn=lambda w: 0.0).search(problem(g, cands, Budgets(size_mbit=size_lo * 0.99)))
    p = problem(g, cands, Budgets())
    lat_lo = totals(p, dict.fromkeys(p.layers, 4))[1]
    with pytest.raises(InfeasibleBudgetError, match="latency budget"):
        HaqMethod(episodes=2, reward_fn=lambda w: 0.0).search(problem(g, cands, Budgets(latency_cycles=lat_lo - 1)))
    # exactly the all-narrowest budget is feasible
    res = HaqMethod(episodes=2, warmup=2, reward_fn=lambda w: 0.0).search(problem(g, cands, Budgets(size_mbit=size_lo)))
    assert all(res.bitconfig[n].w_bits == 4 for n in p.layers)
    with pytest.raises(HaqError, match="on-chip"):
        HaqMethod(episodes=2, reward_fn=lambda w: 0.0).search(problem(g, cands, Budgets(onchip_kbit=1e9)))


# ---- the accuracy reward, data and seeding -------------------------------------------------------
def labelled(g: Graph, n: int = 48, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Random images labelled by the float model, after centring its logits over the images.

    A random-weight net predicts one class for almost every random image (the bias and the
    global pooling dominate), which would make every reward equal: moving the mean logit
    into the bias spreads the predictions, so the quantized accuracy depends on the widths.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, *g.layers[0].output_shape)).astype(np.float32)
    logits = run_float(g, x, collect=True)["fc"]
    g["fc"].params["bias"] = (g["fc"].params["bias"] - logits.mean(axis=0)).astype(np.float32)
    return x, np.argmax(run_float(g, x), axis=1)


def test_accuracy_reward_is_deterministic_under_seed() -> None:
    g = tiny_resnet()
    cands = [2, 4, 8]
    budgets = Budgets(size_mbit=ratio_to_size(g, 0.5, cands))
    train = labelled(g)
    m = HaqMethod(episodes=8, warmup=4, hidden=(32, 32), batch_size=16, val_images=40)
    a = m.search(problem(g, cands, budgets, seed=5, train=train))
    b = m.search(problem(g, cands, budgets, seed=5, train=train))
    c = m.search(problem(g, cands, budgets, seed=6, train=train))
    assert a.bitconfig.layers == b.bitconfig.layers
    assert a.info["reward_curve"] == b.info["reward_curve"] and a.info["policy_widths"] == b.info["policy_widths"]
    assert a.info["reward_curve"] != c.info["reward_curve"]
    assert len(set(a.info["reward_curve"])) > 1  # the reward sees the widths
    info = a.info
    assert a.data_used == "train 40 img (labels)" and info["val_images"] == 40 and info["fine_tuning"] is False
    assert 0.0 <= info["best_accuracy"] <= 1.0 and 0.0 <= info["float_accuracy"] <= 1.0
    assert info["best_reward"] == pytest.approx(0.1 * 100 * (info["best_accuracy"] - info["float_accuracy"]))
    assert info["best_reward"] == max(info["reward_curve"]) and len(info["reward_curve"]) == info["episodes"] == 8
    assert 1 <= info["evaluations"] <= 8 and info["seconds_per_evaluation"] > 0
    assert a.bitconfig.size_mbit(g) <= budgets.size_mbit + 1e-12 and a.bitconfig.meta["method"] == "haq"


def test_missing_labelled_data_is_a_clear_user_error() -> None:
    g = chain_model()
    with pytest.raises(HaqError, match="labelled data") as err:
        HaqMethod(episodes=2).search(problem(g, [4, 8], Budgets()))
    assert isinstance(err.value, CodesignError)
    with pytest.raises(CodesignError, match="episodes"):
        HaqMethod(episodes=0)


def test_plot_rewards_writes_a_png(tmp_path) -> None:
    g = chain_model()
    res = HaqMethod(episodes=4, warmup=2, hidden=(8, 8), reward_fn=lambda w: float(w["c1"])).search(
        problem(g, [4, 8], Budgets()))
    path = plot_rewards(res, tmp_path / "haq.png")
    assert path.stat().st_size > 1000


def test_brute_force_helper_respects_budgets() -> None:
    g = chain_model()
    cands = [4, 8]
    p = problem(g, cands, Budgets(size_mbit=ratio_to_size(g, 0.5, cands)))
    r, w = brute_force(p, lambda w: float(sum(w.values())))
    enf = BudgetEnforcer(p, cands)
    feasible = [i for i in itertools.product(range(2), repeat=4) if not enf.excess(list(i))]
    assert r == max(sum(cands[j] for j in i) for i in feasible)
    assert totals(p, w)[0] <= p.budgets.size_mbit * 1e6 + 1e-6
