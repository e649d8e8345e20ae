"""Vitis HLS csim/csynth/cosim/export of the generated TCL, and the same cocotb testbench as the
Verilog twin run against the exported HLS RTL (skipped without vitis_hls)."""

from __future__ import annotations

import pytest

from codesign.hw import csim, flow, rtlsim
from codesign.hw.cores import CORES
from codesign.hw.hls_wrapper import hls_view_sources

pytestmark = [pytest.mark.vitis_hls, pytest.mark.slow]
HLS_CORES = [name for name, cls in CORES.items() if cls.is_hls]


@pytest.mark.parametrize("core", HLS_CORES)
def test_vitis_hls_flow(generated, core: str) -> None:
    gen = generated(core, 4)
    zip_path = flow.run_vitis_hls(gen)
    assert zip_path.exists()


@pytest.mark.parametrize("core", HLS_CORES)
def test_twin_testbench_on_the_hls_rtl(generated, core: str, tmp_path) -> None:
    """The cocotb testbench of the twin (RTL == golden == C-sim) against Vitis HLS's RTL behind
    its wrapper (the twin's module name and ports), on Verilator."""
    if not rtlsim.available("verilator"):
        pytest.skip("verilator not available")
    gen = generated(core, 4)
    flow.run_vitis_hls(gen)
    sources = hls_view_sources(gen.root, tmp_path / "wrapper")
    env = {"CODESIGN_CYCLES": "0", "CODESIGN_CSIM_LIB": str(csim.build_library(gen))}
    rtlsim.run_test(gen, "verilator", f"tb_{core}", extra_env=env, tag="hls", sources=sources, view="hls")
