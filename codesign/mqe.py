"""MQE: mask-guided quantization estimation of per-layer sensitivity (OHQ, Eq. 4), and the
direct sensitivity it approximates (Eq. 5).

MQE quantizes the whole model to 8 bits *once*. For each GEMM layer i it zeroes a random
fraction ``alpha`` of the layer's quantized weight codes and measures

    omega_i = mean_x KL( softmax(M^q(x)) || softmax(M~_i^q(x)) )

over the distilled images. Only the nodes from layer i onward are re-run (the prefix comes
from one traced run), which is what makes it cheap.

The direct sensitivity (Eq. 5) instead re-quantizes the model L times, once per layer with
that layer's weights at the low width and every other layer at 8 bits (calibration included,
as a user of a PTQ tool would), and measures the same KL. MQE's claim is that it ranks layers
like the direct method at a fraction of the cost; :func:`spearman` measures that.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codesign import ui
from codesign.graph.ir import Graph
from codesign.quant.bitconfig import BitConfig, LayerBits
from codesign.quant.fakequant import FakeQuantModel
from codesign.quant.golden import INT_OPS, GoldenModel, NodeOp, run_nodes, tensors_before
from codesign.quant.qgraph import QGraph, quantize_model

DEFAULT_ALPHA = 0.5
ENGINES = ("fakequant", "integer")


@dataclass
class Sensitivity:
    """Per-layer sensitivity scores and how long they took."""

    layers: list[str]
    scores: np.ndarray
    seconds: float
    method: str
    params: dict

    def as_dict(self) -> dict[str, float]:
        """``{layer: score}``."""
        return dict(zip(self.layers, map(float, self.scores)))


def kl_divergence(logits_p: np.ndarray, logits_q: np.ndarray) -> np.ndarray:
    """Per-sample KL(softmax(p) || softmax(q)) in nats, computed stably from logits."""
    lp = logits_p - logits_p.max(-1, keepdims=True)
    lq = logits_q - logits_q.max(-1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    lq = lq - np.log(np.exp(lq).sum(-1, keepdims=True))
    return (np.exp(lp) * (lp - lq)).sum(-1)


def layer_mask(shape: tuple[int, ...], alpha: float, seed: int, index: int) -> np.ndarray:
    """Boolean mask of the weights to zero; depends only on (seed, layer index), not on order."""
    rng = np.random.default_rng([seed, index])
    return rng.random(shape) < alpha


def _op_table(qg: QGraph, engine: str) -> Mapping[str, NodeOp]:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}")
    return FakeQuantModel(qg).table if engine == "fakequant" else INT_OPS


def _chunks(n: int, size: int) -> Iterable[slice]:
    for s in range(0, n, size):
        yield slice(s, min(s + size, n))


def mqe_sensitivity(
    qg8: QGraph,
    x: np.ndarray,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    engine: str = "fakequant",
    batch_size: int | None = None,
    progress: bool = True,
) -> Sensitivity:
    """MQE scores of every GEMM layer of an 8-bit quantized model on float images ``x``.

    ``batch_size``: images per pass (default 16, or fewer under the process memory budget,
    :mod:`codesign.membudget`: the traced run is measured, and doubled for the re-run of the
    suffix that holds beside it). Scores are sums of per-image KLs, so the batch size changes
    only the float summation order.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must be in (0, 1)")
    t0 = time.perf_counter()
    table = _op_table(qg8, engine)
    gemms = [(i, n) for i, n in enumerate(qg8.nodes) if n.is_gemm]
    # Masks as packed bits (1/64 of an int64 weight copy): the masked weights of one layer exist
    # only while that layer is re-run, which keeps ResNet-18 within a board's memory.
    masks = {n.name: np.packbits(layer_mask(n.params["weight"].shape, alpha, seed, k))
             for k, (_i, n) in enumerate(gemms)}
    if batch_size is None:
        from codesign.membudget import micro_batch

        probe_x = qg8.quantize_input(x[:2])
        batch_size = micro_batch(len(x), lambda k: run_nodes(qg8, probe_x[:k], table, trace=True), factor=2.0,
                                 default=16)
    totals = np.zeros(len(gemms))
    bar = ui.progress(len(gemms) * -(-len(x) // batch_size), "MQE", disable=not progress)
    for sl in _chunks(len(x), batch_size):
        xq = qg8.quantize_input(x[sl])
        base_out, tr = run_nodes(qg8, xq, table, trace=True)
        base = qg8.dequantize_output(base_out)
        for k, (i, n) in enumerate(gemms):
            w = n.params["weight"]
            mask = np.unpackbits(masks[n.name], count=w.size).reshape(w.shape).astype(bool)
            qm = qg8.with_params(n.name, weight=np.where(mask, 0, w))
            del mask
            out, _ = run_nodes(qm, None, _op_table(qm, engine), start=i, tensors=tensors_before(qg8, tr, xq, i))
            totals[k] += kl_divergence(base, qm.dequantize_output(out)).sum()
            del qm
            bar.update(1)
        del tr
    bar.close()
    return Sensitivity([n.name for _, n in gemms], totals / len(x), time.perf_counter() - t0, "mqe",
                       {"alpha": alpha, "seed": seed, "engine": engine, "images": len(x), "batch_size": batch_size})


PERTURBATIONS = ("noise", "round")


def requantized(w: np.ndarray, bits: int, clip: str = "mse", base_bits: int = 8) -> np.ndarray:
    """``base_bits`` codes ``w`` re-quantized at ``bits`` per output channel (last axis), in ``base_bits`` code units.

    The PTQ's own weight quantizer (``clip``: least-squares or max clip per channel, round to
    nearest) applied to the codes as if they were the float weights: what layer i looks like at
    width ``bits`` without re-running the calibration (GPTQ's error compensation is left out).
    """
    from codesign.quant.weights import quantize_weights as _weights

    codes, scale = _weights(np.asarray(w, np.float64), bits, clip)
    return codes * scale


def rounding_error_power(w: np.ndarray, bits: int, clip: str = "mse", base_bits: int = 8) -> np.ndarray:
    """Per-output-channel mean squared error (in ``base_bits`` code units) of :func:`requantized`."""
    err: np.ndarray = (requantized(w, bits, clip, base_bits) - np.asarray(w, np.float64)).reshape(-1, w.shape[-1])
    return (err**2).mean(axis=0)


def perturbed_codes(w: np.ndarray, bits: int, rng: np.random.Generator, perturb: str = "noise",
                    clip: str = "mse", base_bits: int = 8) -> np.ndarray:
    """``base_bits`` codes ``w`` perturbed as if quantized at ``bits`` (integer codes, same scale).

    ``"noise"``: Gaussian noise whose per-channel power equals the re-quantization error power
    (:func:`rounding_error_power`), rounded to integer codes: an MQE-style random mask whose
    strength matches the candidate width. ``"round"``: the re-quantized codes themselves
    (:func:`requantized`, deterministic), rounded to the nearest integer code.
    """
    hi8 = 2 ** (base_bits - 1) - 1
    if perturb == "round":
        out = requantized(w, bits, clip, base_bits)
    elif perturb == "noise":
        out = w + rng.standard_normal(w.shape) * np.sqrt(rounding_error_power(w, bits, clip, base_bits))
    else:
        raise ValueError(f"perturb must be one of {PERTURBATIONS}, got {perturb!r}")
    return np.clip(np.round(out), -hi8, hi8).astype(np.asarray(w).dtype)


@dataclass
class WidthSensitivity:
    """Per-layer, per-width sensitivity ``omega[layer][bits]`` (0 at the base width) and its cost."""

    layers: list[str]
    omega: dict[str, dict[int, float]]
    seconds: float
    params: dict

    def at(self, bits: int) -> Sensitivity:
        """The scores at one width, as a :class:`Sensitivity` (for rank comparisons)."""
        return Sensitivity(self.layers, np.array([self.omega[n][bits] for n in self.layers]), self.seconds,
                           f"mqe-w{bits}", self.params)


def width_sensitivity(
    qg8: QGraph,
    x: np.ndarray,
    widths: Iterable[int],
    draws: int = 4,
    seed: int = 0,
    perturb: str = "noise",
    clip: str = "mse",
    engine: str = "fakequant",
    batch_size: int = 16,
    progress: bool = False,
) -> WidthSensitivity:
    """MQE with width-matched masks: ``omega_i(b)`` = mean KL of the 8-bit model vs layer i perturbed at ``b``.

    One quantization (the 8-bit model ``qg8``), then for every GEMM layer ``i`` and candidate
    width ``b < 8`` the layer's codes are perturbed by :func:`perturbed_codes` and only the
    suffix from ``i`` on is re-run, as in :func:`mqe_sensitivity`. The images are split into
    ``draws`` groups, each with its own noise draw, so averaging over draws costs nothing
    extra: ``L * |{b < 8}|`` suffix runs over the images in all. Layers at the base width score 0.
    """
    if draws < 1:
        raise ValueError("draws must be >= 1")
    t0 = time.perf_counter()
    base_bits = 8
    low = sorted({int(b) for b in widths if int(b) < base_bits})
    table = _op_table(qg8, engine)
    gemms = [(i, n) for i, n in enumerate(qg8.nodes) if n.is_gemm]
    groups = [g for g in np.array_split(np.arange(len(x)), min(draws, len(x))) if len(g)]
    totals = {(n.name, b): 0.0 for _i, n in gemms for b in low}
    bar = ui.progress(len(groups) * len(gemms) * len(low), "MQE-w", disable=not progress)
    for d, idx in enumerate(groups):
        for sl in _chunks(len(idx), batch_size):
            xq = qg8.quantize_input(x[idx[sl]])
            base_out, tr = run_nodes(qg8, xq, table, trace=True)
            base = qg8.dequantize_output(base_out)
            for k, (i, n) in enumerate(gemms):
                before = tensors_before(qg8, tr, xq, i)
                for b in low:
                    rng = np.random.default_rng([seed, d, k, b])  # independent of batch and layer order
                    qm = qg8.with_params(n.name, weight=perturbed_codes(n.params["weight"], b, rng, perturb, clip))
                    out, _ = run_nodes(qm, None, _op_table(qm, engine), start=i, tensors=dict(before))
                    totals[(n.name, b)] += float(kl_divergence(base, qm.dequantize_output(out)).sum())
            del tr
        bar.update(len(gemms) * len(low))
    bar.close()
    omega = {n.name: {**{b: totals[(n.name, b)] / len(x) for b in low}, base_bits: 0.0} for _i, n in gemms}
    return WidthSensitivity([n.name for _i, n in gemms], omega, time.perf_counter() - t0,
                            {"draws": len(groups), "seed": seed, "perturb": perturb, "clip": clip, "engine": engine,
                             "images": len(x), "widths": low})


def direct_sensitivity(
    graph: Graph,
    calib_x: np.ndarray,
    x: np.ndarray,
    low_bits: int = 4,
    base_bits: int = 8,
    weights_only: bool = True,
    engine: str = "fakequant",
    progress: bool = True,
    quantize: Callable[..., QGraph] = quantize_model,
) -> Sensitivity:
    """Eq. 5: KL between the ``base_bits`` model and the model with layer i at ``low_bits``.

    Every layer costs one full quantization (BN fold, calibration, weight quantization) and
    one inference, i.e. L quantizations in all. ``weights_only`` lowers only the weights
    (MQE perturbs only weights too).
    """
    t0 = time.perf_counter()
    base_bc = BitConfig.uniform(graph, base_bits)
    qg = quantize(graph, base_bc, calib_x)
    run = (lambda q, xx: FakeQuantModel(q).run(q.quantize_input(xx))) if engine == "fakequant" else \
        (lambda q, xx: GoldenModel(q).run(q.quantize_input(xx)))
    base = qg.dequantize_output(run(qg, x))
    names = [ly.name for ly in graph.quantizable()]
    scores = []
    for name in ui.progress_iter(names, "direct Eq.5", disable=not progress):
        layers = dict(base_bc.layers)
        layers[name] = LayerBits(low_bits, base_bits if weights_only else low_bits)
        qi = quantize(graph, BitConfig(layers, base_bc.default_act_bits, graph.name), calib_x)
        scores.append(float(kl_divergence(base, qi.dequantize_output(run(qi, x))).mean()))
    return Sensitivity(names, np.array(scores), time.perf_counter() - t0, "direct",
                       {"low_bits": low_bits, "base_bits": base_bits, "weights_only": weights_only, "engine": engine})


def rankdata(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing their mean rank; NumPy-only (no SciPy on board)."""
    a = np.asarray(a, dtype=np.float64)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a))
    sorted_a = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sorted_a[j + 1] == sorted_a[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (Pearson on average ranks)."""
    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / den) if den else 0.0


def save_sensitivity_csv(path: str | Path, results: list[Sensitivity]) -> Path:
    """One row per layer, one column per method (plus each method's rank, 1 = most sensitive)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    layers = results[0].layers
    with p.open("w", newline="") as f:
        w = csv.writer(f)
        head = ["layer"]
        for r in results:
            head += [r.method, f"{r.method}_rank"]
        w.writerow(head)
        ranks = [len(r.scores) + 1 - rankdata(r.scores) for r in results]
        for i, name in enumerate(layers):
            row: list = [name]
            for r, rk in zip(results, ranks):
                row += [f"{r.scores[i]:.6g}", int(rk[i])]
            w.writerow(row)
    return p


__all__ = ["Sensitivity", "WidthSensitivity", "direct_sensitivity", "kl_divergence", "mqe_sensitivity",
           "perturbed_codes", "requantized", "rounding_error_power", "spearman", "width_sensitivity"]
