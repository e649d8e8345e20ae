"""The on-board runtime must import and run with TensorFlow & co. unavailable (PYNQ has none)."""

from __future__ import annotations

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
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
