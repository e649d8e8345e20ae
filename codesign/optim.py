"""Adam (Kingma & Ba, 2015) in NumPy: the one optimiser of the on-board code.

Distillation optimises the pixels of the distilled batch with it, HAQ's DDPG agent its actor and
critic. It runs on the board, so it needs nothing but NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Adam:
    """Adam over a list of arrays, updated in place (the moments keep each array's dtype)."""

    def __init__(self, params: Sequence[np.ndarray], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        """Moments for arrays shaped like ``params``; ``lr`` is the base rate."""
        self.lr, self.b1, self.b2, self.eps = float(lr), betas[0], betas[1], eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], lr: float | None = None) -> None:
        """One update of every array in ``params`` with its gradient (``lr`` overrides the base rate)."""
        self.t += 1
        c1 = 1.0 - self.b1**self.t
        c2 = 1.0 - self.b2**self.t
        rate = self.lr if lr is None else lr
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * np.square(g)
            p -= rate * (m / c1) / (np.sqrt(v / c2) + self.eps)


__all__ = ["Adam"]
