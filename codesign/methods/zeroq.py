"""ZeroQ-style mixed precision (Cai et al., CVPR 2020): KL sensitivity on distilled data +
Pareto-frontier dynamic programming.

**Sensitivity** (ZeroQ Eq. 3, data-free). With ``x_r`` the distilled images (here the
problem's BN-statistics images, the same ZeroQ/OHQ distillation) and the reference model at
8 bit, for every quantizable layer ``i`` and candidate width ``b``:

    S_i(b) = (1/N) sum_x KL( softmax(M_8(x)) || softmax(M_8 with only layer i's weights at b (x)) )

Only layer ``i``'s *weights* change (per-channel symmetric quantization of its BN-folded
kernel at ``b``, the quantizer the deployment uses); activation scales, the other layers and
the 8-bit activations stay as in the reference, exactly as ``quantize_model`` would produce
with layer i at (W=b, A=8). ``S_i(8) = 0``. Only the nodes from layer ``i`` onward are
re-run (the prefix comes from one traced run per batch, the MQE trick), so the whole table
costs ``L * |B|`` suffix runs. (ZeroQ's reference is the full-precision model; the brief of
this repository, like OHQ's MQE, measures against the 8-bit model.)

**Allocation** (ZeroQ Sec. 3.3, "Pareto frontier"). ZeroQ assumes the layers' perturbations
are additive and, for every reachable model size, finds the configuration with the least
total sensitivity ``sum_i S_i(b_i)`` by dynamic programming over the layers: the set of
(size, sensitivity) pairs of the first ``k`` layers is extended by layer ``k+1``'s options
and pruned to its Pareto frontier (no kept point is both larger and more sensitive than
another). The frontier is exact; the chosen point is the least-sensitive one whose size fits
the size budget (sizes are compared in whole bits, as the OHQ ILP does). When a latency,
energy or on-chip budget is also set the DP's one-dimensional frontier no longer applies,
and the same objective is minimised by the ILP (:func:`codesign.ilp.solve_table`) under all
budgets. The deployed configuration is W = A = ``b_i`` (what the hardware table prices).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from codesign import ui
from codesign.budgets import size_limit_bits
from codesign.graph.ir import Conv2D, Dense, Graph
from codesign.ilp import InfeasibleBudgetError, check_budgets, solve_table
from codesign.methods._common import (
    budget_report,
    calibration,
    hw_budgets_active,
    layer_costs,
    to_bitconfig,
)
from codesign.methods.base import Method, MethodResult, Problem
from codesign.quant.bitconfig import BitConfig
from codesign.quant.dyadic import Act
from codesign.quant.gptq import LayerGram
from codesign.quant.qgraph import QGraph


# ---- sensitivity -----------------------------------------------------------------------------
def substitute_width(qg: QGraph, folded: Graph, name: str, bits: int, weight_clip: str = "max",
                     gram: LayerGram | None = None) -> QGraph:
    """``qg`` with GEMM node ``name`` re-derived at ``bits`` weight bits, every tensor scale kept.

    ``folded`` is the BN-folded float graph (``codesign.quant.fold.fold_batchnorm``). Equal to
    quantizing the model with that layer at (W=bits, A=its current a_bits) and the same
    calibration, without re-running the calibration. ``gram`` (the layer's input Gram matrix,
    ``codesign.quant.gptq.input_gram``) selects GPTQ rounding, used below 8 bit as
    ``quantize_model(..., weight_round="gptq")`` does; ``None``: round to nearest.
    """
    from codesign.quant.ops.gemm import gemm_node as _gemm_node

    layer = folded[name]
    if not isinstance(layer, (Conv2D, Dense)):
        raise TypeError(f"{name!r} is not a Conv2D/Dense layer")
    node = qg.node(name)
    x, y = qg.tensors[node.inputs[0]], qg.tensors[node.output]
    new = _gemm_node(layer, x, y, bits, Act(int(node.attrs["act"])), y.name, weight_clip, gram)
    nodes = [replace(n, params=new.params, attrs={**n.attrs, "w_bits": bits}) if n.name == name else n
             for n in qg.nodes]
    return replace(qg, nodes=nodes)


def kl_sensitivity_table(qg8: QGraph, folded: Graph, x: np.ndarray, widths: Sequence[int],
                         weight_clip: str = "max", engine: str = "fakequant", batch_size: int = 16,
                         progress: bool = False, grams: Mapping[str, LayerGram] | None = None
                         ) -> dict[str, dict[int, float]]:
    """``S[layer][b]``: mean KL of the 8-bit model's output vs. the model with only that layer's weights at ``b``.

    ``grams``: per-layer input Gram matrices when weights are rounded by GPTQ (see
    :func:`substitute_width`).
    """
    from codesign.mqe import _op_table, kl_divergence
    from codesign.quant.golden import run_nodes, tensors_before

    table = _op_table(qg8, engine)
    gemms = [(i, n.name) for i, n in enumerate(qg8.nodes) if n.is_gemm]
    low = sorted({int(b) for b in widths if int(b) != 8})
    grams = grams or {}
    variants = {(name, b): substitute_width(qg8, folded, name, b, weight_clip, grams.get(name))
                for _i, name in gemms for b in low}
    totals = {key: 0.0 for key in variants}
    xq_all = qg8.quantize_input(x)
    n_batches = -(-len(x) // batch_size)
    bar = ui.progress(n_batches * len(variants), "ZeroQ KL", disable=not progress)
    for s in range(0, len(x), batch_size):
        xq = xq_all[s:s + batch_size]
        base_out, tr = run_nodes(qg8, xq, table, trace=True)
        base = qg8.dequantize_output(base_out)
        for i, name in gemms:
            before = tensors_before(qg8, tr, xq, i)
            for b in low:
                qv = variants[(name, b)]
                q_out, _ = run_nodes(qv, None, _op_table(qv, engine), start=i, tensors=before)
                totals[(name, b)] += float(kl_divergence(base, qv.dequantize_output(q_out)).sum())
                bar.update(1)
    bar.close()
    out: dict[str, dict[int, float]] = {}
    for _i, name in gemms:
        out[name] = {int(b): (0.0 if int(b) == 8 else totals[(name, int(b))] / len(x)) for b in widths}
    return out


# ---- Pareto-frontier dynamic programming ---------------------------------------------------------
@dataclass(frozen=True)
class FrontierPoint:
    """One Pareto-optimal configuration: total size in bits, total objective, width per layer."""

    size_bits: int
    value: float
    widths: tuple[int, ...]


def pareto_frontier(sizes: Sequence[Mapping[int, int]], values: Sequence[Mapping[int, float]],
                    limit_bits: int | None = None) -> list[FrontierPoint]:
    """Exact Pareto frontier of ``(sum_i sizes[i][b_i], sum_i values[i][b_i])`` over all assignments.

    Layer ``i`` may take any width keyed in ``sizes[i]`` (``values[i]`` must have the same
    keys). Points are sorted by increasing size with strictly decreasing value; of equal
    (size, value) the lexicographically smallest width tuple is kept. With ``limit_bits``
    only configurations of total size ``<= limit_bits`` are kept (partial sums that cannot
    be completed within the limit are pruned early). Empty list: nothing fits.
    """
    if len(sizes) != len(values):
        raise ValueError("sizes and values must have one entry per layer")
    opts: list[list[tuple[int, int, float]]] = []
    for i, (sz, val) in enumerate(zip(sizes, values)):
        if set(sz) != set(val) or not sz:
            raise ValueError(f"layer {i}: sizes and values must have the same, non-empty set of widths")
        opts.append(sorted((int(b), int(sz[b]), float(val[b])) for b in sz))
    # smallest size the layers after k can still add (for early pruning against the limit)
    tail_min = [0] * (len(opts) + 1)
    for k in range(len(opts) - 1, -1, -1):
        tail_min[k] = tail_min[k + 1] + min(s for _b, s, _v in opts[k])
    states: list[tuple[int, float, tuple[int, ...]]] = [(0, 0.0, ())]
    for k, layer_opts in enumerate(opts):
        cand = [(s + ls, v + lv, (*w, b)) for s, v, w in states for b, ls, lv in layer_opts
                if limit_bits is None or s + ls + tail_min[k + 1] <= limit_bits]
        cand.sort(key=lambda t: (t[0], t[1], t[2]))
        states = []
        best = math.inf
        for s, v, w in cand:
            if v < best:  # strictly better than every smaller-or-equal-size point kept so far
                states.append((s, v, w))
                best = v
    return [FrontierPoint(s, v, w) for s, v, w in states]


def best_under(frontier: Sequence[FrontierPoint], limit_bits: int | None) -> FrontierPoint | None:
    """The least-valued frontier point of size ``<= limit_bits`` (None: none fits)."""
    fit = [p for p in frontier if limit_bits is None or p.size_bits <= limit_bits]
    return min(fit, key=lambda p: (p.value, p.size_bits)) if fit else None


# ---- the method ------------------------------------------------------------------------------------
class ZeroQMethod(Method):
    """ZeroQ: per-layer per-width KL sensitivity on distilled data + Pareto DP (ILP with hw budgets)."""

    name = "zeroq"
    stochastic = False

    def __init__(self, engine: str = "fakequant", batch_size: int = 16, keep_frontier: int = 2000) -> None:
        self.engine = engine
        self.batch_size = int(batch_size)
        self.keep_frontier = int(keep_frontier)

    def _search(self, problem: Problem) -> MethodResult:
        t0 = time.perf_counter()
        qg8 = problem.quantize(BitConfig.uniform(problem.graph, 8))
        folded, grams = calibration(problem)
        sens = kl_sensitivity_table(qg8, folded, problem.distilled, problem.candidates,
                                    weight_clip=problem.quant.get("weight_clip", "max"), engine=self.engine,
                                    batch_size=self.batch_size, progress=problem.progress, grams=grams)
        sens_s = time.perf_counter() - t0
        costs = layer_costs(problem)
        names = problem.layers
        info: dict[str, Any] = {"sensitivity_seconds": sens_s, "sensitivity": sens}
        t1 = time.perf_counter()
        if hw_budgets_active(problem.budgets):
            res = solve_table(costs, problem.candidates, problem.budgets, sens, sense="min")
            widths, value = res.bits, res.objective
            info["allocator"] = "ilp"
        else:
            check_budgets(costs, problem.candidates, problem.budgets)
            limit = None if problem.budgets.size_mbit is None else size_limit_bits(problem.budgets.size_mbit)
            n_w = {c.name: int(c.n_weights) for c in costs}
            frontier = pareto_frontier([{b: n_w[n] * b for b in problem.candidates} for n in names],
                                       [sens[n] for n in names], limit)
            point = best_under(frontier, limit)
            if point is None:  # pragma: no cover - check_budgets already rejects an unreachable size
                raise InfeasibleBudgetError("no configuration fits the size budget.")
            widths, value = dict(zip(names, point.widths)), point.value
            step = max(1, -(-len(frontier) // self.keep_frontier))
            info["allocator"] = "pareto-dp"
            info["frontier"] = [(p.size_bits * 1e-6, p.value) for p in frontier[::step]]
            info["frontier_points"] = len(frontier)
        info["allocation_seconds"] = time.perf_counter() - t1
        info["objective"] = value
        info.update(budget_report(problem, widths))
        bc = to_bitconfig(problem, widths, self.name)
        low = min(problem.candidates)
        scores = {n: float(sens[n][low]) for n in names}  # the per-layer score at the lowest width
        return MethodResult(self.name, bc, 0.0, f"distilled {len(problem.distilled)} img", scores=scores, info=info)


__all__ = ["FrontierPoint", "ZeroQMethod", "best_under", "kl_sensitivity_table", "pareto_frontier", "substitute_width"]
