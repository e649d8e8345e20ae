"""Train the small zoo models and commit them as IR: ``python -m codesign.models.train``.

For each model: build the Keras model (seeded), train it with Adam and a cosine learning-rate
decay, measure test top-1 in Keras, import it to IR with ``from_keras``, measure test top-1
again by executing the IR with the NumPy float executor, and write ``graph.json``,
``weights.npz`` and ``meta.json`` (both accuracies, dataset, epochs, seed, command, date) to
``<out>/<name>/``. The trained Keras model is also kept in ``build/train/<name>.keras`` so
``--skip-training`` can redo the import/evaluation without training again.

Off-board only (TensorFlow is imported lazily, inside :func:`train_keras`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codesign.datasets import DATASETS, NUM_CLASSES, load_dataset
from codesign.errors import CodesignError, ModelFileError, run_cli
from codesign.models import REPO_ROOT, SMALL_MODELS, WEIGHTS_DIR
from codesign.models.evaluate import META_FILE, top1

# Chosen so that each model trains in a few minutes on 2 CPU cores.
DEFAULT_EPOCHS = {"resnet_s": 10, "mobilenetv2_s": 8, "mobilenetv3_s": 8}
CHECKPOINT_DIR = REPO_ROOT / "build" / "train"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m codesign.models.train", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="all", choices=[*SMALL_MODELS, "all"], help="model to train (default: all)")
    p.add_argument("--dataset", default="fashion-mnist", help=f"{' | '.join(DATASETS)} (default: fashion-mnist)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs (default per model: " + ", ".join(f"{k} {v}" for k, v in DEFAULT_EPOCHS.items()) + ")")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3, help="peak Adam learning rate (cosine decay to 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use only the first N train images (smoke tests)")
    p.add_argument("--test-limit", type=int, default=None,
                   help="evaluate on the first N test images only (smoke tests; not for committed weights)")
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="output root; IR goes to OUT/<model>/")
    p.add_argument("--checkpoint-dir", type=Path, default=CHECKPOINT_DIR, help="where trained .keras files go")
    p.add_argument("--skip-training", action="store_true",
                   help="reuse CHECKPOINT_DIR/<model>.keras from an earlier run; only import and evaluate")
    args = p.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        raise CodesignError(f"--epochs must be at least 1, got {args.epochs}.")
    for flag in ("limit", "test_limit"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise CodesignError(f"--{flag.replace('_', '-')} must be at least 1, got {value}.")
    return args


def train_keras(name: str, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, lr: float,
                seed: int) -> Any:
    """Build and train Keras model ``name``; returns the trained model."""
    import tensorflow as tf

    from codesign.models.keras_zoo import build

    model = build(name, seed=seed)
    steps = epochs * int(np.ceil(len(x) / batch_size))
    schedule = tf.keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps)
    model.compile(optimizer=tf.keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True,
              verbose=1 if sys.stdout.isatty() else 2)
    return model


def keras_top1(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Test top-1 of a Keras model in inference mode (BN running statistics)."""
    probs = model.predict(x, batch_size=500, verbose=0)
    return float(np.mean(np.argmax(probs, axis=-1) == y))


def run_one(name: str, args: argparse.Namespace, data: dict[str, tuple[np.ndarray, np.ndarray]],
            command: str) -> dict[str, Any]:
    """Train (or reload), evaluate, import and save one model; returns its meta record."""
    import tensorflow as tf

    from codesign.graph.keras_import import from_keras
    from codesign.graph.serialize import save_graph

    x_train, y_train = data["train"]
    x_test, y_test = data["test"]
    ckpt = args.checkpoint_dir / f"{name}.keras"
    record_path = args.checkpoint_dir / f"{name}.train.json"
    if args.skip_training:
        if not ckpt.is_file() or not record_path.is_file():
            raise ModelFileError(f"--skip-training needs {ckpt} and {record_path} from an earlier run.")
        from codesign.graph.keras_files import load_keras_model

        model = load_keras_model(ckpt)  # safe after QKeras loaded tf_keras (see keras_files)
        record = json.loads(record_path.read_text())
    else:
        epochs = args.epochs or DEFAULT_EPOCHS[name]
        print(f"== {name}: training {epochs} epochs on {len(x_train)} {args.dataset} images", flush=True)
        start = time.perf_counter()
        model = train_keras(name, x_train, y_train, epochs, args.batch_size, args.lr, args.seed)
        record = {
            "model": name, "dataset": args.dataset, "epochs": epochs, "batch_size": args.batch_size,
            "lr": args.lr, "optimizer": "adam+cosine", "seed": args.seed, "train_images": len(x_train),
            "train_seconds": round(time.perf_counter() - start, 1), "command": command,
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "tensorflow": tf.__version__,
        }
        args.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        model.save(ckpt)
        record_path.write_text(json.dumps(record, indent=1))

    record["keras_test_top1"] = keras_top1(model, x_test, y_test)
    graph = from_keras(model, name=name)
    record["ir_test_top1"] = top1(graph, x_test, y_test)
    probe = x_test[:256]
    record["ir_vs_keras_max_abs_diff"] = float(
        np.max(np.abs(model.predict(probe, verbose=0) - _run_float(graph, probe)))
    )
    record.update(test_images=len(x_test), params=sum(ly.num_params for ly in graph.layers),
                  macs=graph.total_macs(), input_shape=list(graph.input_shape))
    out = save_graph(graph, args.out / name)
    (out / META_FILE).write_text(json.dumps(record, indent=1) + "\n")
    print(f"== {name}: Keras test top-1 {record['keras_test_top1']:.4f}, "
          f"IR test top-1 {record['ir_test_top1']:.4f} -> {out}", flush=True)
    return record


def _run_float(graph: Any, x: np.ndarray) -> np.ndarray:
    from codesign.graph.execute import run_float

    return np.asarray(run_float(graph, x))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    names = list(SMALL_MODELS) if args.model == "all" else [args.model]
    data = {split: load_dataset(args.dataset, split) for split in ("train", "test")}
    if args.limit:
        data["train"] = (data["train"][0][: args.limit], data["train"][1][: args.limit])
    if args.test_limit:
        data["test"] = (data["test"][0][: args.test_limit], data["test"][1][: args.test_limit])
    if int(data["train"][1].max()) >= NUM_CLASSES:
        raise CodesignError(f"dataset {args.dataset!r} has labels >= {NUM_CLASSES}; the small models have 10 classes.")
    shown = list(sys.argv[1:] if argv is None else argv)
    command = " ".join(["python -m codesign.models.train", *shown])
    for name in names:
        run_one(name, args, data, command)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
