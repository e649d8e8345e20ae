"""Compiled layers against lowering afresh: the same register writes and DMA words, image after image.

The oracle is the per-job path the driver used before layers were compiled:
``lower`` + ``descriptor`` + ``pack_job_input`` on each image. A compiled layer built from one
image must send exactly those words and registers for any other image of the same shape.
"""

from __future__ import annotations

import numpy as np
import pytest

from board.util import random_layer
from codesign.board.program import compile_layer
from codesign.hw.mapping import descriptor, lower, pack_job_input
from codesign.hw.regmap import by_name
from codesign.quant.dyadic import Act, qrange

REG = by_name()

# (kind, random_layer keyword arguments, driver img2col mode)
CASES = {
    "conv3x3_host": ("conv", {"cin": 8, "cout": 12}, "host"),
    "conv3x3_hw": ("conv", {"cin": 16, "cout": 12}, "hw"),
    "conv_several_tiles_hw": ("conv", {"hw": 3, "cin": 32, "cout": 300}, "auto"),
    "conv_s2_signed": ("conv", {"cin": 8, "stride": 2, "a_signed": True, "act": Act.NONE, "out_signed": True}, "auto"),
    "depthwise": ("conv", {"cin": 40, "cout": 40, "groups": 40}, "auto"),
    "grouped": ("conv", {"cin": 8, "cout": 12, "groups": 2}, "auto"),
    "dense": ("dense", {"cin": 70, "cout": 300}, "auto"),
}


def _fresh(node, x, engine, spec, in_t, out_t, mode):
    """Registers and DMA words of every job, lowered from ``x`` the old way."""
    shp, jobs = lower(node, x, engine, spec, mode)
    regs, words = [], []
    for job in jobs:
        desc = descriptor(node, shp, job, engine, in_t, out_t)
        r = [(REG[k].offset, int(v) & 0xFFFFFFFF) for k, v in desc.items()] + [(REG["PP_ADDR"].offset, 0)]
        for b, m, s in zip(job.bias, job.mult, job.shift, strict=True):
            r += [(REG["PP_BIAS"].offset, int(b) & 0xFFFFFFFF), (REG["PP_MULT"].offset, int(m) & 0xFFFFFFFF),
                  (REG["PP_SHIFT"].offset, int(s) & 0xFFFFFFFF)]
        regs.append(r)
        words.append(pack_job_input(job, engine, in_t.signed))
    return regs, words


@pytest.mark.unit
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_compiled_layer_sends_what_fresh_lowering_sends(overlay, case: str, bits: int) -> None:
    kind, kw, mode = CASES[case]
    rng = np.random.default_rng(11)
    node, x0, in_t, out_t = random_layer(rng, kind, bits, **kw)
    engine = overlay.engine(bits)
    prog = compile_layer(node, x0, engine, overlay, in_t, out_t, mode)
    lo, hi = qrange(bits, in_t.signed)
    for x in (x0, rng.integers(lo, hi + 1, size=x0.shape)):  # the image it was built from, and another
        regs, words = _fresh(node, x, engine, overlay, in_t, out_t, mode)
        acts = prog.activation_words(x)
        assert len(prog.jobs) == len(regs)
        for job, r, w in zip(prog.jobs, regs, words, strict=True):
            assert list(job.regs) == r
            np.testing.assert_array_equal(np.concatenate([job.w_words, acts[job.block]]), w)
    if mode == "hw":
        assert prog.path == "hw_img2col"
