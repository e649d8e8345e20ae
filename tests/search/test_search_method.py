"""`python -m codesign.search --method`: the CLI's choice is what the registry's method computes.

The oracle is the library path, run by the test itself on the run's own distilled images:
``codesign.methods.get_method(name).search(Problem(...))`` for the default ``ohq``, and for
``ohq-paper`` also the paper's steps called directly (MQE on the 8-bit model, then
``ilp.solve``), which is what the search ran before the method registry took over. The hardware
table is the plumbing fixture of ``test_search_cli.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ir_models import saved_tiny_resnet

from codesign import search
from codesign.errors import EXIT_USER_ERROR, run_cli
from codesign.hwtable import HwTable
from codesign.ilp import Budgets, from_hw_table, ratio_to_size, solve
from codesign.methods import get_method
from codesign.methods.base import Problem
from codesign.quant.bitconfig import BitConfig

pytestmark = pytest.mark.unit
QUANT = {"method": "mse", "weight_clip": "mse", "weight_round": "gptq"}  # the search's PTQ defaults
IMAGES = 4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_method")
    return saved_tiny_resnet(d), d


def _search(d, out: str, *extra: str) -> int:
    return run_cli(search.main, ["--quiet", "--no-export", "--deploy-images", "0", "--model", str(d / "ir"),
                                 "--hw-table", str(d / "hw.csv"), "--images", str(IMAGES), "--distill-iters", "5",
                                 "--ratio", "0.4", "--out", str(d / out), *extra])


def _problem(g, d, out: str) -> Problem:
    images = np.load(d / out / "distill" / "images.npz")["images"][:IMAGES]
    budgets = Budgets(size_mbit=ratio_to_size(g, 0.4, [4, 8]))
    return Problem(g, HwTable.load(d / "hw.csv"), [4, 8], budgets, images, seed=0, quant=dict(QUANT))  # type: ignore[arg-type]


def _widths(bc: BitConfig) -> dict[str, tuple[int, int]]:
    return {n: (lb.w_bits, lb.a_bits) for n, lb in bc.layers.items()}


def test_default_method_is_the_registry_ohq(tiny) -> None:
    g, d = tiny
    assert _search(d, "run_default") == 0
    want = get_method("ohq").search(_problem(g, d, "run_default"))
    got = BitConfig.load(d / "run_default" / "bitconfig.json")
    assert got.meta["method"] == "ohq"
    assert _widths(got) == _widths(want.bitconfig)
    sol = json.loads((d / "run_default" / "ilp_solution.json").read_text())
    assert sol["method"] == "ohq" and sol["objective"] == pytest.approx(want.info["objective"], rel=1e-12)
    header = (d / "run_default" / "sensitivity.csv").read_text().splitlines()[0]
    assert header.split(",")[1] == "fisher-w4"  # the Fisher estimator, one column per width below 8


def test_ohq_paper_is_the_papers_steps(tiny) -> None:
    from codesign.mqe import mqe_sensitivity

    g, d = tiny
    assert _search(d, "run_paper", "--method", "ohq-paper", "--beta", "0.6") == 0
    problem = _problem(g, d, "run_paper")
    got = BitConfig.load(d / "run_paper" / "bitconfig.json")
    via_registry = get_method("ohq-paper", beta=0.6).search(problem)
    qg8 = problem.quantize(BitConfig.uniform(g, 8))
    sens = mqe_sensitivity(qg8, problem.distilled, alpha=0.5, seed=0).as_dict()
    direct = solve(from_hw_table(g, problem.table, sens, [4, 8]), [4, 8], problem.budgets, beta=0.6)
    assert _widths(got) == _widths(via_registry.bitconfig)
    assert {n: w for n, (w, _a) in _widths(got).items()} == direct.bits
    assert got.meta["beta"] == 0.6
    sol = json.loads((d / "run_paper" / "ilp_solution.json").read_text())
    assert sol["omega"] == pytest.approx(direct.omega, abs=1e-12)
    stages = json.loads((d / "run_paper" / "stages.json").read_text())
    assert stages["mqe"]["sensitivity"]["scores"] == pytest.approx(sens, rel=1e-12)


def test_method_settings_it_does_not_take_are_refused(tiny, capsys) -> None:
    _g, d = tiny
    assert _search(d, "run_bad", "--beta", "0.3") == EXIT_USER_ERROR
    err = " ".join(capsys.readouterr().err.split())
    assert "--beta does not apply to --method ohq" in err and "ohq-paper" in err
    assert not (d / "run_bad").exists()  # refused before any stage ran
