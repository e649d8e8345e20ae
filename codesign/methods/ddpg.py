"""DDPG in NumPy with HAQ's settings: the actor/critic MLPs, the replay memory and the agent.

The agent of :mod:`codesign.methods.haq` (Wang et al., CVPR 2019, and the DDPG reference code
it builds on): one scalar action in [0, 1] per step, soft target updates, a moving average
of the rewards subtracted per batch. ``Mlp`` defaults to float64 for the gradient checks; the
agent runs float32, as the PyTorch reference. NumPy only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from codesign.optim import Adam


class Mlp:
    """Fully connected net with ReLU hidden layers and a sigmoid or linear output.

    ``forward`` returns the output and a cache; ``backward`` maps the gradient of a loss with
    respect to the output to the gradients of the parameters (same order as ``params``) and
    of the input.
    """

    def __init__(self, sizes: Sequence[int], out_act: str, rng: np.random.Generator,
                 init_w: float = 3e-3, dtype: type = np.float64) -> None:
        if out_act not in ("sigmoid", "linear"):
            raise ValueError(f"out_act must be 'sigmoid' or 'linear', got {out_act!r}")
        if len(sizes) < 2:
            raise ValueError("an MLP needs at least an input and an output size")
        self.out_act = out_act
        self.params: list[np.ndarray] = []
        n_layers = len(sizes) - 1
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            # fan-in init for hidden layers, small uniform for the last (as the HAQ/DDPG code)
            lim = init_w if i == n_layers - 1 else 1.0 / math.sqrt(n_in)
            self.params.append(rng.uniform(-lim, lim, (n_in, n_out)).astype(dtype))
            self.params.append(rng.uniform(-lim, lim, n_out).astype(dtype))

    @property
    def n_layers(self) -> int:
        """Number of affine layers."""
        return len(self.params) // 2

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Output for a batch ``x`` (B, n_in) and the activations needed by ``backward``."""
        h = np.asarray(x, dtype=self.params[0].dtype)
        acts = [h]
        for i in range(self.n_layers):
            z = h @ self.params[2 * i] + self.params[2 * i + 1]
            if i < self.n_layers - 1:
                h = np.maximum(z, 0.0)
            elif self.out_act == "sigmoid":
                h = 1.0 / (1.0 + np.exp(-z))
            else:
                h = z
            acts.append(h)
        return h, acts

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[0]

    def backward(self, acts: list[np.ndarray], g_out: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Gradients of the parameters and of the input, given dLoss/dOutput."""
        grads: list[np.ndarray] = [np.empty(0)] * len(self.params)
        out = acts[-1]
        g = g_out * out * (1.0 - out) if self.out_act == "sigmoid" else g_out
        for i in range(self.n_layers - 1, -1, -1):
            h_in = acts[i]
            grads[2 * i] = h_in.T @ g
            grads[2 * i + 1] = g.sum(axis=0)
            g = g @ self.params[2 * i].T
            if i > 0:
                g = g * (acts[i] > 0.0)
        return grads, g

    def copy(self) -> Mlp:
        """A deep copy (target network)."""
        new = object.__new__(Mlp)
        new.out_act = self.out_act
        new.params = [p.copy() for p in self.params]
        return new

    def soft_update(self, source: Mlp, tau: float) -> None:
        """``theta <- (1 - tau) * theta + tau * theta_source``."""
        for p, q in zip(self.params, source.params):
            p *= 1.0 - tau
            p += tau * q


class ReplayBuffer:
    """Ring buffer of transitions (s, a, r, s', done)."""

    def __init__(self, capacity: int, n_states: int, dtype: type = np.float32) -> None:
        self.capacity = int(capacity)
        self.s: np.ndarray = np.zeros((capacity, n_states), dtype)
        self.a: np.ndarray = np.zeros((capacity, 1), dtype)
        self.r: np.ndarray = np.zeros((capacity, 1), dtype)
        self.s2: np.ndarray = np.zeros((capacity, n_states), dtype)
        self.done: np.ndarray = np.zeros((capacity, 1), dtype)
        self.size = 0
        self._next = 0

    def add(self, s: np.ndarray, a: float, r: float, s2: np.ndarray, done: bool) -> None:
        """Store one transition (overwrites the oldest when full)."""
        i = self._next
        self.s[i], self.a[i, 0], self.r[i, 0], self.s2[i], self.done[i, 0] = s, a, r, s2, float(done)
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """``n`` transitions (without replacement when the buffer holds enough)."""
        idx = rng.choice(self.size, n, replace=self.size < n)
        return self.s[idx], self.a[idx], self.r[idx].copy(), self.s2[idx], self.done[idx]


def truncated_normal(rng: np.random.Generator, mu: float, sigma: float, lo: float = 0.0, hi: float = 1.0) -> float:
    """One sample of N(mu, sigma^2) truncated to [lo, hi] (rejection; clip after 1000 tries)."""
    if sigma <= 0.0:
        return float(np.clip(mu, lo, hi))
    for _ in range(1000):
        x = rng.normal(mu, sigma)
        if lo <= x <= hi:
            return float(x)
    return float(np.clip(mu, lo, hi))


class DdpgAgent:
    """DDPG with HAQ's settings: one scalar action in [0, 1] per step."""

    def __init__(self, n_states: int, rng: np.random.Generator, hidden: Sequence[int] = (300, 300),
                 lr_actor: float = 1e-4, lr_critic: float = 1e-3, tau: float = 0.01, discount: float = 1.0,
                 batch_size: int = 64, memory_size: int = 2000, moving_alpha: float = 0.5,
                 dtype: type = np.float32) -> None:
        self.rng = rng
        self.actor = Mlp([n_states, *hidden, 1], "sigmoid", rng, dtype=dtype)
        self.critic = Mlp([n_states + 1, *hidden, 1], "linear", rng, dtype=dtype)
        self.actor_target = self.actor.copy()
        self.critic_target = self.critic.copy()
        self.opt_actor = Adam(self.actor.params, lr_actor)
        self.opt_critic = Adam(self.critic.params, lr_critic)
        self.tau, self.discount, self.batch_size = tau, discount, batch_size
        self.memory = ReplayBuffer(memory_size, n_states, dtype)
        self.moving_alpha = moving_alpha
        self.moving_average: float | None = None

    def policy(self, s: np.ndarray) -> float:
        """The actor's (noise-free) action for one state."""
        return float(self.actor(s[None, :])[0, 0])

    def explore(self, s: np.ndarray, sigma: float) -> float:
        """Truncated-normal exploration in [0, 1] around the actor's action."""
        return truncated_normal(self.rng, self.policy(s), sigma)

    def update(self) -> tuple[float, float]:
        """One critic and one actor step on a sampled batch; returns (critic loss, mean Q)."""
        s, a, r, s2, done = self.memory.sample(self.batch_size, self.rng)
        batch_mean = float(r.mean())
        if self.moving_average is None:
            self.moving_average = batch_mean
        else:
            self.moving_average += self.moving_alpha * (batch_mean - self.moving_average)
        r -= self.moving_average
        n = len(s)
        q_next = self.critic_target(np.hstack([s2, self.actor_target(s2)]))
        y = r + self.discount * (1.0 - done) * q_next
        q, cache = self.critic.forward(np.hstack([s, a]))
        grads, _ = self.critic.backward(cache, 2.0 * (q - y) / n)
        self.opt_critic.step(self.critic.params, grads)
        loss = float(np.mean((q - y) ** 2))
        mu, cache_a = self.actor.forward(s)
        q_mu, cache_c = self.critic.forward(np.hstack([s, mu]))
        _, g_in = self.critic.backward(cache_c, -np.ones_like(q_mu) / n)  # d(-mean Q)/dQ
        grads_a, _ = self.actor.backward(cache_a, g_in[:, -1:])
        self.opt_actor.step(self.actor.params, grads_a)
        self.actor_target.soft_update(self.actor, self.tau)
        self.critic_target.soft_update(self.critic, self.tau)
        return loss, float(q_mu.mean())


__all__ = ["DdpgAgent", "Mlp", "ReplayBuffer", "truncated_normal"]
