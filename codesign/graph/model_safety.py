"""Refuse Keras model files whose layers carry serialized Python code, before Keras reads them.

A legacy ``.h5`` model stores its architecture as JSON (the ``model_config`` attribute). A
``Lambda`` layer's config holds its function as marshalled Python bytecode, and
``keras.models.load_model`` *runs* that code while it rebuilds the layer, before the importer
sees the layer and refuses it. Keras' safe mode protects ``.keras`` archives but not ``.h5``
files. So the config is read here with h5py/zipfile only (no Keras, no deserialization) and
every layer that carries code is reported; loading proceeds only with ``trust_model=True``
(the CLIs' ``--trust-model``, off by default).

A layer "carries code" when its class is ``Lambda``, or when anything in its config is a
serialized function: a ``function_type``/``output_shape_type`` of ``"lambda"`` or a
``__lambda__`` / ``function`` object (Keras 3 spelling).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from codesign.errors import ModelFileError

CODE_CLASSES = frozenset({"Lambda", "__lambda__"})
_CODE_KEYS = ("function_type", "output_shape_type", "mask_type")


def _carries_code(node: Any) -> bool:
    """True when a (nested) config fragment holds a serialized Python function."""
    if isinstance(node, list):
        return any(_carries_code(v) for v in node)
    if not isinstance(node, dict):
        return False
    if node.get("class_name") in CODE_CLASSES:
        return True
    if any(node.get(k) == "lambda" for k in _CODE_KEYS):
        return True
    return any(_carries_code(v) for v in node.values())


def _layers(config: Any) -> list[dict[str, Any]]:
    """Every layer config in a model config, nested models' layers included."""
    out: list[dict[str, Any]] = []
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            layers = node.get("config", {}).get("layers") if isinstance(node.get("config"), dict) else None
            if isinstance(layers, list):
                out.extend(ly for ly in layers if isinstance(ly, dict))
                stack.extend(layers)
    return out


def unsafe_layers(config: Any) -> list[tuple[str, str]]:
    """(layer name, class name) of every layer whose config carries code."""
    found = []
    for ly in _layers(config):
        own = {k: v for k, v in ly.items() if k != "config"}
        cfg = ly.get("config", {})
        inner = {k: v for k, v in cfg.items() if k != "layers"} if isinstance(cfg, dict) else cfg
        if ly.get("class_name") in CODE_CLASSES or _carries_code(own) or _carries_code(inner):
            name = cfg.get("name", "?") if isinstance(cfg, dict) else "?"
            found.append((str(name), str(ly.get("class_name", "?"))))
    if not found and _layers(config) == [] and _carries_code(config):
        found.append(("?", "?"))
    return found


def read_config(path: Path) -> Any | None:
    """The model's architecture JSON without deserializing it (None: the file holds none)."""
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        import h5py

        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise ModelFileError(f"cannot load Keras model file {str(path)!r}: its model config is unreadable ({err}). "
                             "Is it a complete .h5/.keras model file?") from None
    if raw is None:
        return None
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def check_model_file(path: Path, trust_model: bool = False) -> None:
    """Raise ModelFileError when the file's layers carry code and ``trust_model`` is off."""
    if trust_model:
        return
    config = read_config(path)
    bad = unsafe_layers(config) if config is not None else []
    if bad:
        names = ", ".join(f"{n!r} ({c})" for n, c in bad)
        raise ModelFileError(
            f"model file {str(path)!r} contains layers that carry serialized Python code: {names}. Loading it "
            "would run that code, so it was not loaded. If you trust the file, pass --trust-model (the import "
            "still refuses Lambda layers; replace them with built-in Keras layers and re-save the model)."
        )
