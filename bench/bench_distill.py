"""Speed and loss reduction of data-free distillation (codesign.distill), NumPy gradient path.

For each trained 32x32 zoo model that is present, distill the default batch (32 images) with
the documented defaults and report s/iteration, total seconds and the loss reduction; then
run a few iterations on ResNet-18 @ 224 (random init, cached IR; built once via TF if not
cached). TensorFlow is blocked while distilling, to show the path is NumPy-only. Writes
``docs/results/distill.md`` and the loss curves/plots under ``build/bench_distill/<model>/``.

    .venv/bin/python bench/bench_distill.py [--models resnet_s,mobilenetv2_s,mobilenetv3_s]
        [--iterations N] [--resnet18-images 8] [--resnet18-iterations 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "docs" / "results" / "distill.md"
RUNS = ROOT / "build" / "bench_distill"
SMALL = ("resnet_s", "mobilenetv2_s", "mobilenetv3_s")


def ensure_resnet18_cached() -> bool:
    """Build and cache the ResNet-18 IR (needs TF) unless it is cached; False if impossible."""
    from codesign.errors import CodesignError
    from codesign.models import load_model, model_dir

    if (model_dir("resnet18") / "graph.json").is_file():
        return True
    try:
        load_model("resnet18")
    except CodesignError as err:
        print(f"skipping resnet18: {err}", file=sys.stderr)
        return False
    return True


def block_tensorflow() -> None:
    """Make any TF/Keras import fail from here on (the distillation path must not need it)."""
    for name in ("tensorflow", "keras", "tf_keras", "qkeras", "hls4ml"):
        sys.modules[name] = None  # type: ignore[assignment]


def bench_model(name: str, n_images: int, iterations: int | None) -> dict | None:
    """Distill one zoo model; None when its weights are absent."""
    from codesign.distill import DEFAULT_ITERATIONS, distill, save_loss_curve
    from codesign.errors import ModelFileError
    from codesign.models import load_model

    try:
        graph = load_model(name)
    except ModelFileError as err:
        print(f"skipping {name}: {err}", file=sys.stderr)
        return None
    iters = DEFAULT_ITERATIONS if iterations is None else iterations
    cpu0 = time.process_time()
    result = distill(graph, n_images=n_images, iterations=iters, progress=True)
    cpu = time.process_time() - cpu0
    save_loss_curve(result, RUNS / name)
    return {
        "real_loss": real_data_loss(graph, n_images),
        "model": name, "input": "x".join(map(str, graph.input_shape)), "images": n_images, "iterations": iters,
        "bn_layers": len(result.per_bn_final), "seconds": result.seconds, "s_per_iter": result.seconds / max(iters, 1),
        "cpu_per_iter": cpu / max(iters, 1),
        "loss0": float(result.loss_curve[0]), "loss_final": float(result.loss_curve[-1]), "reduction": result.reduction,
    }


def real_data_loss(graph, n_images: int) -> float | None:
    """Eq.-2 loss of ``n_images`` real test images (the small models' dataset): a reachable floor."""
    from codesign.distill import distill_loss
    from codesign.errors import CodesignError
    from codesign.models import ZOO

    entry = ZOO.get(graph.name)
    if entry is None or not entry.trained:
        return None
    try:
        from codesign.datasets import load_dataset

        x, _ = load_dataset(entry.dataset, "test")
    except CodesignError:
        return None
    pick = np.random.default_rng(0).choice(len(x), n_images, replace=False)
    return distill_loss(graph, x[pick], with_grad=False)[0]


def render(rows: list[dict], command: str, load: tuple[float, float, float], peak_mib: float) -> str:
    """The results page (markdown)."""
    from codesign.distill import DEFAULT_IMAGES, DEFAULT_ITERATIONS, DEFAULT_LR, INIT_STD, LR_FLOOR

    lines = [
        "# Data-free distillation (BN-statistics matching, paper Eq. 2): speed and loss reduction",
        "",
        f"Command: `{command}`",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, NumPy {np.__version__}; "
        f"load average at start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (other jobs share the cores, "
        "so times are upper bounds).",
        f"Defaults: {DEFAULT_IMAGES} images, {DEFAULT_ITERATIONS} iterations, Adam lr {DEFAULT_LR} cosine-decayed "
        f"to lr*{LR_FLOOR}, N(0, {INIT_STD}^2) init, seed 0, no clipping. NumPy forward + input-gradient "
        "(`codesign.graph.grad`), float32, TensorFlow blocked.",
        "",
        "| model | input | images | iterations | BN layers | s/iteration (wall) | CPU s/iteration | total s (wall) "
        "| loss before | loss after | reduction | loss of as many real test images |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['input']} | {r['images']} | {r['iterations']} | {r['bn_layers']} | "
            f"{r['s_per_iter']:.3f} | {r['cpu_per_iter']:.3f} | {r['seconds']:.1f} | {r['loss0']:.4g} | {r['loss_final']:.4g} | "
            f"{r['reduction']:.1f}x | {'-' if r['real_loss'] is None else format(r['real_loss'], '.4g')} |"
        )
    lines += [
        "",
        "Loss = sum over BN layers of ||mu~ - mu||^2 + ||sigma~ - sigma||^2 at each BN's input; 'reduction' is "
        "loss before the first step / loss of the returned images. The last column is the same loss for "
        "real Fashion-MNIST test images (seeded pick): the level a batch of real data reaches. ResNet-18 is random-init (Keras BN stats "
        "mean 0, var 1) and runs only a few iterations, to show the gradient path scales to 224x224. "
        "CPU s/iteration is process CPU time (all BLAS threads); with other jobs on the cores it is the "
        "steadier figure, and wall time on an idle machine is at most about that.",
        f"Peak RSS of the bench process: {peak_mib:.0f} MiB. Loss curves (CSV + PNG) and images: "
        "`build/bench_distill/<model>/`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the bench and write docs/results/distill.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(SMALL), help="comma-separated trained zoo models")
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=None, help="default: codesign.distill.DEFAULT_ITERATIONS")
    ap.add_argument("--resnet18-images", type=int, default=8)
    ap.add_argument("--resnet18-iterations", type=int, default=3, help="0 skips ResNet-18")
    ap.add_argument("--no-write", action="store_true", help="print the table, do not write docs/results")
    args = ap.parse_args(argv)
    load = os.getloadavg()
    with_r18 = args.resnet18_iterations > 0 and ensure_resnet18_cached()
    block_tensorflow()
    rows = [r for m in args.models.split(",") if m and (r := bench_model(m, args.images, args.iterations))]
    if with_r18:
        r18 = bench_model("resnet18", args.resnet18_images, args.resnet18_iterations)
        rows += [r18] if r18 else []
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    command = ".venv/bin/python bench/bench_distill.py" + ("".join(f" {a}" for a in (argv or sys.argv[1:])))
    text = render(rows, command, load, peak)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    t0 = time.perf_counter()
    code = main()
    print(f"bench took {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    raise SystemExit(code)
