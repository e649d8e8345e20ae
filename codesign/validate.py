"""Up-front checks of CLI arguments and input files, run before any expensive work.

Every CLI (search, oqa, ip, inspect) calls these right after parsing, and again once the
model is loaded, so that a bad ``--out``, ``--ratio``, ``--hw-table``, ``--val-data``,
``--pin-first-last`` or board argument is refused in one paragraph (exit 2) *before*
distillation or measurement starts and before anything in the output location is written.
NumPy-only (runs on the board).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from codesign.errors import CodesignError, ModelFileError, ShapeError
from codesign.graph.ir import Graph


class ArgumentError(CodesignError):
    """A CLI argument has a value the tool cannot use."""


# ---- numbers ---------------------------------------------------------------------------------


def positive(value: float | None, flag: str, allow_zero: bool = False) -> None:
    """``value`` (when given) must be a finite number > 0 (>= 0 with ``allow_zero``)."""
    if value is None:
        return
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ArgumentError(f"{flag} must be a finite number {bound}, got {value!r}.")


def fraction(value: float | None, flag: str) -> None:
    """``value`` (when given) must lie in [0, 1]."""
    if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ArgumentError(f"{flag} must be in [0, 1] (0: all layers at the narrowest width, 1: widest), "
                            f"got {value!r}.")


def pins_in_candidates(pin: int | None, bits: Sequence[int]) -> None:
    """A pinned width must be one of the candidate widths the ILP chooses from."""
    if pin is not None and pin not in bits:
        raise ArgumentError(f"--pin-first-last {pin} is not one of the candidate widths --bits "
                            f"{','.join(map(str, bits))}; pin a candidate width or add {pin} to --bits.")


def input_shape(text: str | None) -> tuple[int, int, int] | None:
    """``--input-shape H,W,C`` -> (H, W, C) of positive integers (None when not given)."""
    if text is None:
        return None
    try:
        dims = tuple(int(v) for v in text.split(","))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) <= 0:
        raise ArgumentError(f"--input-shape must be three positive integers H,W,C (e.g. 96,96,3), got {text!r}.")
    return dims


# ---- output locations ------------------------------------------------------------------------


def _probe_writable(path: Path, flag: str) -> None:
    """The nearest existing ancestor of ``path`` must be a directory we can create files in."""
    anc = path.absolute()
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise ArgumentError(f"{flag} {str(path)!r} lies under {str(anc)!r}, which is a file, not a directory.")
    try:  # a real probe: os.access says yes to root even on read-only file systems
        fd, probe = tempfile.mkstemp(prefix=".codesign_probe_", dir=anc)
    except OSError as err:
        raise ArgumentError(f"{flag} {str(path)!r} is not writable ({str(anc)!r}: {err.strerror}).") from None
    os.close(fd)
    os.unlink(probe)


def output_dir(path: str | Path, flag: str = "--out") -> Path:
    """An output *directory*: must not be an existing file, and must be creatable/writable."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ArgumentError(f"{flag} {str(p)!r} is an existing file; it must be a directory (a run/output "
                            "folder). Choose another path or remove the file.")
    _probe_writable(p, flag)
    return p


def output_file(path: str | Path, flag: str = "--out") -> Path:
    """An output *file*: must not be a directory, and its folder must be creatable/writable."""
    p = Path(path)
    if p.is_dir():
        raise ArgumentError(f"{flag} {str(p)!r} is a directory; it must be a file path (e.g. "
                            f"{str(p / 'hw.csv')!r}).")
    if p.exists() and not os.access(p, os.W_OK):
        raise ArgumentError(f"{flag} {str(p)!r} exists and is not writable.")
    _probe_writable(p.parent if str(p.parent) else Path("."), flag)
    return p


# ---- model and data --------------------------------------------------------------------------


def finite_weights(graph: Graph) -> None:
    """Every weight must be finite: NaN/inf would only surface deep inside quantization."""
    bad = [f"{ly.name}.{k}" for ly in graph.layers for k, v in ly.params.items()
           if v.dtype.kind == "f" and not np.isfinite(v).all()]
    if bad:
        more = f" (and {len(bad) - 8} more)" if len(bad) > 8 else ""
        raise ModelFileError(f"model {graph.name!r} has NaN or infinite weights in {', '.join(bad[:8])}{more}; "
                             "the model file is corrupt or training diverged.")


def num_classes(graph: Graph) -> int:
    """Number of classes: the last axis of the model's (single) output."""
    return int(graph[graph.outputs[0]].output_shape[-1])


def val_data(x: np.ndarray, y: np.ndarray, graph: Graph, source: str) -> None:
    """Validation images must fit the model's input and labels its classes."""
    want = tuple(graph.input_shape)
    if tuple(x.shape[1:]) != want:
        raise ShapeError(f"--val-data {source!r} has images of shape {tuple(x.shape[1:])}, but model "
                         f"{graph.name!r} takes {want}.")
    classes = num_classes(graph)
    if y.size and (int(y.min()) < 0 or int(y.max()) >= classes):
        outside = np.unique(y[(y < 0) | (y >= classes)])
        shown = ", ".join(str(int(v)) for v in outside[:8])
        raise ArgumentError(f"--val-data {source!r} has labels outside the model's {classes} classes "
                            f"(0..{classes - 1}): {shown}{' ...' if len(outside) > 8 else ''}. Is it the "
                            "dataset this model was trained on?")


def board_available(kind: str, bits: Sequence[int], ip_dir: str | Path | None) -> None:
    """The board can be opened: generated IP for every width (sim), the pynq package (pynq)."""
    from codesign.hw.overlay import overlay_spec

    overlay_spec(list(bits), ip_dir)  # MissingIPError names the missing cores and how to make them
    if kind == "pynq":
        import importlib.util

        if importlib.util.find_spec("pynq") is None:
            raise ArgumentError("--board pynq needs the pynq package (run on the PYNQ board, or use --board sim "
                                "or --hw-table with a table measured there).")


# ---- shared model-loading options ------------------------------------------------------------


def add_model_options(ap: argparse.ArgumentParser) -> None:
    """``--input-shape`` and ``--trust-model``: every CLI that loads a model takes them."""
    ap.add_argument("--input-shape", metavar="H,W,C",
                    help="input shape for a model whose height/width are unknown (None) in the file")
    ap.add_argument("--trust-model", action="store_true",
                    help="allow layers that carry serialized Python code (Keras Lambda); off by default "
                         "because loading them runs that code")


def load_model(spec: str, ns: argparse.Namespace) -> Graph:
    """Resolve ``spec`` with the shared options and check it can be quantized and its weights
    are finite."""
    from codesign.models import resolve_model
    from codesign.quant.qgraph import plan_fusion

    graph = resolve_model(spec, input_shape=input_shape(ns.input_shape), trust_model=ns.trust_model)
    plan_fusion(graph)  # a structure quantization refuses (mid-graph softmax, several outputs)
    finite_weights(graph)
    return graph
