"""Top-1 accuracy of an IR graph with the NumPy float executor (runs on the board)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import ModelFileError
from codesign.graph.ir import Graph

META_FILE = "meta.json"


def predict_classes(graph: Graph, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Arg-max class of every image, executing the IR in float32 batch by batch."""
    from codesign.graph.execute import run_float

    preds = [np.argmax(run_float(graph, x[i:i + batch_size]), axis=-1) for i in range(0, len(x), batch_size)]
    return np.concatenate(preds).astype(np.int64) if preds else np.zeros(0, np.int64)


def top1(graph: Graph, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> float:
    """Fraction of images whose arg-max prediction equals the label."""
    return float(np.mean(predict_classes(graph, x, batch_size) == y))


def read_meta(directory: str | Path) -> dict[str, Any]:
    """The ``meta.json`` written next to a trained model's IR by the training script."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise ModelFileError(f"training record {path} does not exist.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ModelFileError(f"training record {path} is not valid JSON ({err}).") from None
