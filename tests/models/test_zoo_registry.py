"""The zoo registry and the committed small models, without TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from codesign.errors import CodesignError
from codesign.models import SMALL_MODELS, WEIGHTS_DIR, ZOO, load_model, resolve_model
from codesign.models.evaluate import read_meta

pytestmark = pytest.mark.unit

BLOCKED = ["tensorflow", "keras", "tf_keras", "qkeras", "hls4ml", "torch"]
EXPECTED = {
    "resnet18", "resnet50", "mobilenetv2", "mobilenetv3_small", "mobilenetv3_large",
    "resnet_s", "mobilenetv2_s", "mobilenetv3_s",
}
WEIGHTS_BUDGET_BYTES = 5 * 1024 * 1024


def _run_without_tf(body: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    code = f"import sys\nfor name in {BLOCKED!r}:\n    sys.modules[name] = None\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_zoo_names_and_metadata() -> None:
    assert set(ZOO) == EXPECTED
    assert set(SMALL_MODELS) == {"resnet_s", "mobilenetv2_s", "mobilenetv3_s"}
    for name, e in ZOO.items():
        assert e.name == name
        assert e.input_shape == ((32, 32, 1) if e.trained else (224, 224, 3))
        assert e.classes == (10 if e.trained else 1000)


def test_unknown_zoo_name_lists_the_zoo() -> None:
    with pytest.raises(CodesignError) as err:
        load_model("vgg16")
    assert "vgg16" in str(err.value)
    for name in EXPECTED:
        assert name in str(err.value)


def test_resolve_model_rejects_unknown_specs(tmp_path: Path) -> None:
    with pytest.raises(CodesignError, match="zoo name"):
        resolve_model("not_a_model")
    with pytest.raises(CodesignError, match="does not exist"):
        resolve_model(str(tmp_path / "missing.h5"))


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_committed_small_model_loads(name: str) -> None:
    graph = load_model(name)
    assert graph.input_shape == (32, 32, 1)
    assert graph[graph.outputs[0]].output_shape == (10,)
    meta = read_meta(WEIGHTS_DIR / name)
    assert meta["model"] == name and meta["params"] == sum(ly.num_params for ly in graph.layers)
    assert meta["macs"] == graph.total_macs()
    # resolve_model accepts the zoo name and the IR directory alike.
    assert len(resolve_model(str(WEIGHTS_DIR / name))) == len(graph)


def test_committed_weights_fit_the_budget() -> None:
    total = sum(p.stat().st_size for name in SMALL_MODELS for p in (WEIGHTS_DIR / name).iterdir())
    assert total <= WEIGHTS_BUDGET_BYTES, f"committed zoo weights are {total / 2**20:.2f} MiB > 5 MiB"


def test_small_models_load_and_run_without_tensorflow() -> None:
    out = _run_without_tf(
        f"""
        import numpy as np
        from codesign.models import load_model
        from codesign.graph.execute import run_float
        x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 1)).astype("float32")
        for name in {list(SMALL_MODELS)!r}:
            y = run_float(load_model(name), x)
            assert y.shape == (2, 10) and np.allclose(y.sum(-1), 1, atol=1e-5), (name, y)
        leaked = [m for m in sys.modules if m.split(".")[0] in {BLOCKED!r} and sys.modules[m] is not None]
        assert not leaked, leaked
        print("ok")
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_uncached_imagenet_model_without_tensorflow_says_how_to_build(tmp_path: Path) -> None:
    out = _run_without_tf(
        """
        from codesign.errors import CodesignError
        from codesign.models import load_model
        try:
            load_model("resnet18")
        except CodesignError as err:
            print(err)
        """,
        env={"CODESIGN_ZOO_CACHE": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    assert "python -m codesign.models build resnet18" in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL_MODELS)
def test_committed_ir_reaches_recorded_accuracy_without_tensorflow(name: str) -> None:
    """Recompute the IR test top-1 with NumPy only; it must match meta.json (and be >= 80 %)."""
    out = _run_without_tf(
        f"""
        import json
        from codesign.datasets import load_dataset
        from codesign.models import WEIGHTS_DIR, load_model
        from codesign.models.evaluate import read_meta, top1
        meta = read_meta(WEIGHTS_DIR / {name!r})
        x, y = load_dataset(meta["dataset"], "test")
        print(json.dumps({{"top1": top1(load_model({name!r}), x, y), "recorded": meta["ir_test_top1"],
                          "n": len(y), "n_recorded": meta["test_images"]}}))
        """
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["n"] == result["n_recorded"]
    assert result["top1"] >= result["recorded"] - 0.005
    assert result["top1"] >= 0.80
