"""Keras side of the zoo: builders, import to IR, caching, resolve_model and the training CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from codesign.graph.execute import run_float
from codesign.graph.ir import Activation, BatchNorm, Conv2D
from codesign.models import SMALL_MODELS, ZOO, load_model, resolve_model

pytestmark = pytest.mark.tf

IMAGENET_MODELS = [n for n, e in ZOO.items() if not e.trained]
FLOAT32_BUDGET_BYTES = 1.5 * 1024 * 1024
# Multiply-accumulates per 224x224 image as published (He et al. 2016; Sandler et al. 2018;
# Howard et al. 2019): an independent check that the builders and the importer agree with the papers.
PUBLISHED_MACS = {
    "resnet18": 1.8e9, "resnet50": 3.8e9, "mobilenetv2": 300e6,
    "mobilenetv3_small": 56e6, "mobilenetv3_large": 219e6,
}


@pytest.fixture(scope="module")
def keras_zoo():  # type: ignore[no-untyped-def]
    from codesign.models import keras_zoo

    return keras_zoo


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_small_model_shapes_size_and_bn_after_every_conv(keras_zoo, name: str) -> None:  # type: ignore[no-untyped-def]
    from codesign.graph.keras_import import from_keras

    model = keras_zoo.build(name)
    assert tuple(model.input_shape[1:]) == ZOO[name].input_shape
    assert tuple(model.output_shape[1:]) == (10,)
    assert model.count_params() * 4 <= FLOAT32_BUDGET_BYTES
    graph = from_keras(model, name=name)
    x = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 1)).astype(np.float32)
    np.testing.assert_allclose(run_float(graph, x), model.predict(x, verbose=0), atol=1e-5)
    for conv in (ly for ly in graph.layers if isinstance(ly, Conv2D)):
        squeeze_excite = graph.in_shapes(conv)[0][:2] == (1, 1)
        if squeeze_excite:
            continue  # SE 1x1 convs act on a pooled 1x1 tensor and carry a bias, as in keras.applications
        consumers = graph.consumers(conv.name)
        assert not conv.use_bias, conv.name
        assert len(consumers) == 1 and isinstance(consumers[0], BatchNorm), conv.name


def test_mobilenet_v3_s_uses_the_hard_activations(keras_zoo) -> None:  # type: ignore[no-untyped-def]
    from codesign.graph.keras_import import from_keras

    graph = from_keras(keras_zoo.build("mobilenetv3_s"))
    kinds = {ly.kind for ly in graph.layers if isinstance(ly, Activation)}
    assert {"hswish", "hsigmoid", "relu"} <= kinds
    assert any(ly.is_depthwise for ly in graph.layers if isinstance(ly, Conv2D))


def test_resnet18_matches_the_paper(keras_zoo) -> None:  # type: ignore[no-untyped-def]
    """He et al.: 20 convs (incl. 3 projections), ~11.7 M params, ~1.8 G MACs at 224x224."""
    from codesign.graph.keras_import import from_keras

    graph = from_keras(keras_zoo.build("resnet18"))
    convs = [ly for ly in graph.layers if isinstance(ly, Conv2D)]
    assert len(convs) == 20
    assert sum(ly.num_params for ly in graph.layers) == pytest.approx(11.69e6, rel=0.01)
    assert graph.total_macs() == pytest.approx(1.82e9, rel=0.02)
    assert graph[graph.outputs[0]].output_shape == (1000,)


@pytest.mark.slow
@pytest.mark.parametrize("name", IMAGENET_MODELS)
def test_imagenet_model_builds_caches_and_reloads(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODESIGN_ZOO_CACHE", str(tmp_path))
    graph = load_model(name)
    assert graph.input_shape == (224, 224, 3)
    assert graph[graph.outputs[0]].output_shape == (1000,)
    assert graph.total_macs() == pytest.approx(PUBLISHED_MACS[name], rel=0.03)
    assert (tmp_path / name / "graph.json").is_file()
    again = load_model(name)  # from the cache this time
    assert [ly.name for ly in again.layers] == [ly.name for ly in graph.layers]
    first = graph.quantizable()[0]
    np.testing.assert_array_equal(again[first.name].params["kernel"], first.params["kernel"])


def test_resolve_model_reads_keras_files(keras_zoo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = keras_zoo.build("resnet_s")
    path = tmp_path / "m.keras"
    model.save(path)
    graph = resolve_model(str(path))
    x = np.random.default_rng(1).uniform(0, 1, (2, 32, 32, 1)).astype(np.float32)
    np.testing.assert_allclose(run_float(graph, x), model.predict(x, verbose=0), atol=1e-5)


@pytest.mark.slow
def test_training_cli_smoke(tmp_path: Path) -> None:
    """One epoch on 256 images (500 test images), then --skip-training re-imports the checkpoint."""
    from codesign.models.train import main

    args = ["--model", "resnet_s", "--epochs", "1", "--limit", "256", "--test-limit", "500",
            "--out", str(tmp_path / "w"), "--checkpoint-dir", str(tmp_path / "ckpt")]
    assert main(args) == 0
    meta = json.loads((tmp_path / "w" / "resnet_s" / "meta.json").read_text())
    assert meta["epochs"] == 1 and meta["train_images"] == 256 and meta["test_images"] == 500
    assert abs(meta["keras_test_top1"] - meta["ir_test_top1"]) < 0.01
    assert meta["ir_vs_keras_max_abs_diff"] < 1e-4
    assert main([*args, "--skip-training"]) == 0
