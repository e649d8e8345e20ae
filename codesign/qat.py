"""Quantization-aware fine-tuning of a quantized model's QKeras export (off-board; TensorFlow).

The model trained is :func:`codesign.export.qkeras.to_qkeras` of the PTQ ``QGraph``
(float mode, integer kernels: ``fold_requant=False``). Its quantizers *are* our quantizer:
per-channel symmetric narrow-range weights (integer codes under ``quantized_bits(w_bits,
w_bits-1, symmetric=1)``, then the per-channel requant multiplier ``M_c = s_x * s_w,c / s_y``)
and every activation rounded onto the integer grid of its calibrated tensor. Only the GEMM
kernels and biases (the ``<name>_rq`` offsets) train, through the straight-through estimator;
scales, widths and every other constant stay as calibrated, so the trained model re-imports
into the same integer graph with new codes (:mod:`codesign.export.qkeras_reimport`).

Schedule (documented in docs/quantization.md): Adam, cosine decay of the learning rate from
``lr`` to 0 over all steps of all epochs (``lr`` is in weight *codes* per step: the kernels
are stored as codes, so 2-bit and 8-bit layers move alike; biases in output codes), batches of ``batch`` shuffled per epoch with
``seed + epoch``, sparse cross-entropy on the logits. A checkpoint (weights + state) is
written after every epoch; a rerun with the same model, data and schedule resumes after the
last finished epoch (Adam's moments restart there; the learning rate continues on the
cosine). The checkpoint key is the model, the data, ``batch`` and ``seed``, so a rerun with a
lower ``--lr`` or more ``--epochs`` also resumes. A non-finite loss stops training and keeps
the last good checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codesign.digest import array_digest
from codesign.errors import CodesignError
from codesign.quant.qgraph import QGraph

STATE_FILE = "state.json"
EVAL_BATCH = 500
LOSS_PROBE = 1000  # training images on which the loss is measured before and after


class DivergedError(CodesignError):
    """The training loss became NaN/inf."""


@dataclass(frozen=True)
class Schedule:
    """What a fine-tuning run does (its fingerprint decides whether a checkpoint can resume)."""

    epochs: int = 3
    lr: float = 0.02  # weight codes per step
    batch: int = 128
    seed: int = 0


@dataclass
class TrainResult:
    """The trained Keras model and what happened."""

    model: Any
    epoch_loss: list[float] = field(default_factory=list)
    loss_before: float = float("nan")
    loss_after: float = float("nan")
    seconds: float = 0.0
    resumed_after: int = 0  # epochs taken from a checkpoint


def trainable_export(qg: QGraph) -> Any:
    """The ``io="real"`` QKeras export of ``qg`` with integer kernels (``fold_requant=False``).

    Integer kernels keep every conv sum an exact integer in float32, so the trained model and
    the golden model of its re-import agree (the folded form multiplies by ``M_c`` inside the
    sum and slips by a few codes at 4 bit); they also make ``lr`` a step in *codes* for every width.
    """
    from codesign.export.qkeras import to_qkeras
    from codesign.export.qkeras_reimport import fix_integer_grid

    model = to_qkeras(qg, io="real", fold_requant=False)
    for n in qg.gemm_nodes():
        fix_integer_grid(model.get_layer(n.name))
    return model


def trainable_variables(qg: QGraph, model: Any) -> list[Any]:
    """What QAT trains: each GEMM's integer kernel and the offset (``beta``) of its ``<name>_rq``."""
    out = []
    for n in qg.gemm_nodes():
        layer = model.get_layer(n.name)
        out.append(layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel)
        out.append(model.get_layer(f"{n.name}_rq").beta)
    return out


def logits_of(model: Any) -> Any:
    """Sub-model ending at the dequantized logits (the ``logits`` layer of the export)."""
    from codesign.export.qkeras import logits_model

    return logits_model(model)


def training_loss() -> Any:
    """The loss minimised: sparse cross-entropy on the logits (a function so tests can swap it)."""
    import tensorflow as tf

    return tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def mean_loss(logits: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Mean sparse cross-entropy of the logits model on ``(x, y)`` (inference mode)."""
    import tensorflow as tf

    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
    total = 0.0
    for i in range(0, len(x), EVAL_BATCH):
        total += float(loss(y[i:i + EVAL_BATCH], logits(x[i:i + EVAL_BATCH], training=False)))
    return total / max(len(x), 1)


def _key(qg_digest: str, sched: Schedule, x: np.ndarray, y: np.ndarray) -> str:
    """Checkpoint key: model, data, batch and seed (a rerun with another --lr/--epochs resumes)."""
    what = [qg_digest, sched.batch, sched.seed, len(x), array_digest(x[:256]), array_digest(y)]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]


def _resume(ckpt: Path, key: str, model: Any) -> tuple[int, list[float], float]:
    """(epochs done, their losses, seconds spent) from a matching checkpoint; (0, [], 0) otherwise."""
    state_path = ckpt / STATE_FILE
    if not state_path.is_file():
        return 0, [], 0.0
    state = json.loads(state_path.read_text())
    weights = ckpt / state.get("weights", "")
    if state.get("key") != key or not weights.is_file():
        return 0, [], 0.0
    model.load_weights(str(weights))
    return int(state["epoch"]), list(state["losses"]), float(state["seconds"])


def _save(ckpt: Path, key: str, model: Any, epoch: int, losses: list[float], seconds: float) -> None:
    """Weights of ``epoch`` and the state naming them, each written atomically."""
    ckpt.mkdir(parents=True, exist_ok=True)
    name = f"epoch_{epoch:03d}.h5"  # legacy HDF5 weights: Keras picks the format by suffix, keep one
    tmp = ckpt / f".epoch_{epoch:03d}.tmp.h5"
    model.save_weights(str(tmp))
    tmp.replace(ckpt / name)
    state = {"key": key, "epoch": epoch, "weights": name, "losses": losses, "seconds": round(seconds, 2)}
    tmp_state = ckpt / f".{STATE_FILE}.tmp"
    tmp_state.write_text(json.dumps(state, indent=1))
    tmp_state.replace(ckpt / STATE_FILE)
    for old in ckpt.glob("epoch_*.h5"):  # keep the newest checkpoint only
        if old.name != name:
            old.unlink()


def train(qg: QGraph, qg_digest: str, x: np.ndarray, y: np.ndarray, sched: Schedule, ckpt: Path,
          show_progress: bool = True, log: Callable[[str], None] = print) -> TrainResult:
    """Fine-tune the QKeras export of ``qg`` on ``(x, y)``; checkpoints go to ``ckpt``."""
    import tensorflow as tf

    from codesign.ui import progress

    tf.keras.utils.set_random_seed(sched.seed)
    model = trainable_export(qg)
    logits = logits_of(model)
    probe = np.random.default_rng(sched.seed).permutation(len(x))[:LOSS_PROBE]
    result = TrainResult(model, loss_before=mean_loss(logits, x[probe], y[probe]))
    key = _key(qg_digest, sched, x, y)
    done, result.epoch_loss, spent = _resume(ckpt, key, model)
    result.resumed_after = done
    if done:
        log(f"resuming after epoch {done} from {ckpt}")
    steps = int(np.ceil(len(x) / sched.batch))
    lr = tf.keras.optimizers.schedules.CosineDecay(sched.lr, decay_steps=max(sched.epochs * steps, 1))
    opt = tf.keras.optimizers.Adam(lr)
    opt.iterations.assign(done * steps)  # the cosine schedule continues where it stopped
    loss_fn = training_loss()
    variables = trainable_variables(qg, model)

    @tf.function
    def step(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, logits(xb, training=False))  # inference mode: the constant BN multipliers stay put
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    t0 = time.perf_counter()
    for epoch in range(done + 1, sched.epochs + 1):
        order = np.random.default_rng(sched.seed + epoch).permutation(len(x))
        bar = progress(steps, f"QAT epoch {epoch}/{sched.epochs}", disable=not show_progress)
        total = 0.0
        try:
            for i in range(steps):
                idx = order[i * sched.batch:(i + 1) * sched.batch]
                loss = float(step(tf.constant(x[idx]), tf.constant(y[idx])))
                if not np.isfinite(loss):
                    raise DivergedError(_diverged(epoch, i, done_epochs=epoch - 1, ckpt=ckpt, lr=sched.lr))
                total += loss * len(idx)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        except KeyboardInterrupt:
            log(f"interrupted in epoch {epoch}; rerun the same command to resume after epoch {epoch - 1} "
                f"(checkpoint in {ckpt}).")
            raise
        finally:
            bar.close()
        result.epoch_loss.append(total / len(x))
        _save(ckpt, key, model, epoch, result.epoch_loss, spent + time.perf_counter() - t0)
        log(f"epoch {epoch}/{sched.epochs}: mean training loss {result.epoch_loss[-1]:.4f}")
    result.seconds = spent + time.perf_counter() - t0
    result.loss_after = mean_loss(logits, x[probe], y[probe])
    return result


def _diverged(epoch: int, step: int, done_epochs: int, ckpt: Path, lr: float) -> str:
    kept = (f"the last good checkpoint (after epoch {done_epochs}) is kept in {ckpt}" if done_epochs
            else "no epoch finished, so there is no checkpoint")
    return (f"QAT diverged: the training loss became NaN/inf in epoch {epoch}, step {step + 1}; {kept}. "
            f"Lower the learning rate (--lr, now {lr:g}) and rerun.")


__all__ = ["DivergedError", "Schedule", "TrainResult", "logits_of", "mean_loss", "train", "trainable_export"]
