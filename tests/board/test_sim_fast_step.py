"""The simulated board's one-evaluation-per-cycle step against the two-evaluation step.

The fast step (the default) records "clock low" for Verilator instead of evaluating the model
at the falling edge; it is exact only while the stream outputs the harness samples before the
edge do not depend on that cycle's inputs. Two boards over the same library run the same
layers (host and hardware img2col paths, signed and unsigned activations, back-pressure from a
slow DMA): outputs, every counter and the simulated cycle count must be identical, and the
outputs must equal the golden model's.
"""

from __future__ import annotations

import numpy as np
import pytest

from board.util import random_layer
from codesign.board.driver import OverlayDriver
from codesign.quant.dyadic import Act
from codesign.quant.golden import INT_OPS

CASES = {
    "conv_hw_img2col": ("conv", {"hw": 6, "cin_words": 2}, "auto"),
    "conv_host_signed": ("conv", {"hw": 5, "cin_words": 1, "act": Act.NONE, "a_signed": True, "out_signed": True},
                         "host"),
    "dense_two_tiles": ("dense", {"cin_words": 3, "cout": 70}, "auto"),
}


def _run(board, overlay, kind: str, kw: dict, mode: str, bits: int):
    kw = dict(kw)
    cin = kw.pop("cin_words") * overlay.engine(bits).tree
    node, x, in_t, out_t = random_layer(np.random.default_rng(7), kind, bits, cin=cin, **kw)
    c0 = board.cycle
    run = OverlayDriver(board, overlay, img2col=mode).run_layer(node, x, in_t, out_t)
    np.testing.assert_array_equal(run.output, INT_OPS[node.kind](node, [x], out_t))
    return run, board.cycle - c0


@pytest.mark.rtl
@pytest.mark.parametrize("dma", [8.0, 1.5], ids=["full_rate_dma", "slow_dma"])
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_step_matches_two_evaluations(sim_board, overlay, case: str, bits: int, dma: float) -> None:
    from codesign.board.sim import SimBoard

    if not sim_board.fast_step:
        pytest.skip("this Verilator build has no fast step (the board already uses two evaluations)")
    kind, kw, mode = CASES[case]
    fast = SimBoard(overlay, dma_bytes_per_cycle=dma)
    slow = SimBoard(overlay, dma_bytes_per_cycle=dma, fast_step=False)
    try:
        assert fast.fast_step and not slow.fast_step
        rf, cf = _run(fast, overlay, kind, kw, mode, bits)
        rs, cs = _run(slow, overlay, kind, kw, mode, bits)
        np.testing.assert_array_equal(rf.output, rs.output)
        assert rf.counters == rs.counters
        assert rf.jobs == rs.jobs
        assert cf == cs  # every simulated cycle, MMIO handshakes included
        assert fast.cycle == slow.cycle
    finally:
        fast.close()
        slow.close()
