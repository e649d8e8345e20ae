"""Uniform INT8/INT4 baselines, the registry, and the NumPy-only import of codesign.methods."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from codesign.errors import BitWidthError, CodesignError
from codesign.ilp import Budgets
from codesign.methods import METHODS, get_method
from codesign.methods.uniform import UniformMethod

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("bits", [8, 4])
def test_uniform_config_and_budget_report(make_problem, bits: int) -> None:
    p0 = make_problem()
    n = sum(p0.graph[x].params["kernel"].size for x in p0.layers)
    lat = sum(p0.table.get(x, bits).cycles_total for x in p0.layers)
    en = sum(p0.table.get(x, bits).energy_uj for x in p0.layers)
    size_budget = n * 6e-6  # between INT4 and INT8
    p = make_problem(budgets=Budgets(size_mbit=size_budget, latency_cycles=lat - 1))
    res = METHODS[f"int{bits}"]().search(p)
    assert res.method == f"int{bits}" and res.bitconfig.meta["method"] == f"int{bits}"
    assert {(lb.w_bits, lb.a_bits) for lb in res.bitconfig.layers.values()} == {(bits, bits)}
    assert res.info["size_mbit"] == pytest.approx(n * bits * 1e-6)
    assert res.info["latency_cycles"] == pytest.approx(lat) and res.info["energy_uj"] == pytest.approx(en)
    assert res.info["meets"] == {"size_mbit": bits < 6, "latency_cycles": False}
    assert res.info["meets_all"] is False
    assert res.search_seconds >= 0.0 and res.data_used.startswith("none")


def test_uniform_width_missing_from_table(make_problem) -> None:
    p = make_problem(budgets=Budgets(size_mbit=1.0, latency_cycles=1e9))
    res = UniformMethod(3).search(p)  # the table has 2, 4, 8 only
    assert res.info["latency_cycles"] is None and res.info["meets"] == {"size_mbit": True, "latency_cycles": None}
    assert res.info["meets_all"] is None


def test_registry() -> None:
    assert {"int8", "int4", "hawq-v3", "zeroq", "direct"} <= set(METHODS)
    assert get_method("int4").name == "int4" and get_method("zeroq").name == "zeroq"
    assert get_method("hawq-v3", max_samples=3).max_samples == 3  # type: ignore[attr-defined]
    with pytest.raises(CodesignError, match="unknown method"):
        get_method("nope")
    with pytest.raises(BitWidthError):
        UniformMethod(9)


def test_baselines_import_and_run_without_tensorflow() -> None:
    """``import codesign.methods`` and the NumPy methods need no TF; HAWQ-v3 says why it needs TF."""
    code = textwrap.dedent(
        """
        import sys
        for name in ["tensorflow", "keras", "tf_keras", "qkeras", "hls4ml", "torch"]:
            sys.modules[name] = None
        sys.path[:0] = ["tests", "tests/methods"]
        import numpy as np
        from method_helpers import random_images, synthetic_table
        from ir_models import tiny_resnet
        from codesign.methods import METHODS
        from codesign.methods.base import Problem
        from codesign.errors import CodesignError
        from codesign.ilp import Budgets
        g = tiny_resnet()
        x = random_images(g, 4)
        p = Problem(g, synthetic_table(g), [2, 4, 8], Budgets(size_mbit=0.03), x, train=(x, np.zeros(4, int)))
        for name in ("int8", "int4", "zeroq"):
            METHODS[name]().search(p)
        try:
            METHODS["hawq-v3"](max_samples=2).search(p)
        except CodesignError as err:
            assert "TensorFlow" in str(err), err
        else:
            raise AssertionError("HAWQ-v3 ran without TensorFlow")
        leaked = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras") and sys.modules[m] is not None]
        assert not leaked, leaked
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
