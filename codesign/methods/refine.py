"""Measured refinement of an ILP allocation: the KL of whole configurations, not a sum of single layers.

The per-layer sensitivities every ILP method sums (Eq. 5, MQE, Fisher, HAWQ-v3's traces) are
measured with every *other* layer at 8 bits. Near the narrowest budgets most layers sit at the
lowest width together and those numbers stop adding up: two configurations the ILP scores
within a few percent of each other can differ by many points of top-1 (issue 17, resnet_s at
{2,4,8}). This step looks at the configurations next to the ILP's optimum and measures them.

Starting from the ILP's choice, a neighbour is the configuration with one layer (or tie group)
moved to another candidate width, or one group one width up and another one width down, that
still meets every budget. Each round measures the ``batch`` neighbours the sensitivity table
predicts cheapest — ``KL(M_8 || M_c)`` of the whole W = A configuration, quantized with the
problem's own PTQ on the distilled images (the data every method calibrates with), averaged
over them — and moves to the best one if it beats the current configuration. It stops when a
round finds nothing better or after ``evals`` measurements. Pins stay where they are; ties
move together. No labels are used.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from codesign.budgets import Budgets, LayerCost

if TYPE_CHECKING:
    from codesign.methods.base import Problem


@dataclass
class Refined:
    """The refined widths and how the search went."""

    bits: dict[str, int]
    kl: float  # measured KL of ``bits``
    start_kl: float  # measured KL of the ILP's choice
    predicted: float  # the sensitivity table's sum at ``bits``
    start_predicted: float  # ... at the ILP's choice (its objective)
    evaluations: int  # configurations measured, the start included
    moves: int  # accepted moves
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        """JSON-able summary for ``MethodResult.info``."""
        return {"refine_kl": self.kl, "refine_start_kl": self.start_kl, "refine_predicted": self.predicted,
                "refine_start_predicted": self.start_predicted, "refine_evaluations": self.evaluations,
                "refine_moves": self.moves, "refine_seconds": self.seconds}


def groups(layers: Sequence[str], ties: Iterable[Iterable[str]], pins: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Movable units: tie groups (overlapping ties merged) and single layers, pinned ones left out."""
    parent = {n: n for n in layers}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for tie in ties:
        names = [n for n in tie if n in parent]
        for a, b in itertools.pairwise(names):
            parent[root(a)] = root(b)
    units: dict[str, list[str]] = {}
    for n in layers:
        units.setdefault(root(n), []).append(n)
    return [tuple(u) for u in units.values() if not any(n in pins for n in u)]


def neighbours(bits: Mapping[str, int], units: Sequence[tuple[str, ...]], candidates: Sequence[int]
               ) -> list[dict[str, int]]:
    """Every configuration one unit away (any other width) or two units away (one step up, one step down)."""
    widths = sorted(candidates)
    out: list[dict[str, int]] = []

    def moved(changes: Iterable[tuple[tuple[str, ...], int]]) -> dict[str, int]:
        new = dict(bits)
        for unit, w in changes:
            new.update({n: w for n in unit})
        return new

    for u in units:
        out += [moved([(u, w)]) for w in widths if w != bits[u[0]]]
    steps = {u: widths.index(bits[u[0]]) for u in units}
    for up in units:
        if steps[up] + 1 >= len(widths):
            continue
        for down in units:
            if down is up or steps[down] == 0:
                continue
            out.append(moved([(up, widths[steps[up] + 1]), (down, widths[steps[down] - 1])]))
    return out


def predicted(table: Mapping[str, Mapping[int, float]], bits: Mapping[str, int]) -> float:
    """The ILP objective ``sum_i omega_i(b_i)`` of ``bits``."""
    return float(sum(table[n][b] for n, b in bits.items() if n in table))


def measured_kl(problem: Problem, bits: Mapping[str, int], base_logits: np.ndarray) -> float:
    """Mean ``KL(softmax(base) || softmax(M_bits))`` over the distilled images, W = A = ``bits``."""
    from codesign.methods._common import to_bitconfig
    from codesign.mqe import kl_divergence
    from codesign.quant.fakequant import FakeQuantModel

    qg = problem.quantize(to_bitconfig(problem, dict(bits), "refine"))
    logits = qg.dequantize_output(FakeQuantModel(qg).run(qg.quantize_input(problem.distilled)))
    return float(kl_divergence(base_logits, logits).mean())


def base_logits(problem: Problem) -> np.ndarray:
    """Logits of the uniform 8-bit model on the distilled images (the reference of every KL)."""
    from codesign.quant.bitconfig import BitConfig
    from codesign.quant.fakequant import FakeQuantModel

    qg = problem.quantize(BitConfig.uniform(problem.graph, 8))
    out: np.ndarray = qg.dequantize_output(FakeQuantModel(qg).run(qg.quantize_input(problem.distilled)))
    return out


def refine(problem: Problem, costs: Sequence[LayerCost], budgets: Budgets, table: Mapping[str, Mapping[int, float]],
           start: Mapping[str, int], evals: int, batch: int = 4, ties: Iterable[Iterable[str]] = (),
           pins: Mapping[str, Any] | None = None) -> Refined:
    """Measured local search from ``start`` (see the module docstring); ``evals`` counts the start too."""
    t0 = time.perf_counter()
    base = base_logits(problem)
    bits = {n: int(b) for n, b in start.items()}
    kl = start_kl = measured_kl(problem, bits, base)
    start_pred = predicted(table, bits)
    units = groups(list(bits), ties, pins or {})
    seen = {tuple(sorted(bits.items()))}
    used, moves = 1, 0
    history: list[dict[str, Any]] = [{"bits": dict(bits), "kl": kl, "predicted": start_pred}]
    while used < evals:
        fits = [c for c in neighbours(bits, units, problem.candidates)
                if tuple(sorted(c.items())) not in seen and not budgets.excess(budgets.totals(costs, c))]
        if not fits:
            break
        fits.sort(key=lambda c: predicted(table, c))
        trial = fits[:min(batch, evals - used)]
        scored = []
        for cand in trial:
            seen.add(tuple(sorted(cand.items())))
            scored.append((measured_kl(problem, cand, base), cand))
            history.append({"bits": dict(cand), "kl": scored[-1][0], "predicted": predicted(table, cand)})
        used += len(trial)
        best_kl, best = min(scored, key=lambda s: s[0])
        if best_kl >= kl:
            break
        bits, kl, moves = best, best_kl, moves + 1
    return Refined(bits, kl, start_kl, predicted(table, bits), start_pred, used, moves,
                   time.perf_counter() - t0, history)


__all__ = ["Refined", "base_logits", "groups", "measured_kl", "neighbours", "predicted", "refine"]
