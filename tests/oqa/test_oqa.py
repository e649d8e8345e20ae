"""OQA end to end on the simulated board: hardware tables of the small models, CLI, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from ir_models import tiny_mobilenet

from codesign import oqa
from codesign.board import driver as driver_mod
from codesign.errors import EXIT_USER_ERROR, run_cli
from codesign.hwtable import STAGES, HwTable
from codesign.models import SMALL_MODELS, load_model, model_dir

pytestmark = pytest.mark.rtl


def _check_table(table: HwTable, graph, bits: list[int]) -> None:
    table.check_model(graph, bits)
    for r in table.rows:
        assert r.cycles_total >= max(getattr(r, s) for s in STAGES) > 0
        assert 0.0 < r.utilization <= 1.0
        assert r.latency_ms == pytest.approx(r.cycles_total / 1e5)
        assert r.energy_uj > 0 and r.macs > 0
    for key in ("device", "clock_mhz", "protocol", "units", "config_hash", "board"):
        assert table.meta[key]


def test_oqa_on_a_depthwise_hswish_se_model(sim_board, overlay) -> None:
    """Depthwise, h-swish, ReLU6, SE 1x1 convs on 1x1 maps and a dense layer, all bit-exact."""
    graph = tiny_mobilenet()
    res = oqa.measure_full(graph, [4, 8], sim_board, overlay, warmup=0, repeats=1, progress=False)
    _check_table(res.table, graph, [4, 8])
    kinds = {d.layer: d.kind for d in res.details}
    assert kinds["dw"] == "depthwise"
    assert {p.kind for p in res.ps_ops} >= {"add", "mul", "gavgpool"}
    # the depthwise layer maps poorly onto the GEMM engine: that is what OQA must show
    dw, ex = res.table.get("dw", 8), res.table.get("ex", 8)
    assert dw.utilization < ex.utilization


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_oqa_small_zoo_models(sim_board, overlay, name: str) -> None:
    if not (model_dir(name) / "graph.json").is_file():
        pytest.skip(f"trained weights of {name} are not committed yet")
    graph = load_model(name)
    res = oqa.measure_full(graph, [4, 8], sim_board, overlay, warmup=1, repeats=1, progress=False)
    _check_table(res.table, graph, [4, 8])
    total = {b: sum(r.cycles_total for r in res.table.rows if r.bits == b) for b in (4, 8)}
    assert total[4] < total[8]


def test_a_wrong_board_output_stops_oqa(sim_board, overlay, monkeypatch) -> None:
    real = driver_mod.OverlayDriver.run_job

    def corrupt(self, *a, **k):
        y = real(self, *a, **k)
        y.flat[0] += 1
        return y

    monkeypatch.setattr(driver_mod.OverlayDriver, "run_job", corrupt)
    with pytest.raises(oqa.BitExactError, match="differs from the golden model"):
        oqa.measure_full(tiny_mobilenet(), [4], sim_board, overlay, warmup=0, progress=False)


def test_cli_writes_the_tables(overlay, sim_board, tmp_path) -> None:
    out = tmp_path / "hw.csv"
    model = tmp_path / "tiny"
    from codesign.graph.serialize import save_graph

    save_graph(tiny_mobilenet(), model)
    code = run_cli(oqa.main, ["--model", str(model), "--bits", "4,8", "--board", "sim", "--out", str(out),
                              "--ip-dir", overlay.ip_dir, "--warmup", "0", "--quiet"])
    assert code == 0
    table = HwTable.load(out)
    assert table.bits == [4, 8] and table.meta["clock_mhz"] == "100"
    ps = (tmp_path / "hw.ps.csv").read_text()
    assert "# units: ms" in ps and "gavgpool" in ps
    assert "util_compute" in (tmp_path / "hw.detail.csv").read_text()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--bits", "3"], "make ip BITS=3"),
        (["--bits", "9"], "outside the supported range"),
        (["--bits", "4,x"], "malformed bit list"),
        (["--model", "no_such_model"], "cannot resolve model"),
    ],
)
def test_cli_bad_input(overlay, tmp_path, capsys, args: list[str], needle: str) -> None:
    argv = ["--model", "resnet_s", "--bits", "4", "--out", str(tmp_path / "hw.csv"), "--ip-dir", overlay.ip_dir]
    for flag, value in zip(args[::2], args[1::2]):
        argv[argv.index(flag) + 1] = value
    assert run_cli(oqa.main, argv) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert needle in " ".join(err.split()) and "Traceback" not in err


def test_cli_unsupported_layer(overlay, tmp_path, capsys) -> None:
    """A model file whose softmax sits in the middle cannot be quantized: clear message, exit 2."""
    from ir_models import Builder

    from codesign.graph.serialize import save_graph

    b = Builder((8, 8, 1), 0)
    x = b.softmax(b.conv("input", "c1", 4, 3), "mid_softmax")
    x = b.dense(b.flatten(x, "flat"), "fc", 3)
    save_graph(b.graph("bad", x), tmp_path / "bad")
    argv = ["--model", str(tmp_path / "bad"), "--bits", "4", "--out", str(tmp_path / "hw.csv"),
            "--ip-dir", overlay.ip_dir]
    assert run_cli(oqa.main, argv) == EXIT_USER_ERROR
    assert "softmax" in capsys.readouterr().err


def test_synthetic_inputs_are_seeded() -> None:
    g = tiny_mobilenet()
    np.testing.assert_array_equal(oqa.synthetic_inputs(g, 2, 5), oqa.synthetic_inputs(g, 2, 5))


def _vanishing_model():
    """A conv+BN+ReLU6 net whose stored BN statistics leave a ~1e-2 activation range."""
    from ir_models import Builder

    b = Builder((8, 8, 1), 0)
    x = b.cbr("input", "c1", 4, 3, act="relu6")
    x = b.dense(b.flatten(x, "flat"), "fc", 3)
    g = b.graph("vanishing", x)
    g["c1"].params["kernel"] = g["c1"].params["kernel"] * 1e-2
    for k in ("mean", "beta"):
        g["c1_bn"].params[k] = np.zeros_like(g["c1_bn"].params[k])
    return g


def test_vanishing_activations_still_measure_and_recalibration_is_recorded(overlay, tmp_path) -> None:
    """A deep random-init net whose activations vanish quantizes (ReLU6/h-swish scales are
    floored at 3/2^15 by the quantizer), and --recalibrate-bn is stated in the protocol."""
    from codesign.graph.serialize import save_graph

    save_graph(_vanishing_model(), tmp_path / "m")
    argv = ["--model", str(tmp_path / "m"), "--bits", "8", "--out", str(tmp_path / "hw.csv"), "--ip-dir",
            overlay.ip_dir, "--warmup", "0", "--quiet"]
    assert run_cli(oqa.main, argv) == 0
    assert "recalibrate-bn" not in HwTable.load(tmp_path / "hw.csv").meta["protocol"]
    assert run_cli(oqa.main, [*argv, "--recalibrate-bn"]) == 0
    assert "recalibrate-bn" in HwTable.load(tmp_path / "hw.csv").meta["protocol"]


def test_recalibrate_bn_changes_only_bn_statistics() -> None:
    g = _vanishing_model()
    r = oqa.recalibrate_bn(g, oqa.synthetic_inputs(g, 4, 0))
    for a, b in zip(g.layers, r.layers):
        assert a.name == b.name and a.output_shape == b.output_shape
        for k in a.params:
            same = np.array_equal(a.params[k], b.params[k])
            assert same or (a.op == "batchnorm" and k in ("mean", "var")), (a.name, k)


def test_img2col_path_per_layer_and_cli_flag(sim_board, overlay, tmp_path) -> None:
    """resnet_s: 3x3 convs after the stem take hardware img2col ("auto"), the stem, the 1x1
    projections and the dense layer stay on the host path; against --img2col host every layer
    computes the same beats and the 3x3 layers stream fewer words."""
    if not (model_dir("resnet_s") / "graph.json").is_file():
        pytest.skip("trained weights of resnet_s are not committed yet")
    graph = load_model("resnet_s")
    res = {mode: oqa.measure_full(graph, [4, 8], sim_board, overlay, warmup=0, repeats=1, progress=False,
                                  img2col=mode) for mode in ("auto", "host")}
    auto = {(d.layer, d.bits): d for d in res["auto"].details}
    host = {(d.layer, d.bits): d for d in res["host"].details}
    assert {d.path for d in host.values()} == {"host"}
    for (layer, b), d in auto.items():
        tall = "_conv" in layer and layer != "stem_conv" and "proj" not in layer
        assert d.path == ("hw_img2col" if tall else "host"), (layer, b)
        assert d.issued_macs == host[(layer, b)].issued_macs
        if tall:
            assert d.beats_in < host[(layer, b)].beats_in
        else:
            assert d.beats_in == host[(layer, b)].beats_in
    assert "img2col=auto" in res["auto"].table.meta["protocol"]
    out = tmp_path / "hw.csv"
    code = run_cli(oqa.main, ["--model", "resnet_s", "--bits", "8", "--board", "sim", "--out", str(out),
                              "--ip-dir", overlay.ip_dir, "--warmup", "0", "--quiet", "--img2col", "host",
                              "--layers", "s1_a_conv"])
    assert code == 0
    detail = (tmp_path / "hw.detail.csv").read_text()
    assert detail.splitlines()[1].endswith(",path") and detail.rstrip().endswith(",host")


def test_detail_puts_the_analytic_cycles_beside_the_counters(sim_board, overlay) -> None:
    """Each op's exp_cycles equals CYC_COMPUTE; its bound stays below CYC_TOTAL (tests/board/test_exp_cycles.py)."""
    res = oqa.measure_full(tiny_mobilenet(), [4], sim_board, overlay, warmup=0, progress=False, layers=["ex", "dw", "fc"])
    assert {d.layer for d in res.details} == {"ex", "dw", "fc"}
    for d in res.details:
        assert d.cycles_compute == d.exp_cycles_compute == res.table.get(d.layer, 4).cycles_compute
        assert 0 < d.min_cycles_total <= res.table.get(d.layer, 4).cycles_total
