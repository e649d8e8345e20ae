"""Loading .h5/.keras model files robustly (QKeras objects, the tf_keras double-import trap).

Why the .keras path rewrites the archive: QKeras imports tensorflow_model_optimization, which
imports ``tf_keras``, a second copy of Keras 2.15. Once it is imported, Keras 2.15's .keras
loader resolves built-in class names such as ``keras.layers.ReLU`` to the *tf_keras* classes,
mixes them with Keras' own InputLayer and then loops forever in
``functional.reconstruct_from_config``. A .keras archive is a zip holding ``config.json``, so
the loader here pins every built-in class to the ``keras`` package's own class (through
``registered_name`` + ``custom_objects``, which take precedence) in a temporary copy.
TensorFlow is imported lazily; this module is never imported on the board.
"""

from __future__ import annotations

import importlib
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from codesign.errors import ModelFileError
from codesign.tf_quiet import silenced

KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
_PIN_PREFIX = "codesign_pinned>"


def quantized_custom_objects() -> dict[str, Any]:
    """QKeras layers and quantizers, so a user's QKeras .h5/.keras file deserialises."""
    objects: dict[str, Any] = {}
    try:
        from qkeras.utils import _add_supported_quantized_objects
    except ImportError:  # plain Keras files still load without QKeras
        return objects
    _add_supported_quantized_objects(objects)
    return objects


def _keras_class(module: str, class_name: str) -> Any:
    """The class ``class_name`` of the ``keras`` package module ``module`` (None if absent)."""
    try:
        return vars(importlib.import_module(module)).get(class_name)
    except ImportError:
        return None


def _pin_builtins(node: Any, pinned: dict[str, Any]) -> None:
    """Point every built-in Keras object of a .keras config at the ``keras`` package's class."""
    if isinstance(node, list):
        for item in node:
            _pin_builtins(item, pinned)
        return
    if not isinstance(node, dict):
        return
    module, class_name = node.get("module"), node.get("class_name")
    if isinstance(module, str) and isinstance(class_name, str) and module.split(".")[0] == "keras":
        cls = _keras_class(module, class_name)
        if cls is not None:
            key = f"{_PIN_PREFIX}{module}.{class_name}"
            node["registered_name"] = key
            pinned[key] = cls
    for value in node.values():
        _pin_builtins(value, pinned)


def _load_keras_v3(path: Path, custom_objects: dict[str, Any]) -> Any:
    """Load a .keras archive after pinning its built-in classes (see the module docstring)."""
    import tensorflow as tf

    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        pinned: dict[str, Any] = {}
        _pin_builtins(config, pinned)
        with tempfile.TemporaryDirectory(prefix="codesign_keras_") as tmp:
            copy = Path(tmp) / path.name
            with zipfile.ZipFile(copy, "w") as out:
                for item in archive.infolist():
                    data = json.dumps(config) if item.filename == "config.json" else archive.read(item)
                    out.writestr(item, data)
            return tf.keras.models.load_model(copy, custom_objects={**custom_objects, **pinned}, compile=False)


def load_keras_model(path: str | Path, trust_model: bool = False) -> Any:
    """Load a .h5/.keras model file (QKeras objects registered); bad files raise ModelFileError.

    Layers that carry serialized code (Lambda) are refused before Keras reads the file unless
    ``trust_model`` (:mod:`codesign.graph.model_safety`).
    """
    p = Path(path)
    if p.is_dir():
        raise ModelFileError(
            f"model path {str(p)!r} is a directory (a TF SavedModel?); save the model as .h5 or .keras."
        )
    if not p.is_file():
        raise ModelFileError(f"model file {str(p)!r} does not exist.")
    suffix = p.suffix.lower()
    if suffix not in KERAS_SUFFIXES:
        raise ModelFileError(
            f"model file {str(p)!r} has suffix {p.suffix!r}; expected one of {', '.join(KERAS_SUFFIXES)}."
        )
    from codesign.graph.model_safety import check_model_file

    check_model_file(p, trust_model)
    import tensorflow as tf

    custom_objects = quantized_custom_objects()
    try:  # rebuilding QKeras layers reuses one unseeded initializer: Keras warns, we set the weights
        with silenced():
            if suffix == ".keras":
                return _load_keras_v3(p, custom_objects)
            return tf.keras.models.load_model(p, custom_objects=custom_objects, compile=False)
    except Exception as err:  # Keras raises many types (OSError, ValueError, BadZipFile...) for bad files
        text = str(err).strip()
        first_line = text.splitlines()[0] if text else type(err).__name__
        raise ModelFileError(
            f"cannot load Keras model file {str(p)!r}: {first_line}. Is it a complete .h5/.keras file "
            "saved by Keras 2.15 / QKeras?"
        ) from None
