"""`python -m codesign.search`: run folder contents, stage reuse and every bad-input path.

The hardware table here is a *fixture* (cycles proportional to MACs), used only to exercise
the plumbing: ILP budgets, reports, caching, errors. Measured tables come from OQA on the
simulated board (tests/oqa); nothing here is reported as a hardware figure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ir_models import Builder, fixture_table, saved_tiny_resnet, tiny_mobilenet, tiny_resnet

from codesign.graph.serialize import save_graph

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit


def search(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "codesign.search", "--quiet", "--no-export", "--images", "4", "--distill-iters", "15", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)


def user_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    msg = " ".join(proc.stderr.split())
    for n in needles:
        assert n in msg, msg


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    return saved_tiny_resnet(d), d


def test_run_folder_and_reuse(tiny) -> None:
    g, d = tiny
    out = d / "run"
    proc = search("--model", str(d / "ir"), "--hw-table", str(d / "hw.csv"), "--ratio", "0.5", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    for f in ("bitconfig.json", "hw_table.csv", "sensitivity.csv", "search.lp", "ilp_solution.json", "report.md",
              "sensitivity.png", "cycles.png", "energy.png", "bits.png", "distill/distill_loss.png"):
        assert (out / f).exists(), f
    bc = json.loads((out / "bitconfig.json").read_text())
    assert set(bc["layers"]) == {ly.name for ly in g.quantizable()}
    sizes = {ly.name: ly.params["kernel"].size for ly in g.quantizable()}
    used = sum(sizes[n] * v["w_bits"] for n, v in bc["layers"].items()) / 1e6
    n = sum(sizes.values())
    assert used <= (n * 4 + 0.5 * (n * 8 - n * 4)) / 1e6 + 1e-12  # the ratio-0.5 budget holds
    stages = json.loads((out / "stages.json").read_text())
    proc2 = search("--model", str(d / "ir"), "--hw-table", str(d / "hw.csv"), "--ratio", "0.5", "--out", str(out))
    assert proc2.returncode == 0
    again = json.loads((out / "stages.json").read_text())
    assert again["distill"] == stages["distill"] and again["mqe"] == stages["mqe"]  # reused, not recomputed
    assert json.loads((out / "bitconfig.json").read_text())["layers"] == bc["layers"]


def test_infeasible_budget_names_the_range(tiny) -> None:
    _g, d = tiny
    user_error(search("--model", str(d / "ir"), "--hw-table", str(d / "hw.csv"), "--size-limit", "0.000001",
                      "--out", str(d / "r_inf")), "infeasible", "Mbit")


def test_hw_table_for_another_model(tiny) -> None:
    _g, d = tiny
    other = tiny_mobilenet()
    save_graph(other, d / "mb")
    user_error(search("--model", str(d / "mb"), "--hw-table", str(d / "hw.csv"), "--out", str(d / "r_mm")),
               "does not match")


def test_missing_val_data(tiny) -> None:
    _g, d = tiny
    user_error(search("--model", str(d / "ir"), "--hw-table", str(d / "hw.csv"), "--val-data", str(d / "nope.npz"),
                      "--out", str(d / "r_val")), "nope.npz")


def test_model_without_bn(tmp_path) -> None:
    b = Builder((8, 8, 1), seed=0)
    x = b.act(b.conv("input", "c1", 4), "r1", "relu")
    x = b.dense(b.flatten(x, "f"), "fc", 3)
    g = b.graph("nobn", b.softmax(x, "sm"))
    save_graph(g, tmp_path / "ir")
    fixture_table(g).save(tmp_path / "hw.csv")
    base = ("--model", str(tmp_path / "ir"), "--hw-table", str(tmp_path / "hw.csv"), "--out", str(tmp_path / "run"))
    user_error(search(*base), "BatchNorm", "--allow-no-bn")
    ok = search(*base, "--allow-no-bn")
    assert ok.returncode == 0, ok.stderr
    assert "Gaussian" in ok.stderr


def test_bad_bits_and_ratio(tiny) -> None:
    _g, d = tiny
    user_error(search("--model", str(d / "ir"), "--bits", "4,9"), "2..8")
    user_error(search("--model", str(d / "ir"), "--hw-table", str(d / "hw.csv"), "--ratio", "1.5",
                      "--out", str(d / "r_ratio")), "ratio")


def test_fixture_table_is_consistent() -> None:
    g = tiny_resnet()
    t = fixture_table(g)
    t.check_model(g, [4, 8])
    assert np.isfinite([r.cycles_total for r in t.rows]).all()
