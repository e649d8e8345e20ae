"""The on-board runtime must import and run with TensorFlow & co. unavailable (PYNQ has none)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.unit

BLOCKED = ["tensorflow", "keras", "tf_keras", "qkeras", "hls4ml", "torch"]


def test_graph_and_quant_run_without_tensorflow() -> None:
    code = textwrap.dedent(
        f"""
        import sys
        for name in {BLOCKED!r}:
            sys.modules[name] = None  # any import of these now raises ImportError
        sys.path.insert(0, "tests")
        import numpy as np
        import codesign.graph, codesign.graph.ir, codesign.graph.execute, codesign.graph.serialize
        import codesign.quant, codesign.quant.qgraph, codesign.quant.golden, codesign.quant.fakequant
        import codesign.quant.bitconfig, codesign.quant.calibrate, codesign.quant.fold, codesign.quant.dyadic
        import codesign.ilp, codesign.mqe, codesign.hwtable, codesign.quant.qserialize, codesign.search, codesign.plots
        import codesign.distill, codesign.graph.grad, codesign.datasets, codesign.models
        import codesign.deploy, codesign.netrun, codesign.deploy_search, codesign.deploy_report, codesign.deploy_inputs
        from ir_models import tiny_mobilenet
        from codesign.quant.bitconfig import BitConfig
        from codesign.quant.qgraph import quantize_model
        from codesign.quant.golden import GoldenModel
        g = tiny_mobilenet()
        x = np.random.default_rng(0).uniform(0, 1, (4, *g.input_shape)).astype("float32")
        qg = quantize_model(g, BitConfig.uniform(g, 4), x)
        y = GoldenModel(qg).predict(x)
        assert y.shape == (4, 10)
        leaked = [m for m in sys.modules if m.split(".")[0] in {BLOCKED!r} and sys.modules[m] is not None]
        assert not leaked, leaked
        print("ok")
        """
    )
    _run_isolated(code, timeout=120)


def _run_isolated(code: str, timeout: int) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; it must exit 0 and print "ok" last."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
    return out


HOST_ONLY = ["matplotlib", "rich", "yaml", "jinja2", "tqdm"]


@pytest.mark.parametrize("block_pulp", [False, True], ids=["numpy+pulp", "numpy-only"])
def test_search_stages_run_with_only_numpy_and_pulp(tmp_path, block_pulp: bool) -> None:
    """A small search (distill, given hardware table, MQE, ILP, evaluation, report) with every optional
    package blocked: plain progress lines, a note instead of plots; without PuLP the built-in solver runs."""
    blocked = BLOCKED + HOST_ONLY + (["pulp"] if block_pulp else [])
    code = textwrap.dedent(
        f"""
        import sys
        for name in {blocked!r}:
            sys.modules[name] = None
        sys.path.insert(0, "tests")
        sys.path.insert(0, "tests/search")
        from ir_models import tiny_resnet
        from test_search_cli import fixture_table
        from codesign.graph.serialize import save_graph
        from codesign.search import main
        g = tiny_resnet()
        save_graph(g, {str(tmp_path / "ir")!r})
        fixture_table(g).save({str(tmp_path / "hw.csv")!r})
        rc = main(["--model", {str(tmp_path / "ir")!r}, "--hw-table", {str(tmp_path / "hw.csv")!r},
                   "--images", "4", "--distill-iters", "3", "--out", {str(tmp_path / "run")!r}])
        assert rc == 0
        leaked = [m for m in sys.modules if m.split(".")[0] in {blocked!r} and sys.modules[m] is not None]
        assert not leaked, leaked
        print("ok")
        """
    )
    out = _run_isolated(code, timeout=300)
    run = tmp_path / "run"
    assert (run / "bitconfig.json").is_file() and (run / "report.md").is_file()
    assert not list(run.glob("*.png")) and "matplotlib is not installed" in out.stderr
    assert "distill tiny_resnet: 3/3" in out.stderr  # the plain progress line
    solver = json.loads((run / "ilp_solution.json").read_text())["solver"]
    assert solver.startswith("builtin") if block_pulp else solver
    assert (run / "search.lp").is_file() != block_pulp  # the LP file needs PuLP
