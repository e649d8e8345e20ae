"""g++ C-sim (-Wall -Werror, ASan/UBSan, hls4ml ap_types) of every HLS core == golden."""

from __future__ import annotations

import pytest

from codesign.hw import flow
from codesign.hw.cores import CORES

TEST_BITS = (2, 3, 4, 5, 6, 8)  # the candidate bit-widths of the regression

HLS_CORES = [name for name, cls in CORES.items() if cls.is_hls]

pytestmark = pytest.mark.csim


@pytest.mark.parametrize("bits", TEST_BITS)
@pytest.mark.parametrize("core", HLS_CORES)
def test_csim_equals_golden(generated, core: str, bits: int) -> None:
    gen = generated(core, bits)
    result = flow.csim_check(gen, seed=1000 + bits, n_vectors=200)
    assert result.passed, f"{gen.spec.name}: C-sim != golden: {result.detail}"
