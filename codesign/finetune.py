"""``python -m codesign.finetune``: QAT of a search run's chosen config, re-imported bit-exact.

Reads ``<run>/bitconfig.json`` and ``<run>/quantized/`` (the PTQ integer model a search
writes), fine-tunes its QKeras export on labelled data (:mod:`codesign.qat`), re-imports the
trained model with its quantizers (:mod:`codesign.export.qkeras_reimport`) and evaluates both
integer models with the golden model on the whole test split. Writes to ``--out``:

* ``qat.json``: ``top1_ptq``, ``top1_qat`` (%, golden model, full test split), ``epochs``,
  ``seconds``, ``max_lsb_error`` (fine-tuned QKeras logits vs the golden model of the
  re-import, in output codes) and the schedule, losses and data sizes;
* ``bitconfig.json`` (the run's widths) and ``quantized/`` (the fine-tuned integer model, in
  the layout of a search run folder), ``qkeras_model.h5`` (the fine-tuned QKeras model);
* ``checkpoints/``: the last finished epoch, for resuming after Ctrl-C.

Off-board only (TensorFlow/QKeras). Argument and input errors are refused before training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codesign import validate
from codesign.errors import CodesignError, DatasetError, ModelFileError, run_cli
from codesign.quant.bitconfig import BitConfig
from codesign.quant.qgraph import QGraph
from codesign.tf_quiet import save_h5
from codesign.ui import Console

NPZ_TEST_FRACTION = 0.2  # a .npz has no splits: its last 20 % is the test split
EVAL_BATCH = 32
console = Console(stderr=True)


def build_parser() -> argparse.ArgumentParser:
    """The CLI."""
    from codesign.qat import Schedule

    d = Schedule()
    ap = argparse.ArgumentParser(prog="python -m codesign.finetune", description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="search run folder with bitconfig.json and quantized/")
    ap.add_argument("--out", help="output folder (default RUN/qat)")
    ap.add_argument("--data", default="fashion-mnist",
                    help="labelled data: fashion-mnist | mnist | file.npz with arrays x (images) and y (labels; "
                         "its last 20%% is the test split) (default fashion-mnist)")
    ap.add_argument("--epochs", type=int, default=d.epochs, help=f"epochs (default {d.epochs})")
    ap.add_argument("--lr", type=float, default=d.lr, help=f"peak Adam learning rate, cosine decay to 0 (default {d.lr:g})")
    ap.add_argument("--batch", type=int, default=d.batch, help=f"batch size (default {d.batch})")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--train-images", type=int, help="use the first N training images (default all)")
    ap.add_argument("--test-images", type=int, help="evaluate on the first N test images (default: the whole split)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    return ap


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and check the numbers (before anything is loaded)."""
    ns = build_parser().parse_args(argv)
    for flag in ("epochs", "batch", "train_images", "test_images"):
        value = getattr(ns, flag)
        if value is not None and value < 1:
            raise validate.ArgumentError(f"--{flag.replace('_', '-')} must be at least 1, got {value}.")
    validate.positive(ns.lr, "--lr")
    ns.out = validate.output_dir(ns.out or Path(ns.run) / "qat")
    return ns


# ---- inputs -------------------------------------------------------------------------------


def load_run(run: str | Path) -> tuple[QGraph, BitConfig, str]:
    """The run's PTQ integer model, its BitConfig and a digest of the model files."""
    from codesign.quant.qserialize import load_qgraph

    r = Path(run)
    if not r.is_dir():
        raise ModelFileError(f"run folder {r} does not exist; pass the --out folder of a `codesign.search` run.")
    missing = [name for name in ("bitconfig.json", "quantized/qgraph.json", "quantized/qparams.npz")
               if not (r / name).is_file()]
    if missing:
        raise ModelFileError(
            f"run folder {r} has no {' and no '.join(missing)}: QAT starts from the BitConfig and the quantized "
            "model that `python -m codesign.search` writes (with exports on, i.e. without --no-export). Rerun the "
            "search into this folder, or pass another --run."
        )
    qg = load_qgraph(r / "quantized")
    bc = BitConfig.load(r / "bitconfig.json")
    if bc.layers != qg.bitconfig.layers:
        raise ModelFileError(f"{r / 'bitconfig.json'} and {r / 'quantized'} disagree on the widths (the folder mixes "
                             "two runs); rerun the search into a fresh folder.")
    h = hashlib.sha256()
    for name in ("quantized/qgraph.json", "quantized/qparams.npz"):
        h.update((r / name).read_bytes())
    return qg, bc, h.hexdigest()[:16]


def load_labelled(spec: str, qg: QGraph) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(train, test) labelled splits that fit the model's input and classes."""
    from codesign.datasets import load_dataset

    hint = ("QAT needs labelled training data: pass --data fashion-mnist, --data mnist, or --data file.npz "
            "holding arrays x (images, N x H x W [x C]) and y (one class id per image)")
    try:
        if spec.endswith(".npz"):
            _check_npz_labels(Path(spec), hint)
            x, y = load_dataset(spec)
            cut = round(len(x) * (1 - NPZ_TEST_FRACTION))
            train, test = (x[:cut], y[:cut]), (x[cut:], y[cut:])
        else:
            train, test = load_dataset(spec, "train"), load_dataset(spec, "test")
    except DatasetError as err:
        raise DatasetError(f"{hint}. Loading {spec!r} failed: {err}") from None
    if len(train[0]) == 0 or len(test[0]) == 0:
        raise DatasetError(f"{hint}. {spec!r} gives {len(train[0])} training and {len(test[0])} test images.")
    want = tuple(qg.tensors[qg.input].shape)
    classes = int(qg.tensors[qg.output].shape[-1])
    for split, (x, y) in (("training", train), ("test", test)):
        if tuple(x.shape[1:]) != want:
            raise DatasetError(f"--data {spec!r} has {split} images of shape {tuple(x.shape[1:])}; the model takes {want}.")
        if y.size and (int(y.min()) < 0 or int(y.max()) >= classes):
            raise DatasetError(f"--data {spec!r} has {split} labels outside the model's {classes} classes "
                               f"(0..{classes - 1}); is it the dataset this model was trained on?")
    return train, test


def _check_npz_labels(path: Path, hint: str) -> None:
    """A .npz without ``y`` is unlabelled data (e.g. calibration images): say what QAT needs."""
    if not path.is_file():
        return  # load_dataset names the missing file
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
    except (OSError, ValueError) as err:
        raise DatasetError(f"{hint}. Cannot read {path}: {err}") from None
    if "y" not in files:
        raise DatasetError(f"{hint}. {path} has no labels (arrays: {', '.join(sorted(files)) or 'none'}).")


# ---- evaluation -----------------------------------------------------------------------------


def golden_codes(qg: QGraph, x: np.ndarray) -> np.ndarray:
    """Integer output codes of the golden model, batch by batch."""
    from codesign.quant.golden import GoldenModel

    gm = GoldenModel(qg)
    return np.concatenate([gm.run(qg.quantize_input(x[i:i + EVAL_BATCH])) for i in range(0, len(x), EVAL_BATCH)])


def top1(codes: np.ndarray, y: np.ndarray) -> float:
    """Top-1 (%) of integer logits (the softmax does not change the arg-max)."""
    return float(100.0 * np.mean(np.argmax(codes, axis=-1) == y))


def lsb_error(logits_model: Any, qg: QGraph, x: np.ndarray, codes: np.ndarray) -> tuple[int, float]:
    """(max |QKeras logits / scale - golden codes|, fraction of logits that differ)."""
    ref = logits_model.predict(x, batch_size=500, verbose=0) / qg.tensors[qg.output].scale
    diff = np.abs(np.asarray(ref, np.float64) - codes)
    return int(np.round(diff.max())), float(np.mean(diff > 0.5))  # QKeras logits are codes up to float32 noise


# ---- outputs --------------------------------------------------------------------------------


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def _write_quantized(qg: QGraph, path: Path) -> None:
    """``quantized/`` replaced as a whole (never half old, half new)."""
    from codesign.quant.qserialize import save_qgraph

    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_qgraph(qg, tmp)
    old = path.with_name(f".{path.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Fine-tune, re-import, evaluate, write."""
    args = parse_args(argv)
    qg_ptq, bc, digest = load_run(args.run)
    train_xy, test_xy = load_labelled(args.data, qg_ptq)
    if args.train_images:
        train_xy = (train_xy[0][: args.train_images], train_xy[1][: args.train_images])
    if args.test_images:
        test_xy = (test_xy[0][: args.test_images], test_xy[1][: args.test_images])
    try:
        from codesign import qat
        from codesign.export.qkeras_reimport import reimport, snap_to_grid
    except ImportError as err:
        raise CodesignError(f"QAT needs TensorFlow and QKeras (off-board): {err}.") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sched = qat.Schedule(epochs=args.epochs, lr=args.lr, batch=args.batch, seed=args.seed)
    console.print(f"codesign finetune {qg_ptq.name}: {len(train_xy[0])} training images, {sched.epochs} epoch(s), "
                  f"lr {sched.lr:g}, batch {sched.batch} -> {out}")
    res = qat.train(qg_ptq, digest, *train_xy, sched, out / "checkpoints", show_progress=not args.quiet,
                    log=console.print)
    snap_to_grid(res.model, qg_ptq)
    qg_qat = reimport(res.model, qg_ptq)
    x_test, y_test = test_xy
    t_eval = time.perf_counter()
    codes_ptq = golden_codes(qg_ptq, x_test)
    codes_qat = golden_codes(qg_qat, x_test)
    max_lsb, frac = lsb_error(qat.logits_of(res.model), qg_qat, x_test, codes_qat)
    record = {
        "model": qg_ptq.name, "run": str(args.run), "data": args.data,
        "top1_ptq": round(top1(codes_ptq, y_test), 3), "top1_qat": round(top1(codes_qat, y_test), 3),
        "epochs": sched.epochs, "seconds": round(res.seconds, 1), "max_lsb_error": max_lsb,
        "lsb_error_fraction": round(frac, 6), "eval_seconds": round(time.perf_counter() - t_eval, 1),
        "test_images": len(x_test), "train_images": len(train_xy[0]), "lr": sched.lr, "batch": sched.batch,
        "seed": sched.seed, "schedule": "Adam, cosine decay to 0 over all steps; STE through the quantizers",
        "epoch_loss": [round(v, 5) for v in res.epoch_loss], "loss_before": round(res.loss_before, 5),
        "loss_after": round(res.loss_after, 5), "resumed_after_epoch": res.resumed_after,
        "command": " ".join(["python -m codesign.finetune", *(sys.argv[1:] if argv is None else argv)]),
    }
    bc_out = BitConfig(dict(qg_qat.bitconfig.layers), qg_qat.bitconfig.default_act_bits, qg_qat.bitconfig.model,
                       {**bc.meta, "qat": f"fine-tuned from {args.run}"})
    bc_out.save(out / ".bitconfig.json.tmp").replace(out / "bitconfig.json")
    _write_quantized(qg_qat, out / "quantized")
    tmp_h5 = out / ".qkeras_model.tmp.h5"
    save_h5(res.model, tmp_h5)
    tmp_h5.replace(out / "qkeras_model.h5")
    _write_json(out / "qat.json", record)
    console.print(f"top-1 PTQ {record['top1_ptq']:.2f} % -> QAT {record['top1_qat']:.2f} % (golden model, "
                  f"{len(x_test)} test images); QKeras vs golden of the re-import: max {max_lsb} LSB "
                  f"({100 * frac:.3f} % of logits differ); {out / 'qat.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
