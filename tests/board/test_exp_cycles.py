"""The GEMM ops' analytic cycle model (``GemmOp.exp_cycles``) against the overlay's RTL counters.

The model is derived from the overlay's structure, not fitted to a run: GEMM blocks per layer
(dense/ungrouped one, depthwise block-diagonal over ``lanes`` channels, grouped one per
group), N-tiles as wide as the weight bank holds, and one engine beat per (row, k-word, lane
group). ``CYC_COMPUTE`` counts accepted engine beats, so the model predicts it exactly.
``CYC_TOTAL`` also holds per-job overheads the model does not describe (DMA latency,
pipeline fill, post-process and write-back tails), so for it the model only gives a lower
bound: each job's weight words arrive before its first beat, at most one word per cycle.
"""

from __future__ import annotations

import numpy as np
import pytest

from board.util import random_layer
from codesign.board.driver import OverlayDriver
from codesign.hw.mapping import expected_cycles
from codesign.quant.dyadic import Act

pytestmark = pytest.mark.rtl

CASES = {
    "conv3x3": ("conv", {}),
    "conv1x1_odd_n": ("conv", {"k": 1, "pad": 0, "act": Act.RELU6, "cout": 37}),
    "conv_stride2": ("conv", {"stride": 2, "act": Act.NONE, "a_signed": True, "out_signed": True}),
    "depthwise_two_blocks": ("conv", {"hw": 7, "cin": 40, "cout": 40, "groups": 40, "stride": 2}),
    "grouped": ("conv", {"cin": 8, "cout": 8, "groups": 2, "k": 1, "pad": 0}),
    "dense": ("dense", {"cin": 70, "cout": 10, "act": Act.NONE, "out_signed": True}),
    "multi_tile": ("conv", {"hw": 3, "cin": 128, "cout": 300, "k": 3}),
}


@pytest.mark.parametrize("img2col", ["host", "auto"])
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("case", sorted(CASES))
def test_exp_cycles_equal_the_compute_counter_and_bound_the_total(sim_board, overlay, case: str, bits: int,
                                                                   img2col: str) -> None:
    kind, kw = CASES[case]
    node, x, in_t, out_t = random_layer(np.random.default_rng(bits), kind, bits, **kw)
    run = OverlayDriver(sim_board, overlay, img2col=img2col).run_layer(node, x, in_t, out_t)
    exp_compute, min_total = expected_cycles(node, x.shape, overlay.engine(bits), overlay)
    assert run.counters["CYC_COMPUTE"] == exp_compute
    assert min_total <= run.counters.cycles_total
