"""The HLS C++ top and the Verilog twin of every core have one port contract (no Xilinx tool).

The HLS side is read by :mod:`codesign.hw.hls_ports` from the rendered C++ (signature and
INTERFACE pragmas) under Vitis HLS's naming rule; the twin side from the rendered Verilog's
module header. Both must also agree with the core's ``ports()`` documentation. The IMPL=hls
wrapper generated from the same parse is linted with Verilator against a stub HLS module.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from codesign.hw import rtlsim
from codesign.hw.cores import CORES
from codesign.hw.hls_ports import (
    HLS_MODULE_PREFIX,
    Difference,
    PortParseError,
    RtlPort,
    compare,
    hls_interface,
    verilog_module,
)
from codesign.hw.hls_wrapper import core_views, render_stub, render_wrapper

pytestmark = pytest.mark.unit

REWRITTEN: set[str] = set()  # cores whose HLS view is being rewritten (none)
# Differences between an HLS top and its twin that are intended, each with its reason:
# {core: {(port, what): reason}}. Vitis's byte padding of TDATA is part of the naming rule
# (hls_ports.tdata_padding_ok), not a difference.
ALLOWED: dict[str, dict[tuple[str, str], str]] = {}
BITS = (3, 8)  # 3: TDATA not a whole number of bytes; 8: DSP-packed products


def _cores() -> list[object]:
    mark = pytest.mark.xfail(strict=False, reason="being rewritten on the overlay branch")
    return [pytest.param(c, marks=mark) if c in REWRITTEN else c for c in CORES]


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("core", _cores())
def test_hls_ports_are_the_twins(generated, core: str, bits: int) -> None:
    gen = generated(core, bits)
    hls, twin, _ = core_views(gen.root)
    diffs = compare(hls, twin)
    allowed = ALLOWED.get(core, {})
    unexpected = [d for d in diffs if (d.port, d.what) not in allowed]
    assert not unexpected, f"{gen.spec.name}: HLS and twin ports differ: {unexpected}"
    stale = set(allowed) - {(d.port, d.what) for d in diffs}
    assert not stale, f"{core}: allow-list entries that no longer differ: {stale}"
    assert hls.module == HLS_MODULE_PREFIX + gen.spec.name
    # the stream contract of the issue: every AXI4-Stream of the twin has its TLAST on the HLS side too
    hls_names = {p.key for p in hls.ports}
    for p in twin.ports:
        if p.key.endswith("_tlast"):
            assert p.key in hls_names, f"{gen.spec.name}: the HLS stream has no {p.name}"


@pytest.mark.parametrize("core", _cores())
def test_twin_ports_are_the_documented_ports(generated, core: str) -> None:
    gen = generated(core, 4)
    twin = verilog_module(gen.verilog.read_text(), gen.spec.name)
    documented = [(p.name, p.direction, p.width) for p in gen.core().ports()]
    assert [(p.name, p.direction, p.width) for p in twin.ports] == documented


@pytest.mark.parametrize("core", _cores())
def test_wrapper_lints_against_the_hls_module(generated, core: str, tmp_path) -> None:
    if not rtlsim.available("verilator"):
        pytest.skip("Verilator is not installed")
    gen = generated(core, 3)
    hls, twin, input_map = core_views(gen.root)
    (tmp_path / f"{twin.name}.v").write_text(render_wrapper(twin, hls, input_map))
    (tmp_path / f"{hls.module}.v").write_text(render_stub(hls))
    # every parameter value the twin accepts at instantiation must elaborate too (e.g. OFFSET_IN)
    for overrides in ([], [f"-G{k}=1" for k in twin.params if k == "OFFSET_IN"]):
        proc = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", twin.name, *overrides,
                               str(tmp_path / f"{twin.name}.v"), str(tmp_path / f"{hls.module}.v")],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]


def test_run_hls_tcl_sets_the_naming_rule(generated) -> None:
    tcl = (generated("mac_tree", 4).hls_dir / "run_hls.tcl").read_text()
    assert re.search(rf"^config_rtl\b.*-module_prefix {HLS_MODULE_PREFIX}(\s|$)", tcl, flags=re.M)
    assert re.search(r"^config_rtl\b.*-reset_level low", tcl, flags=re.M)


# ---- the parser on hand-written tops: the expected ports are Vitis's naming rule, by hand --
OLD_STYLE = """
struct beat_t { ap_uint<8> x[4]; ap_uint<1> last; };
typedef ap_axiu<12, 0, 0, 0> pkt_t;
static int helper(int a) { return a; }
void top(hls::stream<beat_t> &in, hls::stream<pkt_t> &out, const ap_int<32> lut[100], ap_uint<5> gain,
         ap_uint<16> *level, hls::stream<ap_uint<8> > &fifo) {
#pragma HLS INTERFACE mode=axis port=in
#pragma HLS INTERFACE axis port=out
#pragma HLS INTERFACE mode=ap_memory port=lut
#pragma HLS INTERFACE mode=s_axilite port=gain bundle=ctrl
#pragma HLS INTERFACE mode=ap_vld port=level
#pragma HLS INTERFACE mode=s_axilite port=return bundle=ctrl
    beat_t b = in.read();
    pkt_t p;
    out.write(p);
    ap_uint<8> v;
    fifo.read_nb(v);
    *level = lut[gain];
}
"""


def test_parser_applies_the_vitis_naming_rule() -> None:
    text = OLD_STYLE.replace("struct beat_t { ap_uint<8> x[4]; ap_uint<1> last; };", "typedef ap_uint<33> beat_t;")
    iface = hls_interface(text)
    got = {p.name: (p.direction, p.width) for p in iface.ports}
    want = {
        "ap_clk": ("in", 1), "ap_rst_n": ("in", 1),
        # a struct beat without ap_axis/hls::axis: data only, padded to whole bytes, no TLAST
        "in_TDATA": ("in", 40), "in_TVALID": ("in", 1), "in_TREADY": ("out", 1),
        # ap_axiu<12,0,0,0>: TKEEP, TSTRB and TLAST besides the data
        "out_TDATA": ("out", 16), "out_TVALID": ("out", 1), "out_TREADY": ("in", 1), "out_TKEEP": ("out", 2),
        "out_TSTRB": ("out", 2), "out_TLAST": ("out", 1),
        "lut_address0": ("out", 7), "lut_ce0": ("out", 1), "lut_q0": ("in", 32),
        "level": ("out", 16), "level_ap_vld": ("out", 1),
        "fifo_dout": ("in", 8), "fifo_empty_n": ("in", 1), "fifo_read": ("out", 1),
        "interrupt": ("out", 1),
    }
    axil = {k: v for k, v in got.items() if k.startswith("s_axi_ctrl_")}
    assert {k: v for k, v in got.items() if k not in axil} == want
    assert axil["s_axi_ctrl_WDATA"] == ("in", 32) and axil["s_axi_ctrl_AWADDR"] == ("in", None)
    assert len(axil) == 17 and "ap_start" not in got  # the block protocol lives in the bundle


def test_compare_reports_what_differs() -> None:
    twin = verilog_module("""
        module top #(parameter integer W = 12) (
            input wire ap_clk, input wire ap_rst_n,
            input wire [W-1:0] in_tdata, input wire in_tvalid, output wire in_tready, input wire in_tlast,
            output wire [7:0] level, input wire extra
        );
        endmodule""", "top")
    assert [p.width for p in twin.ports] == [1, 1, 12, 1, 1, 1, 8, 1]
    hls = hls_interface("""
        typedef hls::axis<ap_uint<12>, 0, 0, 0, (AXIS_ENABLE_DATA | AXIS_ENABLE_LAST), true> b_t;
        void top(hls::stream<b_t> &in, ap_uint<16> &level) {
        #pragma HLS INTERFACE mode=ap_ctrl_none port=return
        #pragma HLS INTERFACE mode=axis port=in
            b_t x; in.read_nb(x); level = x.data;
        }""")
    assert compare(hls, twin) == [Difference("extra", "only_twin"), Difference("level", "width", "hls 16, twin 8")]


def test_unsupported_interfaces_are_named() -> None:
    with pytest.raises(PortParseError, match="bram"):
        hls_interface("void t(int a[4]) {\n#pragma HLS INTERFACE mode=bram port=a\n}")
    with pytest.raises(PortParseError, match="no top function"):
        hls_interface("void t(int a) { }")


def test_wrapper_ties_and_pads_by_the_rule() -> None:
    twin = verilog_module("module m (input wire ap_clk, input wire [9:0] s_tdata, output wire [9:0] o_tdata,"
                          " output wire flag, input wire spare); endmodule", "m")
    from codesign.hw.hls_ports import HlsInterface

    hls = HlsInterface("m", (RtlPort("ap_clk", "in", 1), RtlPort("s_TDATA", "in", 16), RtlPort("s_TKEEP", "in", 2),
                             RtlPort("o_TDATA", "out", 16), RtlPort("ap_ready", "out", 1)))
    text = render_wrapper(twin, hls)
    assert ".s_TDATA({{6{1'b0}}, s_tdata})" in text and ".s_TKEEP({2{1'b1}})" in text
    assert "assign o_tdata = hls_o_TDATA[9:0];" in text and ".ap_ready(unused_ap_ready)" in text
    assert "assign flag = {1{1'b0}};" in text and "unused_twin_inputs = &{1'b0, spare}" in text
