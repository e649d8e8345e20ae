"""IR structure, serialization round trip and bad-file handling."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ir_models import tiny_mobilenet, tiny_resnet

from codesign.errors import ModelFileError, ShapeError
from codesign.graph.execute import run_float
from codesign.graph.ir import Conv2D, Graph, Input, same_padding
from codesign.graph.serialize import load_graph, save_graph

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("make", [tiny_resnet, tiny_mobilenet])
def test_round_trip_is_exact(tmp_path, make) -> None:
    g = make()
    save_graph(g, tmp_path / "m")
    g2 = load_graph(tmp_path / "m")
    assert [ly.name for ly in g2] == [ly.name for ly in g]
    assert [ly.output_shape for ly in g2] == [ly.output_shape for ly in g]
    x = np.random.default_rng(0).uniform(0, 1, (2, *g.input_shape)).astype(np.float32)
    np.testing.assert_array_equal(run_float(g2, x), run_float(g, x))
    assert not any(p.suffix == ".pkl" for p in (tmp_path / "m").iterdir())


def test_macs_of_conv_and_dense() -> None:
    g = tiny_resnet()
    stem = g["stem"]  # 3x3, 3 -> 8 channels, 16x16 output
    assert stem.macs(g.in_shapes(stem)) == 16 * 16 * 8 * 9 * 3
    assert g["fc"].macs(g.in_shapes(g["fc"])) == 16 * 10
    dw = tiny_mobilenet()["dw"]
    assert dw.is_depthwise


def test_same_padding_matches_tf_rule() -> None:
    assert same_padding(224, 7, 2) == (2, 3)
    assert same_padding(112, 3, 2) == (0, 1)
    assert same_padding(56, 3, 1) == (1, 1)


def test_corrupt_json(tmp_path) -> None:
    save_graph(tiny_resnet(), tmp_path)
    (tmp_path / "graph.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_graph(tmp_path)


def test_corrupt_npz(tmp_path) -> None:
    save_graph(tiny_resnet(), tmp_path)
    (tmp_path / "weights.npz").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelFileError, match="corrupt"):
        load_graph(tmp_path)


def test_wrong_format_version(tmp_path) -> None:
    save_graph(tiny_resnet(), tmp_path)
    data = json.loads((tmp_path / "graph.json").read_text())
    data["version"] = 99
    (tmp_path / "graph.json").write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="version"):
        load_graph(tmp_path)


def test_weights_that_do_not_match_the_model(tmp_path) -> None:
    g = tiny_resnet()
    g["b1c1"].params["kernel"] = np.zeros((3, 3, 8, 9), np.float32)
    save_graph(Graph(g.name, g.layers, g.outputs), tmp_path)
    with pytest.raises(ModelFileError, match="b1c1"):
        load_graph(tmp_path)


def test_weights_missing(tmp_path) -> None:
    save_graph(tiny_resnet(), tmp_path)
    with np.load(tmp_path / "weights.npz") as z:
        arrays = {k: z[k] for k in z.files if k != "fc/kernel"}
    np.savez(tmp_path / "weights.npz", **arrays)
    with pytest.raises(ModelFileError, match="fc/kernel"):
        load_graph(tmp_path)


def test_wrong_input_shape_is_a_shape_error() -> None:
    g = tiny_resnet()
    with pytest.raises(ShapeError, match=r"expects \(N, 16, 16, 3\)"):
        run_float(g, np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(ShapeError, match="batch"):
        run_float(g, np.zeros((16, 16, 3), np.float32))


def test_undefined_input_is_rejected() -> None:
    layers = [Input("in", shape=(4, 4, 1)), Conv2D("c", ["nope"], filters=1, params={"kernel": np.zeros((1, 1, 1, 1)), "bias": np.zeros(1)})]
    with pytest.raises(ModelFileError, match="nope"):
        Graph("bad", layers, ["c"]).infer_shapes()
