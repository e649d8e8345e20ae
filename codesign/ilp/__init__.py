"""The OHQ bit-width ILP (method steps 4 and 5): combine MQE and OQA, then solve it exactly.

The solver is PuLP's bundled CBC where it runs, else a system ``cbc``, else a built-in exact
NumPy solver (:mod:`codesign.solvers`; ``solver=`` picks one).

**Objective (paper, faithful).** ``Omega_i = beta*w^_i - gamma/2*(c^_i + e^_i)`` with
``gamma = 1 - beta``; ``w`` is the MQE sensitivity, ``c`` the cycles and ``e`` the energy of
layer ``i``, each min-max scaled to [0, 1] across layers. The ILP maximises
``sum_i b_i * Omega_i`` (one-hot binaries ``x_{i,b}``) subject to the budgets.

* ``c_i`` and ``e_i`` in ``Omega`` are taken at the **highest candidate width** (W=A=max): the
  objective needs one scalar per layer, and MQE measures sensitivity on the model quantized
  at 8 bit, so both terms describe the same operating point. The per-width costs enter where
  they are exact: the latency/energy/on-chip budget rows use the table value at each width.
* ``Omega_i`` lies in ``[-gamma, beta]`` and **can be negative** (an insensitive,
  costly layer). Maximising ``sum b_i Omega_i`` then drives such a layer to the narrowest
  width *whatever the budget*: the ILP does not spend spare budget on it. Layers with
  ``Omega_i > 0`` compete for the budget; ``Omega_i == 0`` layers are indifferent (CBC picks
  any width). This is the paper's model; it is kept as is and documented, not patched.
* A term that is constant across layers (one layer, equal costs) scales to 0: it carries no
  information for ranking layers, and 0 avoids a division by zero.

**Budgets** (all upper bounds, combinable): model size in Mbit (10^6 bits of quantized
weights, biases excluded, as ``BitConfig.size_mbit``), latency in cycles and energy in uJ
(sums over layers of the hardware-table values per (layer, width)), and on-chip memory in
kbit (10^3 bits; ``onchip_mode="max"``: the largest layer's working set must fit, as on the
layer-by-layer OQA overlay; ``"sum"``: all layers resident, as in a dataflow design).

Sizes compare as whole bits (exact integer row); the float rows (latency, energy, on-chip)
are met to 1e-9 relative, and after CBC the exact sums are re-checked (an assignment CBC
accepted within its own 1e-7 tolerance is cut off and the MIP re-solved). The size budget is
the paper's constraint and the search always sets it; ``None`` is allowed for library use.

**Exact pre-filter.** Before CBC, an option that another option of the same layer (group)
beats on the objective and on every active budget row gets no variable. This keeps the
optimum and shrinks the MIP (a negative-Omega layer with monotone costs keeps one width).

**Separate W/A bits** (optional): a layer picks a pair (w, a) from ``candidates x candidates``.
Size uses ``w``; the objective uses ``Omega_i * (w + a) / 2`` (equal to ``b * Omega_i`` when
``w == a``); cycles/energy use the cost entry keyed ``(w, a)`` if the ``LayerCost`` has one,
else the entry at ``max(w, a)``: the overlay has one GEMM engine per width and a mixed pair runs
on the engine wide enough for both.

**Ties and pins.** Tied layers share one width (a tie group has one set of binaries, so the
model is smaller, not just constrained). A pin fixes a layer's (group's) width; a pinned width
need not be a candidate (e.g. first/last layer at 8 bit while searching {2, 4}).

**Per-(layer, width) objectives** (:func:`solve_table`): the baselines (HAWQ-v3, ZeroQ with
hardware budgets) minimise a table ``sum_i f_i(b_i)`` instead of ``sum_i b_i * Omega_i``,
with the same budget rows, ties, pins, pre-filter and infeasibility reporting.

**Modules.** ``omega`` (the paper's Omega), ``compile`` (groups, options, row coefficients),
``mck`` (the model the solvers see), ``feasibility`` (reachable ranges, infeasibility
messages), ``solve`` (the public solves), ``adapters`` (graph and OQA table -> LayerCost,
size ratio, pins) and ``ties`` (residual ties). Budget totals of an assignment come from
:meth:`codesign.budgets.Budgets.totals`, the one evaluator every method uses.

NumPy (+ PuLP for CBC and the LP file) only: this runs on the board.
"""

from __future__ import annotations

from codesign.budgets import Budgets, LayerCost
from codesign.ilp.adapters import first_last_pins, from_hw_table, ratio_to_size, table_costs
from codesign.ilp.errors import IlpError, InfeasibleBudgetError
from codesign.ilp.feasibility import check_budgets, feasible_range
from codesign.ilp.omega import minmax, omega
from codesign.ilp.solve import IlpResult, solve, solve_table
from codesign.ilp.ties import residual_ties

__all__ = [
    "Budgets", "IlpError", "IlpResult", "InfeasibleBudgetError", "LayerCost", "check_budgets", "feasible_range",
    "first_last_pins", "from_hw_table", "minmax", "omega", "ratio_to_size", "residual_ties", "solve",
    "solve_table", "table_costs",
]
