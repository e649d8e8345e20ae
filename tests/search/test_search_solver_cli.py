"""`python -m codesign.search --solver`: the run names the solver, and one that cannot run is a user error."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from ir_models import saved_tiny_resnet
from test_search_cli import ROOT, user_error

from codesign import solvers

pytestmark = pytest.mark.unit


def search(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=path) if path is not None else None
    cmd = [sys.executable, "-m", "codesign.search", "--quiet", "--no-export", "--images", "4", "--distill-iters", "5",
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_solver")
    saved_tiny_resnet(d)
    return d


def test_builtin_solver_run_names_it_and_matches_cbc(tiny) -> None:
    base = ("--model", str(tiny / "ir"), "--hw-table", str(tiny / "hw.csv"), "--ratio", "0.4",
            "--latency-limit", "1e9")
    proc = search(*base, "--solver", "builtin", "--out", str(tiny / "run_builtin"))
    assert proc.returncode == 0, proc.stderr
    sol = json.loads((tiny / "run_builtin" / "ilp_solution.json").read_text())
    assert sol["solver"] == "builtin (branch and bound)"
    assert "ILP solver: builtin (branch and bound)" in (tiny / "run_builtin" / "report.md").read_text()
    if solvers.probe("cbc")[0] is not None:
        ref = search(*base, "--solver", "cbc", "--out", str(tiny / "run_cbc"))
        assert ref.returncode == 0, ref.stderr
        cbc = json.loads((tiny / "run_cbc" / "ilp_solution.json").read_text())
        assert cbc["solver"].startswith("cbc (bundled") and cbc["objective"] == pytest.approx(sol["objective"], abs=1e-9)


def test_coin_without_system_cbc_is_a_user_error(tiny, tmp_path) -> None:
    user_error(search("--model", str(tiny / "ir"), "--solver", "coin", "--out", str(tmp_path / "r"),
                      path=str(tmp_path)), "cannot run", "coinor-cbc")
    assert not (tmp_path / "r").exists()  # refused before any stage ran
