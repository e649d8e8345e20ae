"""Save/load a quantized model (``QGraph``) as ``qgraph.json`` + ``qparams.npz`` (no pickle)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import ModelFileError
from codesign.quant.bitconfig import BitConfig
from codesign.quant.qgraph import QGraph, QNode, QTensor

FORMAT = "codesign-qgraph"
FORMAT_VERSION = 1


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def save_qgraph(qg: QGraph, directory: str | Path) -> Path:
    """Write the quantized model into ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": qg.name,
        "input": qg.input,
        "output": qg.output,
        "softmax": qg.softmax,
        "bitconfig": qg.bitconfig.to_dict(),
        "tensors": [
            {"name": t.name, "shape": list(t.shape), "scale": t.scale, "bits": t.bits, "signed": t.signed}
            for t in qg.tensors.values()
        ],
        "nodes": [
            {"name": n.name, "kind": n.kind, "inputs": n.inputs, "output": n.output,
             "attrs": {k: _jsonable(v) for k, v in n.attrs.items()}, "params": sorted(n.params), "fused": n.fused}
            for n in qg.nodes
        ],
    }
    arrays = {f"{n.name}/{k}": np.asarray(v) for n in qg.nodes for k, v in n.params.items()}
    np.savez_compressed(d / "qparams.npz", **arrays)
    (d / "qgraph.json").write_text(json.dumps(meta, indent=1))
    return d


_TUPLE_ATTRS = {"kernel", "strides", "padding", "pool", "target"}


def load_qgraph(directory: str | Path) -> QGraph:
    """Load a quantized model written by :func:`save_qgraph`."""
    d = Path(directory)
    try:
        meta = json.loads((d / "qgraph.json").read_text())
    except FileNotFoundError:
        raise ModelFileError(f"quantized model {d / 'qgraph.json'} does not exist.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"quantized model {d / 'qgraph.json'} is not valid JSON ({err}).") from None
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise ModelFileError(f"{d / 'qgraph.json'} is not a {FORMAT} v{FORMAT_VERSION} file.")
    try:
        with np.load(d / "qparams.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (FileNotFoundError, zipfile.BadZipFile, ValueError, OSError) as err:
        raise ModelFileError(f"quantized parameters {d / 'qparams.npz'} are missing or corrupt ({err}).") from None
    try:
        tensors = {t["name"]: QTensor(t["name"], tuple(t["shape"]), float(t["scale"]), int(t["bits"]), bool(t["signed"]))
                   for t in meta["tensors"]}
        nodes = []
        for n in meta["nodes"]:
            attrs = {k: tuple(v) if k in _TUPLE_ATTRS and isinstance(v, list) else v for k, v in n["attrs"].items()}
            params = {k: arrays[f"{n['name']}/{k}"] for k in n["params"]}
            nodes.append(QNode(n["name"], n["kind"], list(n["inputs"]), n["output"], attrs, params, list(n["fused"])))
        return QGraph(meta["name"], meta["input"], meta["output"], bool(meta["softmax"]), tensors, nodes,
                      BitConfig.from_dict(meta["bitconfig"]))
    except KeyError as err:
        raise ModelFileError(f"quantized model in {d} is malformed (missing {err}).") from None
