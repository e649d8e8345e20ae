"""Save and load IR graphs as ``graph.json`` + ``weights.npz`` (format-versioned, no pickle)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import ModelFileError
from codesign.graph.ir import Graph, layer_from_attrs
from codesign.graph.quant_hints import QuantHints

FORMAT = "codesign-ir"
FORMAT_VERSION = 1
GRAPH_FILE = "graph.json"
WEIGHTS_FILE = "weights.npz"


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    """JSON-ready description of the graph structure (no weights; quantizer grids when present)."""
    out = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": graph.name,
        "outputs": list(graph.outputs),
        "layers": [
            {
                "name": ly.name,
                "op": ly.op,
                "inputs": list(ly.inputs),
                "output_shape": list(ly.output_shape),
                "attrs": ly.attrs(),
                "params": sorted(ly.params),
            }
            for ly in graph.layers
        ],
    }
    if graph.hints:
        out["quant_hints"] = graph.hints.to_dict()
    return out


def save_graph(graph: Graph, directory: str | Path) -> Path:
    """Write ``graph.json`` and ``weights.npz`` into ``directory`` (created if needed)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    arrays = {f"{ly.name}/{k}": np.asarray(v) for ly in graph.layers for k, v in ly.params.items()}
    tmp_w = d / (WEIGHTS_FILE + ".tmp.npz")
    np.savez_compressed(tmp_w, **arrays)
    tmp_w.replace(d / WEIGHTS_FILE)
    tmp_g = d / (GRAPH_FILE + ".tmp")
    tmp_g.write_text(json.dumps(graph_to_dict(graph), indent=1))
    tmp_g.replace(d / GRAPH_FILE)
    return d


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelFileError(f"IR file {path} does not exist.")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"IR file {path} is not valid JSON ({err}).") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a codesign IR file (missing format={FORMAT!r}).")
    if data.get("version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has IR format version {data.get('version')}; this codesign reads version {FORMAT_VERSION}."
        )
    return data


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise ModelFileError(f"weights file {path} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise ModelFileError(f"weights file {path} is corrupt or not an .npz archive ({err}).") from None


def load_graph(directory: str | Path) -> Graph:
    """Load a graph saved by :func:`save_graph`, validating shapes and weights."""
    d = Path(directory)
    if not d.is_dir():
        raise ModelFileError(f"IR directory {d} does not exist.")
    data = _read_json(d / GRAPH_FILE)
    weights = _read_npz(d / WEIGHTS_FILE)
    try:
        layers = []
        for entry in data["layers"]:
            ly = layer_from_attrs(entry["op"], entry["name"], entry["inputs"], entry.get("attrs", {}))
            for k in entry.get("params", []):
                key = f"{ly.name}/{k}"
                if key not in weights:
                    raise ModelFileError(f"weights file {d / WEIGHTS_FILE} lacks {key!r} needed by the model.")
                ly.params[k] = weights.pop(key)
            layers.append(ly)
        hints = QuantHints.from_dict(data["quant_hints"]) if data.get("quant_hints") else None
        graph = Graph(data.get("name", d.name), layers, list(data["outputs"]), hints)
    except (KeyError, TypeError) as err:
        raise ModelFileError(f"IR file {d / GRAPH_FILE} is malformed (missing or bad field {err}).") from None
    if weights:
        extra = ", ".join(sorted(weights)[:5])
        raise ModelFileError(f"weights file {d / WEIGHTS_FILE} has arrays the model does not use: {extra}.")
    graph.infer_shapes()
    return graph
