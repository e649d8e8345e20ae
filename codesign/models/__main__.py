"""``python -m codesign.models``: list the zoo, or build and cache an ImageNet-shape model's IR.

``build`` needs TensorFlow (run it off-board); copy the resulting directory to the board,
where :func:`codesign.models.load_model` then reads it with NumPy only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from codesign.errors import run_cli
from codesign.models import SMALL_MODELS, WEIGHTS_DIR, ZOO, build_and_cache, model_dir
from codesign.models.evaluate import read_meta


def results_table() -> str:
    """Markdown table of the committed small models (all figures read from meta.json)."""
    rows = [
        "| model | params | MACs / image | input | dataset | epochs | Keras test top-1 | IR test top-1 |"
        " weights on disk |",
        "|---|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for name in SMALL_MODELS:
        d = WEIGHTS_DIR / name
        m = read_meta(d)
        size_kib = sum(p.stat().st_size for p in d.iterdir()) / 1024
        rows.append(
            f"| `{name}` | {m['params']:,} | {m['macs'] / 1e6:.2f} M | {'x'.join(map(str, m['input_shape']))} "
            f"| {m['dataset']} ({m['test_images']:,} test) | {m['epochs']} | {100 * m['keras_test_top1']:.2f} % "
            f"| {100 * m['ir_test_top1']:.2f} % | {size_kib:.0f} KiB |"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(prog="python -m codesign.models", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the zoo models")
    sub.add_parser("table", help="markdown table of the trained small models, from their meta.json")
    b = sub.add_parser("build", help="build (seeded random init), import and cache ImageNet-shape models")
    b.add_argument("names", nargs="+", choices=[n for n, e in ZOO.items() if not e.trained])
    b.add_argument("--out", type=Path, default=None, help="output root (default: the zoo cache)")
    args = p.parse_args(argv)
    if args.command == "list":
        for name, e in ZOO.items():
            shape = "x".join(map(str, e.input_shape))
            print(f"{name:18s} {shape:>11s} {e.classes:5d} classes  {e.dataset:14s} {e.description}")
        return 0
    if args.command == "table":
        print(results_table())
        return 0
    for name in args.names:
        out = (args.out / name) if args.out else model_dir(name)
        graph = build_and_cache(name, out)
        print(f"{name}: {len(graph)} layers, {graph.total_macs() / 1e6:.1f} M MACs -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
