"""The synthesis step on tiny designs synthesized for real: counts, memory placement and the timing
estimate against expectations that follow from the designs' structure (not from earlier runs)."""

from __future__ import annotations

import math

import pytest

from codesign.hw.synth import delays
from codesign.hw.synth.netlist import load_netlist
from codesign.hw.synth.run import NETLIST

from .conftest import needs_yosys

pytestmark = [pytest.mark.synth, needs_yosys]

XOR_WIDTHS = (4, 36, 216)
ADD_WIDTHS = (32, 64)


def xor_reduce(n: int) -> str:
    return f"""module xor{n}(input clk, input [{n - 1}:0] d, output reg y);
  reg [{n - 1}:0] r;
  always @(posedge clk) begin r <= d; y <= ^r; end
endmodule
"""


def adder(w: int) -> str:
    return f"""module add{w}(input clk, input [{w - 1}:0] a, b, output reg [{w - 1}:0] s);
  reg [{w - 1}:0] ra, rb;
  always @(posedge clk) begin ra <= a; rb <= b; s <= ra + rb; end
endmodule
"""


DESIGNS = {
    # Two FFs in a row; the synchronous reset keeps them out of a shift-register LUT.
    "ff2ff": """module ff2ff(input clk, input rst, input d, output reg q);
  reg a;
  always @(posedge clk) if (rst) begin a <= 1'b0; q <= 1'b0; end else begin a <= d; q <= a; end
endmodule
""",
    **{f"xor{n}": xor_reduce(n) for n in XOR_WIDTHS},
    **{f"add{w}": adder(w) for w in ADD_WIDTHS},
    # The product is XORed with the operands, so neither the operand registers nor the product
    # register can move into the DSP48E1: A/B -> P is combinational between fabric registers.
    "mul_comb": """module mul_comb(input clk, input [15:0] a, b, output reg [31:0] p);
  reg [15:0] ra, rb;
  always @(posedge clk) begin ra <= a; rb <= b; p <= (ra * rb) ^ {ra, rb}; end
endmodule
""",
    # The same product with a pipeline register after the multiply and one after that.
    "mul_pipe": """module mul_pipe(input clk, input [15:0] a, b, output reg [31:0] p);
  reg [15:0] ra, rb;
  reg [31:0] m;
  always @(posedge clk) begin ra <= a; rb <= b; m <= ra * rb; p <= m; end
endmodule
""",
    "mems": """module mems(input clk, input we, input [9:0] wa, ra, input [31:0] d,
            output reg [31:0] q_sync, output [31:0] q_async, output [7:0] q_small);
  reg [31:0] bram_mem [0:1023];
  reg [31:0] lut_mem [0:1023];
  reg [7:0] small_mem [0:15];
  always @(posedge clk) begin
    if (we) begin bram_mem[wa] <= d; lut_mem[wa] <= d; small_mem[wa[3:0]] <= d[7:0]; end
    q_sync <= bram_mem[ra];
  end
  assign q_async = lut_mem[ra];
  assign q_small = small_mem[ra[3:0]];
endmodule
""",
}


@pytest.fixture(scope="module")
def results(synth_many):
    return synth_many(DESIGNS)


def test_ff_to_ff_is_clock_to_q_net_and_setup(results) -> None:
    t = results["ff2ff"].timing
    expect = delays.FF_CLK_TO_Q_NS + delays.NET_NS + delays.FF_SETUP_NS["D"]
    assert t.worst_ns == pytest.approx(expect, abs=1e-3)
    assert results["ff2ff"].utilization.used["FF"] == 2


@pytest.mark.parametrize("n", XOR_WIDTHS)
def test_xor_reduction_levels_are_bounded_by_the_lut_fan_in(results, n: int) -> None:
    path = results[f"xor{n}"].timing.paths[0]
    least = math.ceil(math.log(n, 6))  # a LUT6 sees at most six bits: ceil(log6 n) levels at least
    assert least <= path.lut_levels <= math.ceil(math.log2(n))
    # Each level is one general net into a LUT; the last LUT feeds only its slice's FF.
    expect = delays.FF_CLK_TO_Q_NS + path.lut_levels * (delays.NET_NS + delays.LUT_NS) + delays.FF_SETUP_NS["D"]
    assert path.total_ns == pytest.approx(expect, abs=1e-3)
    assert results[f"xor{n}"].utilization.used["FF"] == n + 1


def test_xor_reduction_estimate_grows_with_width(results) -> None:
    worst = [results[f"xor{n}"].timing.worst_ns for n in XOR_WIDTHS]
    assert worst == sorted(worst) and len(set(worst)) == len(worst)


@pytest.mark.parametrize("w", ADD_WIDTHS)
def test_adder_path_runs_through_the_whole_carry_chain(results, w: int) -> None:
    r = results[f"add{w}"]
    assert r.utilization.used["CARRY"] == w // 4  # a ripple adder: one CARRY4 per four bits
    assert r.utilization.used["FF"] == 3 * w
    path = r.timing.paths[0]
    assert path.carry4 == w // 4
    assert path.end.startswith("s[")


def test_adder_estimate_grows_by_one_carry_stage_per_four_bits(results) -> None:
    # 32 more bits are 8 more CARRY4 stages on the path, each crossed CI -> CO[3].
    extra = results["add64"].timing.worst_ns - results["add32"].timing.worst_ns
    assert extra == pytest.approx((64 - 32) // 4 * delays.CARRY4_CI_TO_CO3_NS, abs=0.01)


def _dsp_params(result) -> list[dict[str, object]]:
    net = load_netlist(result.folder / NETLIST, result.top)
    return [c.params for c in net.cells if c.type == "DSP48E1"]


def test_dsp_pipeline_registers_shorten_the_multiplier_path(results) -> None:
    comb, pipe = results["mul_comb"], results["mul_pipe"]
    assert comb.utilization.used["DSP"] == pipe.utilization.used["DSP"] == 1  # 16x16 fits one 25x18
    assert all(p["MREG"] == 0 and p["PREG"] == 0 for p in _dsp_params(comb))
    assert all(p["MREG"] == 1 and p["PREG"] == 1 for p in _dsp_params(pipe))
    # Without M and P registers the multiplier array lies on a path that ends in the fabric: at
    # least the array (the fastest MULTIPLY-mode input-to-P arc), a net out of the DSP and a setup,
    # whether the operands come from fabric FFs or from the DSP's own A/B registers.
    worst = comb.timing.paths[0]
    assert worst.start_type == "DSP48E1" or any(h.type == "DSP48E1" for h in worst.hops)
    array = min(delays.DSP_COMB_TO_P_NS[port][("MULTIPLY", "FALSE")] for port in ("A", "B"))
    assert worst.total_ns >= array + delays.NET_NS + delays.FF_SETUP_NS["D"]
    assert pipe.timing.worst_ns < comb.timing.worst_ns - 1.0


def test_memory_with_a_combinational_read_is_reported_as_lutram(results) -> None:
    r = results["mems"]
    mems = {m.name: m for m in r.memories}
    assert set(mems) == {"bram_mem", "lut_mem", "small_mem"}
    assert mems["bram_mem"].mapped_to == "bram"
    assert mems["lut_mem"].mapped_to == "lutram" and mems["small_mem"].mapped_to == "lutram"
    assert [m.name for m in r.lutram_memories()] == ["lut_mem"]  # the 16x8 one is rightly LUTRAM
    assert "combinational read" in r.lutram_memories()[0].reason()
    assert r.utilization.used["BRAM36"] == 1  # 32 Kbit: one 36 Kbit block
    assert r.utilization.used["LUTRAM"] >= 32 * 1024 // 64  # a LUT holds at most 64 bits


def test_cache_reuses_the_folder_and_filelist_names_the_top(synth_many, results) -> None:
    again = synth_many({"ff2ff": DESIGNS["ff2ff"]})["ff2ff"]
    assert again.cached
    assert again.utilization == results["ff2ff"].utilization
    lines = (again.folder / "filelist.f").read_text().splitlines()
    assert lines[0] == "# top: ff2ff" and lines[1].endswith("ff2ff.v")
    assert again.yosys_version.startswith("Yosys ")
