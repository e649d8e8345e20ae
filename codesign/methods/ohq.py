"""OHQ (ours) and its ablations behind the methods' interface; ``python -m codesign.search`` runs these.

Both OHQ classes are :class:`~codesign.methods.base.SensitivityMethod`: a sensitivity step
(cached by the search's run folder) and an allocation from it under the problem's budgets and
ILP options (ties, pins, solver; ``Problem.ilp``).

* ``ohq`` -- the improved default (:class:`OhqWidthMethod`): a per-width sensitivity
  ``omega_i(b)``, the expected KL between the 8-bit model and the model with layer i's weights
  at the PTQ's own ``b``-bit values, to second order from one forward and a few backward
  passes (:func:`codesign.fisher.fisher_sensitivity`: the softmax Fisher back-propagated with
  random probes, no suffix re-runs; plus the variance of the activation codes the change
  flips, at the 8-bit model's quantization steps), and an objective that spends the budget: minimise
  ``sum_i omega_i(b_i)`` subject to the size, latency and energy budgets of the OQA table
  (:func:`codesign.ilp.solve_table`, as HAWQ-v3 and ZeroQ allocate). The hardware table
  constrains; it does not shift the sensitivity. Then the ILP's choice is refined with
  measurements (:mod:`codesign.methods.refine`): the neighbouring configurations the table
  predicts cheapest are quantized and their KL to the 8-bit model measured on the distilled
  images, and the search moves while one is better (16 configurations at most). The
  per-layer sensitivities are measured with every other layer at 8 bits and stop adding up
  when most layers are narrow together; the measurement sees whole configurations.
* ``ohq-fisher`` -- ablation: ``ohq`` without the refinement (the ILP's choice as it is).
* ``ohq-mqe`` -- ablation: ``ohq-fisher``'s objective with the measured per-width MQE
  (:func:`codesign.mqe.width_sensitivity`: one 8-bit quantization, each layer's codes
  perturbed by Gaussian noise whose per-channel power matches width ``b``'s quantization
  error, the suffix re-run, several draws over disjoint image groups at the cost of one);
  the session-5 default.
* ``ohq-paper`` -- the paper's OHQ exactly (:class:`OhqMethod`), MQE + OQA: the 8-bit model is quantized once on the distilled images, MQE gives
  ``w_i`` (a fraction ``alpha`` of layer i's 8-bit codes masked, mean KL over the distilled
  batch), OQA gives ``c_i``/``e_i`` from the board's hardware table, and the ILP maximises
  ``sum_i b_i * Omega_i`` with ``Omega_i = beta*w^_i - gamma/2*(c^_i + e^_i)`` under the budgets
  (:func:`codesign.ilp.solve`), ``python -m codesign.search --method ohq-paper``.
* ``ohq-w-linear`` -- ablation: the per-width sensitivity at the lowest candidate width as the
  paper's ``w_i``, through the paper's linear objective (isolates the sensitivity change).
* ``ohq-1draw`` -- ablation: ``ohq-mqe`` with one noise draw (isolates the averaging).
* ``ohq-mqe-only`` -- the paper's "MQE" ablation: ``beta = 1`` (``Omega_i = w^_i``), the
  hardware table enters only through the budgets.
* ``ohq-oqa-only`` -- the paper's "OQA" ablation: the hardware terms only. Taken literally
  (``beta = 0``) every ``Omega_i = -(c^_i + e^_i)/2 <= 0`` and the ILP puts every layer at the
  narrowest width whatever the budget (uniform lowest width). To make the ablation say
  something, the objective is shifted by a constant, ``Omega_i = 1 - (c^_i + e^_i)/2`` in
  [0, 1]: the same ranking of layers as beta = 0 (cheap layers get the bits), but the budget is
  spent. The layer ranking, not the shift, is what the ablation tests.

Data used: the distilled images only (no labels).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from codesign.ilp import from_hw_table, solve, solve_table
from codesign.ilp import omega as ilp_omega
from codesign.methods._common import as_float_dict, budget_report, calibration, ilp_options, to_bitconfig
from codesign.methods.base import LayerSensitivity, Method, MethodResult, Problem, SensitivityMethod
from codesign.quant.bitconfig import BitConfig


class OhqMethod(SensitivityMethod):
    """MQE sensitivity + OQA costs + the OHQ ILP (``beta`` weighs sensitivity vs hardware cost)."""

    stochastic = True  # the MQE masks are drawn from the seed

    def __init__(self, beta: float = 0.5, alpha: float = 0.5, name: str = "ohq") -> None:
        self.beta = float(beta)
        self.alpha = float(alpha)
        self.name = name

    def sensitivity_key(self) -> dict[str, Any]:
        """MQE depends on the mask fraction only (beta weighs it in the ILP)."""
        return {"alpha": self.alpha}

    def sensitivity(self, problem: Problem) -> LayerSensitivity:
        """MQE (paper): a fraction ``alpha`` of each layer's 8-bit codes masked, mean KL over the distilled images."""
        from codesign.mqe import mqe_sensitivity

        qg8 = problem.quantize(BitConfig.uniform(problem.graph, 8))
        sens = mqe_sensitivity(qg8, problem.distilled, alpha=self.alpha, seed=problem.seed, progress=problem.progress)
        return LayerSensitivity(as_float_dict(sens.layers, sens.scores), sens.seconds, sens.method,
                                info={"alpha": self.alpha})

    def allocate(self, problem: Problem, sens: LayerSensitivity) -> MethodResult:
        """The paper's ILP: maximise ``sum_i b_i * Omega_i`` under the budgets."""
        costs = from_hw_table(problem.graph, problem.table, sens.scores, problem.candidates)
        res = solve(costs, problem.candidates, problem.budgets, beta=self.beta, **ilp_options(problem, costs))
        info: dict[str, Any] = {"beta": self.beta, "alpha": self.alpha, "mqe_seconds": sens.seconds,
                                "ilp_seconds": res.build_seconds + res.solve_seconds, "omega": res.omega,
                                **budget_report(problem, res.bits)}
        return MethodResult(self.name, to_bitconfig(problem, res.bits, self.name), 0.0,
                            f"distilled {len(problem.distilled)} img", scores=sens.scores, info=info, ilp=res)


class OhqWidthMethod(SensitivityMethod):
    """Per-width sensitivity + ``min sum_i omega_i(b_i)`` under the budgets (``linear``: the paper's ILP).

    ``estimator="fisher"``: :func:`codesign.fisher.fisher_sensitivity` with ``probes`` probes
    per image; ``"mqe"``: :func:`codesign.mqe.width_sensitivity` with ``draws`` noise draws.
    ``refine`` > 0 (not with ``linear``): :func:`codesign.methods.refine.refine` measures up
    to that many configurations around the ILP's choice and keeps the best.
    """

    stochastic = True  # the probes / noise draws come from the seed

    def __init__(self, draws: int = 4, perturb: str = "noise", linear: bool = False, beta: float = 0.5,
                 name: str = "ohq", estimator: str = "fisher", probes: int = 4, refine: int = 0) -> None:
        if estimator not in ("fisher", "mqe"):
            raise ValueError(f"estimator must be 'fisher' or 'mqe', got {estimator!r}")
        if int(refine) < 0:
            raise ValueError(f"refine counts measured configurations (0: off), got {refine!r}")
        self.draws, self.perturb, self.linear, self.beta, self.name = int(draws), perturb, bool(linear), float(beta), name
        self.estimator, self.probes, self.refine = estimator, int(probes), int(refine)

    def sensitivity_key(self) -> dict[str, Any]:
        """The estimator and its draws/probes (not the objective's form)."""
        if self.estimator == "fisher":
            return {"estimator": "fisher", "probes": self.probes, "perturb": "ptq"}
        return {"draws": self.draws, "perturb": self.perturb}

    def sensitivity(self, problem: Problem) -> LayerSensitivity:
        """``omega_i(b)`` for every candidate width."""
        clip = problem.quant.get("weight_clip", "max")
        if self.estimator == "fisher":
            from codesign.fisher import fisher_sensitivity

            t0 = time.perf_counter()
            folded, grams = calibration(problem)
            qg8 = problem.quantize(BitConfig.uniform(problem.graph, 8))  # the activation steps of the integer model
            sens = fisher_sensitivity(folded, problem.distilled, problem.candidates, probes=self.probes,
                                      seed=problem.seed, perturb="ptq", clip=clip, grams=grams,
                                      steps={name: t.scale for name, t in qg8.tensors.items()})
            info: dict[str, Any] = {"probes": self.probes}
            seconds, kind = time.perf_counter() - t0, "fisher"
        else:
            from codesign.mqe import width_sensitivity

            qg8 = problem.quantize(BitConfig.uniform(problem.graph, 8))
            sens = width_sensitivity(qg8, problem.distilled, problem.candidates, draws=self.draws, seed=problem.seed,
                                     perturb=self.perturb, clip=clip, progress=problem.progress)
            info = {"draws": self.draws, "perturb": self.perturb}
            seconds, kind = sens.seconds, "mqe-noise"
        low = min(problem.candidates)
        table = {n: {b: sens.omega[n].get(b, 0.0) for b in problem.candidates} for n in problem.layers}
        return LayerSensitivity({n: sens.omega[n][low] for n in problem.layers}, seconds, kind, per_width=table,
                                info=info)

    def allocate(self, problem: Problem, sens: LayerSensitivity) -> MethodResult:
        """``min sum_i omega_i(b_i)`` (or, ``linear``, the paper's ILP on the lowest width's scores)."""
        scores, table = sens.scores, sens.per_width
        costs = from_hw_table(problem.graph, problem.table, scores if self.linear else dict.fromkeys(scores, 0.0),
                              problem.candidates)
        opts = ilp_options(problem, costs)
        if self.linear:
            res = solve(costs, problem.candidates, problem.budgets, beta=self.beta, **opts)
        else:
            res = solve_table(costs, problem.candidates, problem.budgets, table, sense="min", **opts)
        bits, extra = res.bits, {}
        if self.refine > 0 and not self.linear:
            from codesign.methods.refine import refine

            found = refine(problem, costs, problem.budgets, table, res.bits, self.refine, ties=opts["ties"],
                           pins=opts["pin"])
            bits, extra = found.bits, found.info()
        info: dict[str, Any] = {"estimator": self.estimator, "draws": self.draws, "probes": self.probes,
                                "perturb": self.perturb, "linear": self.linear,
                                "sensitivity_seconds": sens.seconds, "omega_table": table,
                                "ilp_seconds": res.build_seconds + res.solve_seconds, "objective": res.objective,
                                **extra, **budget_report(problem, bits)}
        return MethodResult(self.name, to_bitconfig(problem, bits, self.name), 0.0,
                            f"distilled {len(problem.distilled)} img", scores=scores, info=info, ilp=res)


class OqaOnlyMethod(Method):
    """Hardware cost only: ``Omega_i = 1 - (c^_i + e^_i)/2`` (see the module docstring)."""

    name = "ohq-oqa-only"
    stochastic = False

    def _search(self, problem: Problem) -> MethodResult:
        zeros = {n: 0.0 for n in problem.layers}
        costs = from_hw_table(problem.graph, problem.table, zeros, problem.candidates)
        top = max(problem.candidates)
        # the paper's Omega at beta = 0 is -(c^ + e^)/2; shifted by 1 so the budget is spent
        omega = 1.0 + ilp_omega(np.zeros(len(costs)), [c.cycles[top] for c in costs],
                                [c.energy_uj[top] for c in costs], beta=0.0)
        table = {lc.name: {b: b * float(o) for b in problem.candidates} for lc, o in zip(costs, omega)}
        res = solve_table(costs, problem.candidates, problem.budgets, table, sense="max")
        info: dict[str, Any] = {"omega": as_float_dict(problem.layers, omega),
                                "ilp_seconds": res.build_seconds + res.solve_seconds, **budget_report(problem, res.bits)}
        return MethodResult(self.name, to_bitconfig(problem, res.bits, self.name), 0.0, "none (hardware table only)",
                            info=info)


__all__ = ["OhqMethod", "OhqWidthMethod", "OqaOnlyMethod"]
