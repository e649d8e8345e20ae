"""cocotb 2.x regression: every core x bit-width on Verilator and Icarus.

Each case is built once per (core, bits, simulator) and its testbench asserts
RTL == golden == C-sim (ctypes) on >= 200 seeded random vectors with bubbles, back-pressure,
a reset mid-stream and extreme values. On Verilator the cycle-model test also checks the RTL
busy counter against exp_cycles() (<= 5 %).
"""

from __future__ import annotations

import json
import os

import pytest

from codesign.hw import csim, rtlsim
from codesign.hw.cores import CORES

TEST_BITS = (2, 3, 4, 5, 6, 8)  # the candidate bit-widths of the regression

pytestmark = pytest.mark.rtl
SEED = int(os.environ.get("CODESIGN_SEED", "20261122"))


@pytest.mark.parametrize("simulator", rtlsim.SIMULATORS)
@pytest.mark.parametrize("bits", TEST_BITS)
@pytest.mark.parametrize("core", list(CORES))
def test_rtl(generated, core: str, bits: int, simulator: str, tmp_path) -> None:
    if not rtlsim.available(simulator):
        pytest.skip(f"{simulator} not available")
    gen = generated(core, bits)
    results = tmp_path / "results.json"
    env = {"CODESIGN_CYCLES": "1" if simulator == "verilator" else "0", "CODESIGN_RESULTS": str(results)}
    if gen.core().is_hls:
        env["CODESIGN_CSIM_LIB"] = str(csim.build_library(gen))
    seed = SEED + bits
    print(f"seed {seed} (set CODESIGN_SEED to reproduce with a different base)")
    rtlsim.run_test(gen, simulator, f"tb_{core}", seed=seed, extra_env=env, tag="pytest")
    if simulator == "verilator":
        cycles = json.loads(results.read_text())["cycles"]
        err = abs(cycles["measured"] - cycles["expected"]) / cycles["expected"]
        assert err <= 0.05, f"{gen.spec.name}: cycle model off by {err:.1%}: {cycles}"


def test_another_view_runs_the_same_testbench(generated, tmp_path) -> None:
    """The plumbing the HLS view uses (test_vitis_hls): a source list other than the twin's, with
    the same module, is built in its own folder and passes the twin's testbench."""
    if not rtlsim.available("verilator"):
        pytest.skip("verilator not available")
    gen = generated("cycle_counter", 4)
    copy = tmp_path / "view" / gen.verilog_sources[0].name
    copy.parent.mkdir()
    copy.write_text(gen.verilog_sources[0].read_text())
    env = {"CODESIGN_CSIM_LIB": str(csim.build_library(gen))}
    xml = rtlsim.run_test(gen, "verilator", "tb_cycle_counter", extra_env=env, tag="view", sources=[copy], view="copy")
    assert xml.parent.parent == rtlsim.build_dir_for(gen, "verilator", view="copy")
