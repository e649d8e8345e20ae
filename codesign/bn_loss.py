"""The BN-statistics loss of data-free distillation (paper Eq. 2) and its gradient in the images.

For each BatchNorm layer (matched by name, summed in name order) the loss compares the batch
mean and std of the tensor entering it with the layer's running statistics; the gradient is
the NumPy reverse mode of :mod:`codesign.graph.grad`. Under a micro-batch size the same loss
and gradient are computed a few images at a time (per-channel moments merged exactly, then a
gradient pass per micro-batch). The formula, the defaults and the memory argument are in
:mod:`codesign.distill`, which optimises the images against this loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, overload

import numpy as np

from codesign.graph.grad import backward, forward
from codesign.graph.ir import BatchNorm, Graph


@dataclass(frozen=True)
class BNTarget:
    """One BN layer's running statistics and the name of the tensor it normalises."""

    name: str
    input_name: str
    mean: np.ndarray  # float64 [C]
    std: np.ndarray  # float64 [C], sqrt(running_var + eps)
    epsilon: float


# ---- the loss --------------------------------------------------------------------------


def bn_targets(graph: Graph) -> list[BNTarget]:
    """Every BatchNorm layer of ``graph`` with its running stats, sorted by layer name."""
    out = []
    for ly in graph.layers:
        if isinstance(ly, BatchNorm):
            var = np.asarray(ly.params["var"], dtype=np.float64)
            out.append(BNTarget(
                name=ly.name, input_name=ly.inputs[0],
                mean=np.asarray(ly.params["mean"], dtype=np.float64),
                std=np.sqrt(var + ly.epsilon), epsilon=float(ly.epsilon),
            ))
    return sorted(out, key=lambda t: t.name)


def bn_stat_loss(z: np.ndarray, target: BNTarget) -> tuple[dict[str, float], np.ndarray]:
    """One BN's Eq.-2 term on its input ``z`` and its gradient dL/dz (same dtype as ``z``)."""
    axes = tuple(range(z.ndim - 1))
    count = z.size // z.shape[-1]
    mu = z.mean(axis=axes, dtype=np.float64)
    centred = z - mu.astype(z.dtype)
    var = np.square(centred).mean(axis=axes, dtype=np.float64)
    sigma = np.sqrt(var + target.epsilon)
    d_mu, d_sigma = mu - target.mean, sigma - target.std
    terms = {"mean_sq_err": float(d_mu @ d_mu), "std_sq_err": float(d_sigma @ d_sigma)}
    terms["loss"] = terms["mean_sq_err"] + terms["std_sq_err"]
    # dL/dz = [2 d_mu + 2 d_sigma (z - mu) / sigma] / count  (d sigma/d z = (z - mu) / (count sigma))
    a = (2.0 * d_mu / count).astype(z.dtype)
    b = (2.0 * d_sigma / (sigma * count)).astype(z.dtype)
    return terms, a + centred * b


@overload
def distill_loss(
    graph: Graph, images: np.ndarray, targets: list[BNTarget] | None = None, with_grad: Literal[True] = True,
    micro_batch: int | None = None,
) -> tuple[float, dict[str, dict[str, float]], np.ndarray]: ...
@overload
def distill_loss(
    graph: Graph, images: np.ndarray, targets: list[BNTarget] | None = None, with_grad: bool = True,
    micro_batch: int | None = None,
) -> tuple[float, dict[str, dict[str, float]], np.ndarray | None]: ...
def distill_loss(
    graph: Graph, images: np.ndarray, targets: list[BNTarget] | None = None, with_grad: bool = True,
    micro_batch: int | None = None,
) -> tuple[float, dict[str, dict[str, float]], np.ndarray | None]:
    """Eq.-2 loss of a batch, its per-BN terms and (optionally) dL/d images.

    ``micro_batch`` < len(images): the same loss and gradient computed ``micro_batch`` images
    at a time (equal up to float rounding; see :mod:`codesign.distill`).
    """
    targets = bn_targets(graph) if targets is None else targets
    if micro_batch is not None and micro_batch < len(images):
        return _distill_loss_chunked(graph, images, targets, with_grad, micro_batch)
    dtype = images.dtype if images.dtype in (np.float32, np.float64) else np.float32
    tape = forward(graph, images, [t.input_name for t in targets], dtype=dtype)
    per_bn: dict[str, dict[str, float]] = {}
    grads: dict[str, np.ndarray] = {}
    total = 0.0
    for t in targets:  # name order: a fixed summation order whatever the layer list order
        terms, dz = bn_stat_loss(tape.outputs[t.input_name], t)
        per_bn[t.name] = terms
        total += terms["loss"]
        # Two BNs may read the same tensor: their gradients add.
        grads[t.input_name] = grads[t.input_name] + dz if t.input_name in grads else dz
    dx = backward(tape, grads) if with_grad else None
    return total, per_bn, dx


def _channel_moments(z: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(count, mean, sum of squared deviations) per channel of one micro-batch, float64."""
    axes = tuple(range(z.ndim - 1))
    mean = z.mean(axis=axes, dtype=np.float64)
    return z.size // z.shape[-1], mean, np.square(z - mean.astype(z.dtype)).sum(axis=axes, dtype=np.float64)


def _merge_moments(parts: list[tuple[int, np.ndarray, np.ndarray]]) -> tuple[int, np.ndarray, np.ndarray]:
    """Exact merge of per-chunk moments (Chan et al.): M2 = sum M2_k + sum n_k (mean_k - mean)^2."""
    count = sum(n for n, _, _ in parts)
    mean = np.asarray(sum(n * m for n, m, _ in parts) / count)
    m2 = np.asarray(sum(s + n * np.square(m - mean) for n, m, s in parts))
    return count, mean, m2


def _distill_loss_chunked(
    graph: Graph, images: np.ndarray, targets: list[BNTarget], with_grad: bool, micro_batch: int,
) -> tuple[float, dict[str, dict[str, float]], np.ndarray | None]:
    """:func:`distill_loss` in micro-batches: statistics pass, then a gradient pass per micro-batch."""
    dtype = images.dtype if images.dtype in (np.float32, np.float64) else np.float32
    names = list(dict.fromkeys(t.input_name for t in targets))
    chunks = [slice(s, min(s + micro_batch, len(images))) for s in range(0, len(images), micro_batch)]
    parts: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {n: [] for n in names}
    for sl in chunks:
        tape = forward(graph, images[sl], names, dtype=dtype)
        for n in names:
            parts[n].append(_channel_moments(tape.outputs[n]))
        del tape
    stats = {n: _merge_moments(p) for n, p in parts.items()}
    per_bn: dict[str, dict[str, float]] = {}
    coefs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # per target: mu, a, b of dL/dz = a + (z-mu) b
    total = 0.0
    for t in targets:
        count, mu, m2 = stats[t.input_name]
        sigma = np.sqrt(m2 / count + t.epsilon)
        d_mu, d_sigma = mu - t.mean, sigma - t.std
        terms = {"mean_sq_err": float(d_mu @ d_mu), "std_sq_err": float(d_sigma @ d_sigma)}
        terms["loss"] = terms["mean_sq_err"] + terms["std_sq_err"]
        per_bn[t.name] = terms
        total += terms["loss"]
        coefs[t.name] = (mu, 2.0 * d_mu / count, 2.0 * d_sigma / (sigma * count))
    if not with_grad:
        return total, per_bn, None
    dx = np.empty(images.shape, dtype=dtype)
    for sl in chunks:
        tape = forward(graph, images[sl], names, dtype=dtype)
        grads: dict[str, np.ndarray] = {}
        for t in targets:
            z = tape.outputs[t.input_name]
            mu, a, b = coefs[t.name]
            dz = a.astype(z.dtype) + (z - mu.astype(z.dtype)) * b.astype(z.dtype)
            grads[t.input_name] = grads[t.input_name] + dz if t.input_name in grads else dz
        dx[sl] = backward(tape, grads)
        del tape, grads
    return total, per_bn, dx


__all__ = ["BNTarget", "bn_stat_loss", "bn_targets", "distill_loss"]
