"""`python -m codesign inspect`: normal output and every bad-input path (exit 2, one paragraph)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ir_models import tiny_resnet

from codesign.graph.serialize import save_graph
from codesign.quant.bitconfig import BitConfig, LayerBits

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codesign", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def assert_user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    msg = proc.stderr.strip()
    assert msg.startswith("error:") and "\n\n" not in msg
    for n in needles:
        assert n in " ".join(msg.split()), msg


@pytest.fixture(scope="module")
def ir_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ir") / "tiny"
    save_graph(tiny_resnet(), d)
    return d


@pytest.mark.unit
def test_inspect_prints_layers_and_size(ir_dir) -> None:
    proc = run("inspect", str(ir_dir), "--bits", "4")
    assert proc.returncode == 0, proc.stderr
    for needle in ("b2sc", "conv2d", "(4, 4, 16)", "MACs/image", "quantized weight size"):
        assert needle in proc.stdout
    g = tiny_resnet()
    want = BitConfig.uniform(g, 4).size_mbit(g)
    assert f"{want:.3f} Mbit" in proc.stdout


@pytest.mark.unit
def test_inspect_with_bitconfig_file(ir_dir, tmp_path) -> None:
    g = tiny_resnet()
    bc = BitConfig.uniform(g, 8)
    bc.layers["fc"] = LayerBits(3, 5)
    bc.save(tmp_path / "bc.yaml")
    proc = run("inspect", str(ir_dir), "--bits", str(tmp_path / "bc.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert "3/5" in proc.stdout


@pytest.mark.unit
@pytest.mark.parametrize("bits", ["9", "1", "x"])
def test_bits_out_of_range(ir_dir, bits: str) -> None:
    assert_user_error(run("inspect", str(ir_dir), "--bits", bits), "2..8")


@pytest.mark.unit
def test_bitconfig_with_unknown_layers(ir_dir, tmp_path) -> None:
    (tmp_path / "bc.json").write_text(json.dumps({"layers": {"no_such_conv": 4}}))
    assert_user_error(run("inspect", str(ir_dir), "--bits", str(tmp_path / "bc.json")), "no_such_conv")


@pytest.mark.unit
def test_corrupt_ir_json_and_npz(ir_dir, tmp_path) -> None:
    bad = tmp_path / "bad"
    save_graph(tiny_resnet(), bad)
    (bad / "graph.json").write_text("{")
    assert_user_error(run("inspect", str(bad)), "not valid JSON")
    save_graph(tiny_resnet(), bad)
    (bad / "weights.npz").write_bytes(b"nonsense")
    assert_user_error(run("inspect", str(bad)), "corrupt")


@pytest.mark.unit
def test_weights_that_do_not_match(tmp_path) -> None:
    g = tiny_resnet()
    g["fc"].params["kernel"] = np.zeros((17, 10), np.float32)
    save_graph(g, tmp_path / "m")
    assert_user_error(run("inspect", str(tmp_path / "m")), "fc", "(17, 10)")


@pytest.mark.unit
def test_unknown_model_and_command() -> None:
    assert_user_error(run("inspect", "no_such_model_anywhere"), "no_such_model_anywhere")
    assert_user_error(run("frobnicate"), "unknown command")


@pytest.mark.tf
def test_corrupt_h5_and_unsupported_layer(tmp_path) -> None:
    p = tmp_path / "broken.h5"
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    assert_user_error(run("inspect", str(p)), "broken.h5")
    code = (
        "import tensorflow as tf; i=tf.keras.Input((8,4)); o=tf.keras.layers.LSTM(3, name='my_lstm')(i);"
        f"tf.keras.Model(i,o).save(r'{tmp_path / 'lstm.h5'}')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)
    assert_user_error(run("inspect", str(tmp_path / "lstm.h5")), "my_lstm", "LSTM")


@pytest.mark.unit
def test_wrong_input_shape_from_python_api() -> None:
    from codesign.errors import ShapeError
    from codesign.graph.execute import run_float

    with pytest.raises(ShapeError):
        run_float(tiny_resnet(), np.zeros((1, 8, 8, 3), np.float32))
