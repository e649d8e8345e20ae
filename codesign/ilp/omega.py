"""The paper's objective coefficient: ``Omega_i = beta*w^_i - gamma/2*(c^_i + e^_i)`` (method step 4)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from codesign.budgets import LayerCost
from codesign.ilp.errors import IlpError


def minmax(v: Sequence[float] | np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant vector maps to all zeros (it cannot rank layers)."""
    a = np.asarray(v, dtype=np.float64)
    if a.size == 0:
        return a
    lo, hi = float(a.min()), float(a.max())
    return np.zeros_like(a) if hi - lo <= 0.0 else (a - lo) / (hi - lo)


def omega(sens: Sequence[float] | np.ndarray, cycles: Sequence[float], energy: Sequence[float], beta: float = 0.5) -> np.ndarray:
    """Paper Eq.: ``beta*w^ - (1-beta)/2*(c^ + e^)``, each term min-max scaled; in [-(1-beta), beta]."""
    beta = check_beta(beta)
    arrays = [np.asarray(x, dtype=np.float64) for x in (sens, cycles, energy)]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1:
        raise IlpError(f"omega needs three 1-D vectors of equal length, got shapes {[a.shape for a in arrays]}.")
    if not all(np.isfinite(a).all() for a in arrays):
        raise IlpError("omega: sensitivities, cycles and energies must be finite numbers.")
    s, c, e = (minmax(a) for a in arrays)
    return beta * s - (1.0 - beta) / 2.0 * (c + e)


def check_beta(beta: float) -> float:
    """``beta`` as a float in [0, 1] (gamma = 1 - beta), else IlpError."""
    if not (isinstance(beta, (int, float)) and 0.0 <= float(beta) <= 1.0):
        raise IlpError(f"beta must be in [0, 1] (gamma = 1 - beta), got {beta!r}.")
    return float(beta)



def omega_at_top(costs: list[LayerCost], cands: list[int], beta: float) -> np.ndarray:
    """Omega with cycles/energy at the highest candidate width (see module docstring)."""
    top = cands[-1]
    cyc, en = [], []
    for c in costs:
        cv, ev = c.cost("cycles", top, top), c.cost("energy_uj", top, top)
        if cv is None or ev is None:
            raise IlpError(
                f"layer {c.name!r} has no cycles/energy at {top} bit, the highest candidate width, which Omega "
                "uses; re-run OQA with this width or drop it from the candidates."
            )
        cyc.append(cv)
        en.append(ev)
    return omega([c.sensitivity for c in costs], cyc, en, beta)

