"""Data-free distilled inputs: images whose per-BN batch statistics match the BN running stats.

OHQ (paper Eq. 2, as in ZeroQ) needs no dataset. Starting from noise, a batch ``x`` is
optimised so that, at every BatchNorm layer ``b``, the per-channel batch mean and std of the
tensor *entering* ``b`` match the running statistics stored in ``b``::

    L(x) = sum_b  ||mu~_b(x) - mu_b||^2 + ||sigma~_b(x) - sigma_b||^2
    mu~, sigma~^2 = mean / biased variance over every axis but the channel axis
    sigma~ = sqrt(var~ + eps_b),  sigma = sqrt(running_var + eps_b)   (eps_b: that BN's epsilon)

BN layers are found and matched **by name** through the IR (each layer reads its own
``mean``/``var`` params), never by position; the loss is summed in name order and the graph
runs in a canonical order (:func:`codesign.graph.grad.canonical_order`), so reordering
independent branches in ``graph.layers`` changes nothing, bit for bit.

The loss and its gradient live in :mod:`codesign.bn_loss`; the gradient is NumPy reverse mode
(:mod:`codesign.graph.grad`): it runs on the board.
Only the layers up to the last BN input are run (the head is skipped).

Defaults (documented, used by ``codesign.search``):

* ``n_images = 32`` -- the paper's distilled batch size.
* ``init = "gaussian"`` -- x ~ N(0, 0.1^2) per pixel, seeded by ``seed``. ZeroQ starts from
  N(0, 1) with lr 0.5 for ImageNet-normalised inputs; the zoo's small models take raw [0, 1]
  pixels, and there that start (and step size) drives ReLU6 units into saturation, where
  the loss stalls (mobilenetv2_s: ~3x lower only). A start 10x smaller with a 10x smaller
  step reaches a far lower absolute loss on every zoo model. ``init="uniform"`` is U(0, 1).
* ``iterations = 200``, ``lr = 0.05`` -- Adam (beta1 0.9, beta2 0.999) on the pixels, with
  the learning rate cosine-decayed to ``lr / 100`` over the run so the loss settles instead
  of oscillating. On the trained 32x32 zoo models the loss falls ~80-130x, to about the
  loss of 32 real test images; one iteration on 32 images costs 0.06-0.26 s of CPU, so
  the default run takes ~10-50 s on an idle 2-core machine (``docs/results/distill.md``).
* ``clip = None`` -- no clipping. Pass ``clip=(lo, hi)`` to project the pixels into the data
  range after every step (e.g. ``(0, 1)`` for a model fed raw [0, 1] pixels). The BN loss
  then cannot always fall as far, but the images stay in the input domain the model was
  trained on: unclipped distilled images of the Fashion-MNIST zoo models span about
  [-1.6, 3.8], so the input (and the first layers') calibrated ranges come out 1.6-8x too
  wide and 4-bit activations lose 5-10 points of top-1. ``codesign.search`` therefore passes
  the zoo model's input range (``ZooEntry.input_range``; ``--input-range``).

**Memory.** The batch statistics couple all images, so a full-batch step keeps every image's
activations at once (32 images of 224x224 through ResNet-18: far above a PYNQ-Z2's 512 MB).
Under a memory budget (:mod:`codesign.membudget`, the search's ``--max-memory-mb``) the step
runs in micro-batches: a first pass accumulates each BN input's per-channel count, mean and
sum of squared deviations (merged exactly, Chan et al.), a second pass re-runs each
micro-batch and back-propagates the per-element gradient, which depends on the batch only
through those global statistics. The result equals the full-batch step up to float rounding
(summation order; tests/search/test_distill_microbatch.py). A budget that fits the whole batch
takes the full-batch path, bit for bit.
* Scale invariance: the pixels are optimised in a normalised space ``u``: ``x = lo + (hi-lo) u``
  with ``u`` clipped to [0, 1] when ``clip=(lo, hi)`` is given, else ``x = scale * u``
  (``scale`` from :mod:`codesign.input_range`). The init, ``lr`` and ``INIT_STD`` above are in
  ``u`` units, so a model fed raw [0, 255] pixels distils like one fed [0, 1] pixels; for
  ``clip=(0, 1)`` or ``scale=1`` the images are exactly those of the unnormalised loop.

A model without any BatchNorm cannot be distilled: :class:`NoBatchNormError` is raised
unless ``allow_no_bn=True`` (the search CLI's ``--allow-no-bn``), which falls back to seeded
Gaussian images and warns that it did.
"""

from __future__ import annotations

import csv
import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codesign.bn_loss import BNTarget, bn_stat_loss, bn_targets, distill_loss
from codesign.errors import CodesignError
from codesign.graph.ir import Graph
from codesign.optim import Adam

log = logging.getLogger(__name__)

DEFAULT_IMAGES = 32
DEFAULT_ITERATIONS = 200
DEFAULT_LR = 0.05
INIT_STD = 0.1  # std of the 'gaussian' start, in input units
LR_FLOOR = 0.01  # cosine schedule ends at lr * LR_FLOOR
INITS = ("gaussian", "uniform")


class DistillError(CodesignError):
    """Distillation was asked for with arguments it cannot use."""


class NoBatchNormError(DistillError):
    """The model has no BatchNorm layer, so there are no statistics to distill from."""


@dataclass
class DistillResult:
    """Distilled batch plus how it got there.

    ``loss_curve[i]`` is the loss of the batch before step ``i``; the last entry is the loss
    of the returned images (so it has ``iterations + 1`` entries, or 0 for the fallback).
    ``per_bn_final`` / ``per_bn_initial`` map each BN layer name to its ``mean_sq_err``,
    ``std_sq_err`` and ``loss`` for the returned / initial images.
    """

    images: np.ndarray  # float32 NHWC
    loss_curve: np.ndarray
    per_bn_final: dict[str, dict[str, float]]
    seconds: float
    per_bn_initial: dict[str, dict[str, float]] = field(default_factory=dict)
    fallback: bool = False  # True when no BN existed and Gaussian images were returned
    config: dict[str, object] = field(default_factory=dict)

    @property
    def reduction(self) -> float:
        """Initial loss divided by final loss (nan for the no-BN fallback)."""
        if len(self.loss_curve) < 2 or self.loss_curve[-1] <= 0:
            return float("nan") if len(self.loss_curve) < 2 else float("inf")
        return float(self.loss_curve[0] / self.loss_curve[-1])


# ---- the optimiser ---------------------------------------------------------------------


def cosine_lr(lr: float, step: int, total: int, floor: float = LR_FLOOR) -> float:
    """Cosine decay from ``lr`` to ``lr * floor`` over ``total`` steps."""
    if total <= 1:
        return lr
    frac = step / (total - 1)
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))


# ---- entry points ----------------------------------------------------------------------


def initial_images(graph: Graph, n_images: int, seed: int, init: str = "gaussian") -> np.ndarray:
    """Seeded starting batch: N(0, INIT_STD^2) (``gaussian``) or U(0, 1) (``uniform``) pixels, float32."""
    if init not in INITS:
        raise DistillError(f"unknown distillation init {init!r}; choose one of {', '.join(INITS)}.")
    rng = np.random.default_rng(seed)
    shape = (n_images, *graph.input_shape)
    x = INIT_STD * rng.standard_normal(shape) if init == "gaussian" else rng.uniform(0.0, 1.0, shape)
    return x.astype(np.float32)


def _check_args(n_images: int, iterations: int, lr: float) -> None:
    if n_images < 2:
        # A batch std over one image is still defined, but the paper's statistics are batch ones.
        raise DistillError(f"distillation needs at least 2 images (got {n_images}); the default is {DEFAULT_IMAGES}.")
    if iterations < 0:
        raise DistillError(f"distillation iterations must be >= 0 (got {iterations}).")
    if not lr > 0:
        raise DistillError(f"distillation learning rate must be > 0 (got {lr}).")


def _no_bn(graph: Graph, n_images: int, seed: int, allow_no_bn: bool, started: float) -> DistillResult:
    """Refuse, or with ``allow_no_bn`` fall back to seeded Gaussian images and say so."""
    if not allow_no_bn:
        raise NoBatchNormError(
            f"model {graph.name!r} has no BatchNorm layer, and data-free distillation needs the BN running "
            "statistics (mean/variance) to match (paper Eq. 2). If the BN layers were folded into the convs, "
            "distill on the unfolded model. Pass --allow-no-bn (allow_no_bn=True) to fall back to seeded "
            f"Gaussian N(0, {INIT_STD}^2) inputs instead (MQE sensitivities are then less faithful)."
        )
    msg = (f"model {graph.name!r} has no BatchNorm layer: distillation skipped, using {n_images} seeded "
           f"Gaussian N(0, {INIT_STD}^2) images (seed {seed}) because allow_no_bn/--allow-no-bn was given.")
    log.warning(msg)
    warnings.warn(msg, stacklevel=3)
    images = initial_images(graph, n_images, seed, "gaussian")
    return DistillResult(images, np.zeros(0), {}, time.perf_counter() - started, fallback=True,
                         config={"n_images": n_images, "seed": seed, "init": "gaussian", "fallback": True})


def distill(
    graph: Graph,
    n_images: int = DEFAULT_IMAGES,
    iterations: int = DEFAULT_ITERATIONS,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    allow_no_bn: bool = False,
    progress: bool = True,
    init: str = "gaussian",
    clip: tuple[float, float] | None = None,
    micro_batch: int | None = None,
    scale: float = 1.0,
) -> DistillResult:
    """Optimise a seeded batch so every BN layer's input statistics match its running stats.

    The optimisation runs in a normalised space ``u`` (see the module docstring): with
    ``clip=(lo, hi)`` the images are ``lo + (hi - lo) * u`` with ``u`` kept in [0, 1]; without,
    they are ``scale * u``. ``init``, ``lr`` and ``INIT_STD`` are in ``u`` units, so they mean the
    same for a [0, 1] model and a raw [0, 255] one (``codesign.input_range`` finds the scale).
    ``micro_batch``: images per forward/backward pass; None sizes it from the process memory
    budget (:func:`codesign.membudget.micro_batch`; the whole batch when no budget is set).
    """
    started = time.perf_counter()
    _check_args(n_images, iterations, lr)
    if not (np.isfinite(scale) and scale > 0):
        raise DistillError(f"distillation input scale must be finite and > 0 (got {scale}).")
    offset, width = (float(clip[0]), float(clip[1] - clip[0])) if clip is not None else (0.0, float(scale))
    targets = bn_targets(graph)
    if not targets:
        res = _no_bn(graph, n_images, seed, allow_no_bn, started)
        if clip is not None:
            res.images = np.clip(res.images, *clip)
        return res
    u = initial_images(graph, n_images, seed, init)

    def to_input(u: np.ndarray) -> np.ndarray:
        return u if (offset, width) == (0.0, 1.0) else (offset + width * u).astype(u.dtype)

    if clip is not None:
        u = np.clip(u, 0.0, 1.0)
    x = to_input(u)
    if micro_batch is None:
        from codesign.membudget import micro_batch as fit

        micro_batch = fit(n_images, lambda k: distill_loss(graph, x[:k], targets))
    per_bn_initial: dict[str, dict[str, float]] = {}
    curve = np.empty(iterations + 1)
    adam = Adam([u], lr)
    bar = _progress_bar(iterations, graph.name) if progress else None
    for it in range(iterations):
        loss, per_bn, grad = distill_loss(graph, x, targets, micro_batch=micro_batch)
        if it == 0:
            per_bn_initial = per_bn
        curve[it] = loss
        adam.step([u], [grad * np.asarray(width, grad.dtype)], cosine_lr(lr, it, iterations))  # u in place
        if clip is not None:
            u = np.clip(u, 0.0, 1.0)
        x = to_input(u)
        if bar is not None:
            bar.update(1)
            if it % 10 == 0:
                bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
    if bar is not None:
        bar.close()
    curve[iterations], per_bn_final, _ = distill_loss(graph, x, targets, with_grad=False, micro_batch=micro_batch)
    if iterations == 0:
        per_bn_initial = per_bn_final
    config = {"n_images": n_images, "iterations": iterations, "lr": lr, "seed": seed, "init": init,
              "clip": list(clip) if clip else None, "scale": width, "schedule": f"cosine to lr*{LR_FLOOR}",
              "bn_layers": [t.name for t in targets], "micro_batch": micro_batch}
    return DistillResult(x, curve, per_bn_final, time.perf_counter() - started, per_bn_initial, False, config)


def _progress_bar(total: int, name: str):
    """A progress bar (stderr) for the optimisation loop."""
    from codesign.ui import progress

    return progress(total, f"distill {name}", unit="it")


def save_loss_curve(result: DistillResult, run_dir: str | Path) -> dict[str, Path]:
    """Write ``distill_loss.csv``, ``distill_loss.png`` (log loss vs iteration) and ``images.npz``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": run_dir / "distill_loss.csv", "png": run_dir / "distill_loss.png",
             "images": run_dir / "images.npz"}
    with paths["csv"].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["iteration", "loss"])
        for i, v in enumerate(result.loss_curve):
            w.writerow([i, repr(float(v))])
    np.savez_compressed(paths["images"], images=result.images, loss_curve=result.loss_curve)
    _plot(result, paths["png"])
    return paths


def _plot(result: DistillResult, path: Path) -> None:
    from codesign import plots

    if not plots.available():
        plots.note_missing()
        return
    import matplotlib

    matplotlib.use("Agg")  # headless: the board and CI have no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    if len(result.loss_curve):
        ax.semilogy(np.arange(len(result.loss_curve)), np.maximum(result.loss_curve, 1e-300))
        ax.set_title(f"BN-statistics loss: {result.reduction:.3g}x lower in {result.seconds:.1f} s", fontsize=9)
    else:
        ax.text(0.5, 0.5, "no BatchNorm: Gaussian fallback, no distillation", ha="center", va="center")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (Eq. 2)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = [
    "DEFAULT_IMAGES", "DEFAULT_ITERATIONS", "DEFAULT_LR", "BNTarget", "DistillError", "DistillResult",
    "NoBatchNormError", "bn_stat_loss", "bn_targets", "cosine_lr", "distill", "distill_loss",
    "initial_images", "save_loss_curve",
]
