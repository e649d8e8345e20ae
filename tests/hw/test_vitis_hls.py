"""Vitis HLS csim/csynth/cosim/export of the generated TCL (skipped without vitis_hls)."""

from __future__ import annotations

import pytest

from codesign.hw import flow

pytestmark = [pytest.mark.vitis_hls, pytest.mark.slow]


@pytest.mark.parametrize("core", ["mac_tree", "postproc"])
def test_vitis_hls_flow(generated, core: str) -> None:
    gen = generated(core, 4)
    zip_path = flow.run_vitis_hls(gen)
    assert zip_path.exists()
