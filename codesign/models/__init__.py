"""The model zoo: named CNNs as codesign IR graphs.

Importing this package needs only NumPy (it runs on the board). The small trained models
(``resnet_s``, ``mobilenetv2_s``, ``mobilenetv3_s``) are committed as IR under
``codesign/models/weights/<name>/`` and load without TensorFlow. The ImageNet-shape models
are random-init Keras models: they are built (TensorFlow needed), imported to IR and cached
under ``build/zoo/<name>/`` (or ``$CODESIGN_ZOO_CACHE/<name>/``); a cached IR then loads
without TensorFlow, so generate it off-board with ``python -m codesign.models build NAME``
and copy the directory to the board.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from codesign.errors import CodesignError, ModelFileError
from codesign.graph.ir import Graph, Shape

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
REPO_ROOT = Path(__file__).resolve().parents[2]
ZOO_SEED = 0


@dataclass(frozen=True)
class ZooEntry:
    """Metadata of one zoo model."""

    name: str
    family: str
    input_shape: Shape
    classes: int
    dataset: str  # "imagenet" (shape only, random init) or the training dataset
    trained: bool
    description: str
    input_range: tuple[float, float] | None = None  # pixel range the model was trained on (None: unknown)


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry("resnet18", "resnet", (224, 224, 3), 1000, "imagenet", False,
                 "ResNet-18 (BasicBlock [2,2,2,2]), random init"),
        ZooEntry("resnet50", "resnet", (224, 224, 3), 1000, "imagenet", False,
                 "ResNet-50 (keras.applications), random init"),
        ZooEntry("mobilenetv2", "mobilenetv2", (224, 224, 3), 1000, "imagenet", False,
                 "MobileNetV2 1.0 (keras.applications), random init"),
        ZooEntry("mobilenetv3_small", "mobilenetv3", (224, 224, 3), 1000, "imagenet", False,
                 "MobileNetV3-Small (keras.applications), random init"),
        ZooEntry("mobilenetv3_large", "mobilenetv3", (224, 224, 3), 1000, "imagenet", False,
                 "MobileNetV3-Large (keras.applications), random init"),
        ZooEntry("resnet_s", "resnet", (32, 32, 1), 10, "fashion-mnist", True,
                 "ResNet-8 style (16/32/64, one BasicBlock per stage), trained", (0.0, 1.0)),
        ZooEntry("mobilenetv2_s", "mobilenetv2", (32, 32, 1), 10, "fashion-mnist", True,
                 "small MobileNetV2 (7 inverted residuals, ReLU6), trained", (0.0, 1.0)),
        ZooEntry("mobilenetv3_s", "mobilenetv3", (32, 32, 1), 10, "fashion-mnist", True,
                 "small MobileNetV3 (6 blocks, squeeze-excite, h-swish), trained", (0.0, 1.0)),
    )
}

SMALL_MODELS = tuple(n for n, e in ZOO.items() if e.trained)


def zoo_entry(name: str) -> ZooEntry:
    """Metadata of zoo model ``name``; unknown names raise a CodesignError listing the zoo."""
    try:
        return ZOO[name]
    except KeyError:
        raise CodesignError(f"unknown zoo model {name!r}; the zoo has: {', '.join(ZOO)}.") from None


def cache_dir() -> Path:
    """Where built ImageNet-shape IRs are cached ($CODESIGN_ZOO_CACHE or <repo>/build/zoo)."""
    return Path(os.environ.get("CODESIGN_ZOO_CACHE", REPO_ROOT / "build" / "zoo"))


def model_dir(name: str) -> Path:
    """IR directory of zoo model ``name`` (committed weights or build cache)."""
    entry = zoo_entry(name)
    return WEIGHTS_DIR / name if entry.trained else cache_dir() / name


def load_model(name: str) -> Graph:
    """Load zoo model ``name`` as an IR graph (building and caching the random-init ones)."""
    from codesign.graph.serialize import load_graph

    entry = zoo_entry(name)
    directory = model_dir(name)
    if entry.trained:
        if not (directory / "graph.json").is_file():
            raise ModelFileError(
                f"the trained weights of {name!r} are missing from {directory}; regenerate them off-board "
                f"with `python -m codesign.models.train --model {name}` (needs TensorFlow)."
            )
        return load_graph(directory)
    if (directory / "graph.json").is_file():
        try:
            return load_graph(directory)
        except ModelFileError:
            if not _tensorflow_available():
                raise
            # A stale cache (e.g. an older IR format): rebuild it below.
    return build_and_cache(name)


def build_and_cache(name: str, directory: Path | None = None) -> Graph:
    """Build the Keras model ``name`` (seeded random init), import it and save the IR."""
    from codesign.graph.serialize import save_graph

    zoo_entry(name)
    if not _tensorflow_available():
        raise CodesignError(
            f"zoo model {name!r} is not cached at {model_dir(name)} and building it needs TensorFlow. "
            f"Generate it off-board with `python -m codesign.models build {name}` "
            f"(pip install 'codesign[ml]'), then copy build/zoo/{name} to the same place here "
            "(or point $CODESIGN_ZOO_CACHE at its parent)."
        )
    from codesign.graph.keras_import import from_keras
    from codesign.models.keras_zoo import build

    graph = from_keras(build(name, seed=ZOO_SEED), name=name)
    save_graph(graph, directory or model_dir(name))
    return graph


def resolve_model(spec: str, input_shape: Shape | None = None, trust_model: bool = False) -> Graph:
    """A zoo name, an IR directory, or a Keras .h5/.keras file -> IR graph.

    ``input_shape`` (H, W, C) fixes the dimensions a Keras file leaves open; for a zoo model or
    an IR directory (fixed shapes) it must equal the model's shape. ``trust_model`` allows Keras
    layers that carry serialized code (see :mod:`codesign.graph.model_safety`).
    """
    spec = str(spec)
    if spec in ZOO:
        return _fixed_shape(load_model(spec), input_shape)
    path = Path(spec)
    if path.is_dir():
        from codesign.graph.serialize import load_graph

        return _fixed_shape(load_graph(path), input_shape)
    if path.suffix in (".h5", ".keras", ".hdf5"):
        if not path.is_file():
            raise ModelFileError(f"Keras model file {path} does not exist.")
        from codesign.graph.keras_import import load_keras_file

        return load_keras_file(path, input_shape=input_shape, trust_model=trust_model)
    raise CodesignError(
        f"cannot resolve model {spec!r}: it is not a zoo name ({', '.join(ZOO)}), "
        "an IR directory (graph.json + weights.npz) or a Keras .h5/.keras file."
    )


def _fixed_shape(graph: Graph, input_shape: Shape | None) -> Graph:
    """A model with a fixed input shape: ``--input-shape``, when given, must agree with it."""
    if input_shape is not None and tuple(input_shape) != tuple(graph.input_shape):
        from codesign.errors import ShapeError

        raise ShapeError(f"--input-shape {','.join(map(str, input_shape))} does not match model {graph.name!r}, "
                         f"whose input is {','.join(map(str, graph.input_shape))} (only Keras files with unknown "
                         "height/width take another shape).")
    return graph


def _tensorflow_available() -> bool:
    import importlib.util
    import sys

    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"] is not None
    return importlib.util.find_spec("tensorflow") is not None


__all__ = [
    "SMALL_MODELS", "WEIGHTS_DIR", "ZOO", "ZooEntry", "build_and_cache", "cache_dir",
    "load_model", "model_dir", "resolve_model", "zoo_entry",
]
