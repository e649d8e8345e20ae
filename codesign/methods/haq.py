"""HAQ baseline (Wang et al., "HAQ: Hardware-Aware Automated Quantization", CVPR 2019) in NumPy.

A DDPG agent walks the quantizable layers in model order and emits one continuous action
``a_t`` in [0, 1] per layer; the action maps to a width in ``[b_min - 0.5, b_max + 0.5]``,
rounded to the nearest candidate width. After the last layer the configuration is forced
into the budgets (below), quantized, and its accuracy is the episode's reward, given to every
transition of the episode. What is kept from the paper and its reference code:

* **Agent**: actor ``s -> 300 -> 300 -> 1`` (ReLU, ReLU, sigmoid) and critic
  ``[s, a] -> 300 -> 300 -> 1`` (ReLU, ReLU, linear; the paper's ``fc(s) + fc(a)`` first
  layer is the same map as one layer on the concatenation), Adam (actor 1e-4, critic 1e-3),
  soft target updates (tau 0.01), discount 1, replay memory of 128 episodes' transitions,
  batch 64, 20 warm-up episodes of uniform random actions, then truncated-normal exploration
  in [0, 1] around the actor's output with sigma 0.5 decaying by 0.99 per episode. One
  gradient step per stored transition (after warm-up). The rewards of a batch have a moving
  average (alpha 0.5) subtracted, as the reference code does.
* **State** (the paper's layer embedding): layer index, input channels, output channels,
  kernel size, stride, input feature-map size (H*W), number of weights, depthwise flag and
  the previous action; every column except the last is min-max scaled to [0, 1] over the
  layers. Weights and activations share one width (W = A, one action per layer): the OQA
  hardware table is indexed by one width, so HAQ's separate W/A steps and its W/A flag are
  dropped.
* **Hardware feedback**: the same OQA table and budgets as the OHQ search (size in Mbit;
  latency in cycles and energy in uJ when set). HAQ lowers widths sequentially until the
  configuration fits; here each step lowers, by one candidate step, the layer that sheds the
  most of the violated resources per bit lost (each resource measured relative to its
  current excess; ties go to the later layer, HAQ walks from the back). Because it only
  lowers widths, it needs the all-narrowest configuration to fit: otherwise
  ``InfeasibleBudgetError``. Size compares as whole bits, the other budgets to 1e-9
  relative, as in ``codesign.ilp``.
* **Reward**: ``0.1 * (acc - acc_float)`` with top-1 accuracies in percent, measured on a
  labelled validation subset of ``problem.train`` (500 images by default) with the
  fake-quant model of ``problem.quantize(bc)`` (the calibration every method shares).
  **No fine-tuning** (the paper fine-tunes briefly for its ImageNet rewards): this is the
  post-training quantization setting the OHQ comparison uses. Accuracies are cached per
  width tuple, so a repeated configuration costs nothing.

The best configuration seen (all are repaired, so all meet the budgets) is returned. All
randomness comes from ``np.random.default_rng(problem.seed)``: the same seed gives the same
result. NumPy only; the agent and its networks are :mod:`codesign.methods.ddpg`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codesign.budgets import UNITS, Budgets
from codesign.errors import CodesignError
from codesign.graph.ir import Conv2D, Graph
from codesign.ilp import InfeasibleBudgetError, from_hw_table
from codesign.methods.base import Method, MethodResult, Problem
from codesign.methods.ddpg import DdpgAgent
from codesign.quant.bitconfig import BitConfig
from codesign.quant.dyadic import check_bits

RewardFn = Callable[[dict[str, int]], float]


class HaqError(CodesignError):
    """HAQ cannot run on this problem (no labelled data, unsupported budget, bad settings)."""


# ---- environment pieces ----------------------------------------------------------------------
def layer_embedding(graph: Graph) -> np.ndarray:
    """HAQ's static per-layer features, min-max scaled to [0, 1] per column (constant -> 0).

    Columns: index, c_in, c_out, kernel size, stride, input H*W, #weights, depthwise flag.
    The agent appends the previous action.
    """
    rows = []
    for i, ly in enumerate(graph.quantizable()):
        in_shape = graph.in_shapes(ly)[0]
        w = ly.params["kernel"]
        if isinstance(ly, Conv2D):
            feats = [i, in_shape[-1], ly.filters, ly.kernel[0], ly.strides[0], in_shape[0] * in_shape[1],
                     w.size, float(ly.is_depthwise)]
        else:  # Dense
            fmap = int(np.prod(in_shape[:-1])) if len(in_shape) > 1 else 1
            feats = [i, w.shape[0], w.shape[1], 1, 0, fmap, w.size, 0.0]
        rows.append(feats)
    emb = np.asarray(rows, dtype=np.float64)
    lo, hi = emb.min(axis=0), emb.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(hi > lo, (emb - lo) / span, 0.0)


def action_to_index(action: float, candidates: Sequence[int]) -> int:
    """Action in [0, 1] -> index of the nearest candidate to ``b_min - 0.5 + a * (b_max - b_min + 1)``.

    Ties go to the narrower candidate.
    """
    lo, hi = candidates[0], candidates[-1]
    b = lo - 0.5 + float(np.clip(action, 0.0, 1.0)) * (hi - lo + 1)
    b = min(max(b, lo), hi)
    dist = [abs(c - b) for c in candidates]
    return int(np.argmin(dist))


class BudgetEnforcer:
    """Per-(layer, candidate) costs from the hardware table and the budgets they must meet."""

    def __init__(self, problem: Problem, candidates: Sequence[int]) -> None:
        graph, table, budgets = problem.graph, problem.table, problem.budgets
        if budgets.onchip_kbit is not None:
            raise HaqError("the HAQ baseline supports size, latency and energy budgets, not an on-chip memory "
                           "budget (the hardware table has no on-chip figure); drop the on-chip budget for HAQ.")
        self.candidates = list(candidates)
        table.check_model(graph, self.candidates)
        self.budgets = budgets
        self.layer_costs = from_hw_table(graph, table, {ly.name: 0.0 for ly in graph.quantizable()}, self.candidates)
        # Per (layer, candidate) cost of each active budget, in budget units: what lowering one
        # layer by one step sheds (the repair's score). Totals come from Budgets.totals.
        self.costs: dict[str, np.ndarray] = {}
        for kind in budgets.active():
            self.costs[kind] = np.array([[budgets.totals([c], {c.name: b})[kind] for b in self.candidates]
                                         for c in self.layer_costs], dtype=np.float64)
        self._check_floor(budgets)

    def totals(self, idx: Sequence[int]) -> dict[str, float | None]:
        """Size (Mbit), cycles, energy (and on-chip memory) of the configuration with candidate indices ``idx``."""
        widths = {c.name: self.candidates[i] for c, i in zip(self.layer_costs, idx)}
        return self.budgets.totals(self.layer_costs, widths)

    def excess(self, idx: Sequence[int]) -> dict[str, float]:
        """Violated budgets and by how much (empty when the configuration fits)."""
        return self.budgets.excess(self.totals(idx))

    def _check_floor(self, budgets: Budgets) -> None:
        low = [0] * len(self.layer_costs)
        over = self.excess(low)
        if not over:
            return
        high = [len(self.candidates) - 1] * len(low)
        parts = []
        for kind in over:
            lo, hi = self.totals(low)[kind], self.totals(high)[kind]
            parts.append(f"{kind.split('_')[0]} budget {getattr(budgets, kind):.6g} {UNITS[kind]} is below the "
                         f"all-{self.candidates[0]}-bit configuration's {lo:.6g} {UNITS[kind]} "
                         f"(all-{self.candidates[-1]}-bit: {hi:.6g})")
        raise InfeasibleBudgetError(
            "HAQ cannot meet the budgets: " + "; ".join(parts) + ". HAQ only lowers widths to meet a budget, "
            "so the narrowest configuration must fit; raise the budget or add a narrower candidate width."
        )

    def enforce(self, idx: Sequence[int]) -> tuple[list[int], int]:
        """Lower widths one candidate step at a time until every budget holds; returns (idx, steps)."""
        cur = [int(i) for i in idx]
        steps = 0
        while over := self.excess(cur):
            best, best_score = -1, -math.inf
            for layer in range(len(cur) - 1, -1, -1):  # from the back, as HAQ; ties keep the later layer
                j = cur[layer]
                if j == 0:
                    continue
                bits_lost = self.candidates[j] - self.candidates[j - 1]
                shed = sum((self.costs[k][layer, j] - self.costs[k][layer, j - 1]) / over[k] for k in over)
                score = shed / bits_lost
                if score > best_score:
                    best, best_score = layer, score
            if best < 0:  # cannot happen after _check_floor; kept as a guard
                raise InfeasibleBudgetError("HAQ: no width can be lowered further and a budget is still violated.")
            cur[best] -= 1
            steps += 1
        return cur, steps


# ---- the method -------------------------------------------------------------------------------
class HaqMethod(Method):
    """HAQ: DDPG over per-layer widths with hardware-table budgets and an accuracy reward.

    ``MethodResult.info``: ``episodes``, ``warmup``, ``best_reward``, ``best_episode``,
    ``best_accuracy`` and ``float_accuracy`` (fractions on the validation subset; ``None``
    with a ``reward_fn``), ``reward_curve`` and ``accuracy_curve`` (per episode),
    ``evaluations`` (distinct configurations, i.e. cache misses), ``seconds_per_evaluation``,
    ``repair_steps`` (width reductions the budget enforcement made per episode),
    ``policy_widths`` (the final actor without noise, after enforcement; not evaluated),
    ``final_sigma``, ``val_images``, ``fine_tuning`` (always False), ``reward`` (description),
    and the chosen configuration's ``size_mbit``, ``latency_cycles`` and ``energy_uj``
    (from the same table). The validation images are drawn from ``problem.train``, the data
    the float model was trained on, as HAQ draws its reward set from the ImageNet train split.
    """

    name = "haq"
    stochastic = True

    def __init__(self, episodes: int = 120, warmup: int = 20, hidden: Sequence[int] = (300, 300),
                 lr_actor: float = 1e-4, lr_critic: float = 1e-3, tau: float = 0.01, discount: float = 1.0,
                 batch_size: int = 64, memory_episodes: int = 128, sigma: float = 0.5, sigma_decay: float = 0.99,
                 moving_alpha: float = 0.5, val_images: int = 500, reward_scale: float = 0.1,
                 eval_batch: int = 50, reward_fn: RewardFn | None = None) -> None:
        """All of HAQ's hyper-parameters; ``reward_fn`` (widths -> reward) replaces the accuracy reward.

        ``memory_episodes``: replay capacity in episodes (transitions = episodes x layers), as
        HAQ's ``rmsize``. ``val_images``: labelled images taken from ``problem.train``.
        """
        if episodes < 1 or warmup < 0 or batch_size < 1 or memory_episodes < 1 or val_images < 1:
            raise HaqError("HAQ needs episodes >= 1, warmup >= 0, batch_size >= 1, memory_episodes >= 1 and "
                           f"val_images >= 1 (got {episodes}, {warmup}, {batch_size}, {memory_episodes}, {val_images}).")
        if not (0.0 < tau <= 1.0 and sigma >= 0.0 and 0.0 < sigma_decay <= 1.0):
            raise HaqError(f"HAQ needs 0 < tau <= 1, sigma >= 0 and 0 < sigma_decay <= 1 (got {tau}, {sigma}, {sigma_decay}).")
        self.episodes, self.warmup = int(episodes), int(warmup)
        self.hidden = tuple(int(h) for h in hidden)
        self.lr_actor, self.lr_critic, self.tau, self.discount = lr_actor, lr_critic, tau, discount
        self.batch_size, self.memory_episodes = int(batch_size), int(memory_episodes)
        self.sigma, self.sigma_decay, self.moving_alpha = sigma, sigma_decay, moving_alpha
        self.val_images, self.reward_scale, self.eval_batch = int(val_images), reward_scale, int(eval_batch)
        self.reward_fn = reward_fn

    # -- reward -------------------------------------------------------------------------------
    def _validation(self, problem: Problem, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if problem.train is None:
            raise HaqError("HAQ needs labelled data for its accuracy reward, but the problem has none "
                           "(Problem.train is None); give it a labelled subset of the training data, "
                           "e.g. from codesign.datasets.load_dataset('fashion-mnist', 'train').")
        x, y = problem.train
        x, y = np.asarray(x), np.asarray(y).reshape(-1)
        if len(x) == 0 or len(x) != len(y):
            raise HaqError(f"HAQ's labelled data is empty or inconsistent ({len(x)} images, {len(y)} labels).")
        n = min(self.val_images, len(x))
        idx = np.sort(rng.choice(len(x), n, replace=False))
        return x[idx], y[idx]

    def _scorer(self, problem: Problem, rng: np.random.Generator
                ) -> tuple[Callable[[dict[str, int]], tuple[float, float | None]], int, float | None]:
        """``(widths -> (reward, accuracy or None), validation images, float accuracy or None)``.

        The reward is ``reward_fn``'s, else the accuracy drop on held-out images.
        """
        from codesign.graph.execute import run_float
        from codesign.quant.fakequant import FakeQuantModel

        reward_fn = self.reward_fn
        if reward_fn is not None:
            return (lambda wmap: (float(reward_fn(wmap)), None)), 0, None
        x_val, y_val = self._validation(problem, rng)
        acc_float = self._accuracy(lambda xb: run_float(problem.graph, xb), x_val, y_val)

        def score(wmap: dict[str, int]) -> tuple[float, float | None]:
            qg = problem.quantize(BitConfig.from_widths(problem.graph, wmap))
            acc = self._accuracy(FakeQuantModel(qg).predict, x_val, y_val)
            return self.reward_scale * 100.0 * (acc - acc_float), acc

        return score, len(x_val), acc_float

    def _accuracy(self, predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
        hits = 0
        for i in range(0, len(x), self.eval_batch):
            out = predict(x[i:i + self.eval_batch])
            hits += int((np.argmax(out.reshape(len(out), -1), axis=1) == y[i:i + self.eval_batch]).sum())
        return hits / len(x)

    # -- search -------------------------------------------------------------------------------
    def _search(self, problem: Problem) -> MethodResult:
        rng = np.random.default_rng(problem.seed)
        cands = sorted({check_bits(b, "candidate width") for b in problem.candidates})
        if not cands:
            raise HaqError("the candidate set of widths is empty; give at least one width in 2..8.")
        names = problem.layers
        n_layers = len(names)
        if n_layers == 0:
            raise HaqError(f"model {problem.graph.name!r} has no quantizable layers.")
        enforcer = BudgetEnforcer(problem, cands)

        score, n_val, acc_float = self._scorer(problem, rng)
        cache: dict[tuple[int, ...], tuple[float, float | None]] = {}  # widths -> (reward, accuracy)
        eval_seconds: list[float] = []

        def reward_of(widths: tuple[int, ...]) -> tuple[float, float | None]:
            if widths in cache:
                return cache[widths]
            t0 = time.perf_counter()
            out = score(dict(zip(names, widths)))
            eval_seconds.append(time.perf_counter() - t0)
            cache[widths] = out
            return out

        emb = layer_embedding(problem.graph)
        n_states = emb.shape[1] + 1
        agent = DdpgAgent(n_states, rng, self.hidden, self.lr_actor, self.lr_critic, self.tau, self.discount,
                          self.batch_size, self.memory_episodes * n_layers, self.moving_alpha)

        def state(t: int, prev: float) -> np.ndarray:
            return np.append(emb[t], prev)

        best: tuple[float, tuple[int, ...], int] | None = None  # reward, widths, episode
        curve: list[float] = []
        acc_curve: list[float | None] = []
        repair_steps: list[int] = []
        sigma = self.sigma
        for ep in range(self.episodes):
            warm = ep < self.warmup
            if not warm:
                sigma = self.sigma * self.sigma_decay ** (ep - self.warmup)
            prev = 0.0
            states, actions = [], []
            for t in range(n_layers):
                s = state(t, prev)
                a = float(rng.uniform(0.0, 1.0)) if warm else agent.explore(s, sigma)
                states.append(s)
                actions.append(a)
                prev = a
            idx, steps = enforcer.enforce([action_to_index(a, cands) for a in actions])
            widths = tuple(cands[i] for i in idx)
            reward, acc = reward_of(widths)
            curve.append(reward)
            acc_curve.append(acc)
            repair_steps.append(steps)
            if best is None or reward > best[0]:
                best = (reward, widths, ep)
            for t in range(n_layers):
                last = t == n_layers - 1
                s2 = states[t] if last else states[t + 1]
                agent.memory.add(states[t], actions[t], reward, s2, last)
                if not warm:
                    agent.update()
            if problem.progress and (ep % 10 == 0 or ep == self.episodes - 1):
                print(f"haq: episode {ep + 1}/{self.episodes} reward {reward:+.4f} best {best[0]:+.4f} "
                      f"sigma {0.0 if warm else sigma:.3f} evals {len(eval_seconds)}", flush=True)

        if best is None:  # episodes >= 1 is checked in __init__
            raise HaqError("HAQ ran no episode.")
        best_reward, best_widths, best_ep = best
        prev, policy_idx = 0.0, []
        for t in range(n_layers):  # the trained actor without noise (reported, not evaluated)
            prev = agent.policy(state(t, prev))
            policy_idx.append(action_to_index(prev, cands))
        policy_widths = [cands[i] for i in enforcer.enforce(policy_idx)[0]]
        wmap = dict(zip(names, best_widths))
        bc = BitConfig.from_widths(problem.graph, wmap)
        bc.meta.update({"method": self.name, "seed": problem.seed})
        totals = enforcer.totals([cands.index(b) for b in best_widths])
        info: dict[str, Any] = {
            "episodes": self.episodes,
            "warmup": self.warmup,
            "best_reward": best_reward,
            "best_episode": best_ep,
            "best_accuracy": cache[best_widths][1],
            "float_accuracy": acc_float,
            "reward_curve": curve,
            "accuracy_curve": acc_curve if self.reward_fn is None else [],
            "evaluations": len(eval_seconds),
            "seconds_per_evaluation": float(np.mean(eval_seconds)) if eval_seconds else 0.0,
            "repair_steps": repair_steps,
            "policy_widths": dict(zip(names, policy_widths)),
            "final_sigma": sigma,
            "val_images": n_val,
            "fine_tuning": False,
            "reward": "custom reward_fn" if self.reward_fn is not None else
                      f"{self.reward_scale} * (top-1 % PTQ - top-1 % float) on {n_val} train images, no fine-tuning",
            "size_mbit": totals["size_mbit"],
            "latency_cycles": totals["latency_cycles"],
            "energy_uj": totals["energy_uj"],
        }
        data_used = "none (reward_fn)" if self.reward_fn is not None else f"train {n_val} img (labels)"
        return MethodResult(self.name, bc, 0.0, data_used, info=info)


def plot_rewards(result: MethodResult, path: str | Path) -> Path:
    """Save the per-episode reward and the running best of a HAQ result as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = np.asarray(result.info["reward_curve"], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(curve) + 1), curve, ".", ms=3, label="episode reward")
    ax.plot(np.arange(1, len(curve) + 1), np.maximum.accumulate(curve), "-", label="best so far")
    warm = int(result.info.get("warmup", 0))
    if 0 < warm < len(curve):
        ax.axvline(warm + 0.5, color="grey", ls=":", label="end of warm-up")
    ax.set_xlabel("episode")
    ax.set_ylabel("reward")
    ax.legend(loc="lower right")
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


__all__ = ["BudgetEnforcer", "HaqError", "HaqMethod", "action_to_index", "layer_embedding", "plot_rewards"]
