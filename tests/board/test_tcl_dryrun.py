"""Dry run of the Vivado flow under tclsh with every Vivado command stubbed.

The stubs record each call; the test then checks that every IP, port and address the TCL
names exists in the generated overlay manifest, the overlay RTL and the register map, and that
the flow ends by copying <top>.bit and <top>.hwh into the output directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from codesign.hw.device import get_device
from codesign.hw.hls_wrapper import core_views, export_dir, render_stub
from codesign.hw.overlay import BOARD_DEVICE, generate_overlay_cores
from codesign.hw.paths import REPO_ROOT, VIVADO_SCRIPTS
from codesign.hw.regmap import ADDR_WIDTH, REGMAP

SEP = "\x1f"
# Vivado IP interface names the scripts may use (AXI DMA 7.1 and the PS blocks' ports).
DMA_PINS = {"M_AXIS_MM2S", "S_AXIS_S2MM", "S_AXI_LITE", "M_AXI_MM2S", "M_AXI_S2MM"}
PS_PINS = {"M_AXI_GP0", "S_AXI_HP0", "FCLK_CLK0", "M_AXI_HPM0_LPD", "S_AXI_HP0_FPD", "pl_clk0"}

STUBS = r"""
set ::dry_log [open $::env(DRYRUN_LOG) w]
proc record {cmd args} { puts $::dry_log [join [concat [list $cmd] $args] "\x1f"]; flush $::dry_log }
foreach cmd {create_project add_files update_compile_order create_bd_design apply_bd_automation
             set_property connect_bd_intf_net connect_bd_net assign_bd_address validate_bd_design
             save_bd_design generate_target launch_runs} {
    proc $cmd {args} "record $cmd {*}\$args; return {}"
}
proc create_bd_cell {args} { record create_bd_cell {*}$args; return [lindex $args end] }
proc get_bd_intf_pins {args} { record get_bd_intf_pins {*}$args; return [lindex $args end] }
proc get_bd_pins {args} { record get_bd_pins {*}$args; return [lindex $args end] }
proc get_bd_addr_segs {args} { record get_bd_addr_segs {*}$args; return "seg:[lindex $args end]" }
proc get_files {args} { record get_files {*}$args; return [lindex $args end] }
proc make_wrapper {args} { record make_wrapper {*}$args; return "$::proj_dir/overlay_wrapper.v" }
proc current_fileset {args} { return sources_1 }
proc current_project {args} { return overlay }
# the board parts "installed": DRYRUN_BOARD_PARTS (space-separated), matched like Vivado's -quiet pattern
proc get_board_parts {args} {
    record get_board_parts {*}$args
    set parts [expr {[info exists ::env(DRYRUN_BOARD_PARTS)] ? $::env(DRYRUN_BOARD_PARTS) : ""}]
    return [lsearch -all -inline $parts [lindex $args end]]
}
proc get_runs {args} { return [lindex $args end] }
proc get_property {args} { return "100%" }
proc wait_on_run {args} {
    record wait_on_run {*}$args
    file mkdir "$::proj_dir/overlay.runs/impl_1" "$::proj_dir/overlay.gen/sources_1/bd/overlay/hw_handoff"
    close [open "$::proj_dir/overlay.runs/impl_1/overlay_wrapper.bit" w]
    close [open "$::proj_dir/overlay.gen/sources_1/bd/overlay/hw_handoff/overlay.hwh" w]
}
"""


def _dry_run(tmp_path: Path, board: str, ip_dir: Path, bits: str = "4,8", impl: str = "rtl",
             board_parts: str = "") -> tuple[subprocess.CompletedProcess, list[list[str]], Path]:
    out = tmp_path / f"overlay_{board}_{impl}"
    log = tmp_path / f"{board}_{impl}.log"
    driver = tmp_path / f"dry_{board}_{impl}.tcl"
    driver.write_text(STUBS + f"\nset argv [list {{{out}}} {board} {bits} {impl}]\nset argc 4\n"
                      f"source {{{VIVADO_SCRIPTS / 'build_overlay.tcl'}}}\n")
    env = dict(os.environ, DRYRUN_LOG=str(log), CODESIGN_IP_DIR=str(ip_dir), DRYRUN_BOARD_PARTS=board_parts)
    proc = subprocess.run(["tclsh", str(driver)], capture_output=True, text=True, env=env, cwd=REPO_ROOT, check=False)
    calls = [line.split(SEP) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls, out


def _ip(tmp_path: Path, device: str) -> Path:
    root = tmp_path / f"ip_{device}"
    generate_overlay_cores((4, 8), root, device)
    return root


pytestmark = pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is not installed")


def _bytes(vivado_range: str) -> int:
    """Vivado's range text ("4K", "64K", "1M") in bytes."""
    return int(vivado_range[:-1]) << {"K": 10, "M": 20, "G": 30}[vivado_range[-1]]


def _tcl_list(text: str) -> list[str]:
    """Elements of a Tcl list (braced elements unbraced; no escapes are needed by these scripts)."""
    out, i = [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
        elif text[i] == "{":
            depth, j = 1, i + 1
            while depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            out.append(text[i + 1:j - 1])
            i = j
        else:
            j = i
            while j < len(text) and not text[j].isspace():
                j += 1
            out.append(text[i:j])
            i = j
    return out


def _by_cmd(calls: list[list[str]]) -> dict[str, list[list[str]]]:
    by_cmd: dict[str, list[list[str]]] = {}
    for c in calls:
        by_cmd.setdefault(c[0], []).append(c[1:])
    return by_cmd


@pytest.mark.parametrize("board", sorted(BOARD_DEVICE))
def test_block_design_names_only_what_exists(tmp_path, board: str) -> None:
    device = BOARD_DEVICE[board]
    proc, calls, out = _dry_run(tmp_path, board, _ip(tmp_path, device))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    man = json.loads((out / "src" / "overlay.json").read_text())
    top = man["top"]
    rtl = (out / "src" / "rtl" / f"{top}.v").read_text()
    ports = {p.split("_tdata")[0] for p in re.findall(r"\b(s_axis_tdata|m_axis_tdata)\b", rtl)}
    assert ports == {"s_axis", "m_axis"} and "s_axi_control_awaddr" in rtl

    by_cmd = _by_cmd(calls)
    # the part of the device the IP was generated for
    (proj,) = by_cmd["create_project"]
    assert proj[proj.index("-part") + 1] == get_device(device).part
    # every RTL file added exists and is the manifest's
    added = [a for call in by_cmd["add_files"] for arg in call for a in arg.split() if a.endswith(".v")]
    assert added and all(Path(a).is_file() for a in added if "vivado_" not in a)  # not the wrapper
    assert any(Path(a).name == f"{top}.v" for a in added)
    # cells: the overlay module by reference, the DMA by name
    cells = {c[-1]: c for c in by_cmd["create_bd_cell"]}
    assert cells["overlay_0"][cells["overlay_0"].index("-reference") + 1] == top
    assert "axi_dma_0" in cells
    # every pin named exists on its cell
    overlay_ports = {v if isinstance(v, str) else k for k, v in man["ports"].items()}
    for call in by_cmd.get("get_bd_intf_pins", []) + by_cmd.get("get_bd_pins", []):
        cell, _, pin = call[-1].strip("/").rpartition("/")
        cell = cell.rpartition("/")[2]
        if cell == "overlay_0":
            assert pin in overlay_ports and re.search(rf"\b{pin}(_tdata|_awaddr)?\b", rtl), pin
        elif cell == "axi_dma_0":
            assert pin in DMA_PINS, pin
        else:
            assert pin in PS_PINS, (cell, pin)
    for call in by_cmd["apply_bd_automation"]:
        cfg = " ".join(call)
        for cell, pin in re.findall(r"/(\w+)/(\w+)", cfg):
            assert pin in {"overlay_0": overlay_ports, "axi_dma_0": DMA_PINS}.get(cell, PS_PINS), (cell, pin)
    # addresses: exactly the manifest's map
    assigned = {}
    for call in by_cmd["assign_bd_address"]:
        seg = call[-1].removeprefix("seg:")
        assigned[seg] = (call[call.index("-offset") + 1], call[call.index("-range") + 1])
    want = {k: (v["base"], v["range"]) for k, v in man["address_map"].items()}
    assert assigned == want
    # the overlay's segment is its register file: 2**ADDR_WIDTH bytes, at least Vivado's 4K
    assert _bytes(assigned["overlay_0/s_axi_control"][1]) == max(4096, 1 << ADDR_WIDTH)
    # synthesis retimes (the engines' adder-tree registers sit after one sum) before the run starts
    props = [c for c in by_cmd["set_property"] if c[0] == "STEPS.SYNTH_DESIGN.ARGS.RETIMING"]
    assert props == [["STEPS.SYNTH_DESIGN.ARGS.RETIMING", "true", "synth_1"]]
    assert calls.index(["set_property", *props[0]]) < calls.index(next(c for c in calls if c[0] == "launch_runs"))
    # the flow ends with the files pynq.Overlay loads
    assert (out / f"{top}.bit").is_file() and (out / f"{top}.hwh").is_file()


def test_rtl_register_offsets_are_the_register_map(tmp_path) -> None:
    _proc, _calls, out = _dry_run(tmp_path, "pynq_z2", _ip(tmp_path, "xc7z020"))
    man = json.loads((out / "src" / "overlay.json").read_text())
    rtl = (out / "src" / "rtl" / f"{man['top']}.v").read_text()
    found = {m[0]: int(m[1], 16) for m in re.findall(r"localparam \[AXIL_AW-1:0\] A_(\w+) = \d+'h([0-9A-F]+);", rtl)}
    for r in REGMAP:
        assert found[r.name] == r.offset
        assert man["registers"][r.name]["offset"] == r.offset
        if r.width == 64:
            assert found[f"{r.name}_HI"] == r.offset + 4
    assert set(found) == {r.name for r in REGMAP} | {f"{r.name}_HI" for r in REGMAP if r.width == 64}


def test_board_and_ip_device_mismatch_is_refused(tmp_path) -> None:
    proc, _calls, _out = _dry_run(tmp_path, "zcu104", _ip(tmp_path, "xc7z020"))
    assert proc.returncode == 2 and "make ip DEVICE=zcu104" in proc.stderr


def test_missing_ip_is_a_clear_message(tmp_path) -> None:
    proc, _calls, _out = _dry_run(tmp_path, "pynq_z2", tmp_path / "empty", bits="4")
    assert proc.returncode == 2 and "make ip BITS=4" in proc.stderr


AXI4_CLOCK_KEYS = ("Clk_master", "Clk_slave", "Clk_xbar")


@pytest.mark.parametrize("installed", [True, False], ids=["board_files", "no_board_files"])
def test_pynq_z2_board_part_or_explicit_ps7(tmp_path, installed: bool) -> None:
    board_part = "tul.com.tw:pynq-z2:part0:1.0"
    parts = f"xilinx.com:zcu104:part0:1.1 {board_part}" if installed else "xilinx.com:zcu104:part0:1.1"
    proc, calls, _out = _dry_run(tmp_path, "pynq_z2", _ip(tmp_path, "xc7z020"), board_parts=parts)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    by_cmd = _by_cmd(calls)
    board_props = [c for c in by_cmd["set_property"] if c[0] == "board_part"]
    ps7_rule = next(c for c in by_cmd["apply_bd_automation"] if "xilinx.com:bd_rule:processing_system7" in c)
    preset = _tcl_list(ps7_rule[ps7_rule.index("-config") + 1])
    ps_dicts = [dict(zip(_tcl_list(c[1])[0::2], _tcl_list(c[1])[1::2])) for c in by_cmd["set_property"]
                if c[0] == "-dict" and c[-1] == "processing_system7_0"]
    ps = {k: v for d in ps_dicts for k, v in d.items()}
    if installed:
        assert board_props == [["board_part", board_part, "overlay"]]
        assert preset[preset.index("apply_board_preset") + 1] == "1"
        assert "CONFIG.PCW_UIPARAM_DDR_PARTNO" not in ps  # the board preset configures the DDR
    else:
        assert board_props == []
        assert preset[preset.index("apply_board_preset") + 1] == "0"
        assert ps["CONFIG.PCW_UIPARAM_DDR_PARTNO"] == "MT41J256M16 RE-125"
        assert ps["CONFIG.PCW_UART0_UART0_IO"] == "MIO 14 .. 15"
    # either way: FCLK0 at the manifest's clock, GP0 for AXI-lite, HP0 for the DMA
    assert ps["CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"] == "100" and ps["CONFIG.PCW_FPGA_FCLK0_ENABLE"] == "1"
    assert ps["CONFIG.PCW_USE_M_AXI_GP0"] == "1" and ps["CONFIG.PCW_USE_S_AXI_HP0"] == "1"
    # the axi4 automation's clock keys are the current ones, all on FCLK0
    axi4 = [c for c in by_cmd["apply_bd_automation"] if "xilinx.com:bd_rule:axi4" in c]
    assert len(axi4) == 4
    for call in axi4:
        items = _tcl_list(call[call.index("-config") + 1])
        cfg = dict(zip(items[0::2], items[1::2]))
        for key in AXI4_CLOCK_KEYS:
            assert cfg[key] == "/processing_system7_0/FCLK_CLK0 (100 MHz)", (key, cfg)
        assert "Clk" not in cfg  # the old key, which current Vivado no longer reads


def _fake_exports(ip_dir: Path) -> None:
    """Stand-ins for what Vitis HLS exports: the HLS top module with its parsed ports."""
    for core_dir in sorted(p.parent for p in ip_dir.glob("*/ip.json")):
        hls, _twin, _map = core_views(core_dir)
        export_dir(core_dir).mkdir(parents=True, exist_ok=True)
        (export_dir(core_dir) / f"{hls.module}.v").write_text(render_stub(hls))


def test_impl_hls_uses_the_hls_exports_behind_wrappers(tmp_path) -> None:
    ip_dir = _ip(tmp_path, "xc7z020")
    _fake_exports(ip_dir)
    proc, calls, out = _dry_run(tmp_path, "pynq_z2", ip_dir, impl="hls")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    man = json.loads((out / "src" / "overlay.json").read_text())
    assert man["impl"] == "hls"
    added = [Path(a) for call in _by_cmd(calls)["add_files"] for arg in call for a in arg.split() if a.endswith(".v")]
    names = {p.name for p in added}
    for core in man["cores"]:
        # the HLS export and a wrapper with the twin's module name, never the twin itself
        assert f"hls_{core}.v" in names
        wrapper = next(p for p in added if p.name == f"{core}.v")
        assert wrapper.parent.name == "hls_view" and re.search(rf"^module {core}\b", wrapper.read_text(), flags=re.M)
        assert f"hls_{core} u_hls" in wrapper.read_text()
        assert not any(p.parent.name == "rtl" and p.name == f"{core}.v" for p in added)
    assert any(p.name == f"{man['top']}.v" and p.parent.name == "rtl" for p in added)  # the top is the same


def test_impl_rtl_is_the_default_and_recorded(tmp_path) -> None:
    proc, _calls, out = _dry_run(tmp_path, "pynq_z2", _ip(tmp_path, "xc7z020"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((out / "src" / "overlay.json").read_text())["impl"] == "rtl"


def test_impl_hls_without_exports_is_a_clear_message(tmp_path) -> None:
    proc, calls, _out = _dry_run(tmp_path, "pynq_z2", _ip(tmp_path, "xc7z020"), impl="hls")
    assert proc.returncode == 2 and "IMPL=hls needs the Vitis HLS export" in proc.stderr
    assert not any(c[0] == "create_project" for c in calls)  # refused before any Vivado work


def test_unknown_impl_is_refused(tmp_path) -> None:
    proc, calls, _out = _dry_run(tmp_path, "pynq_z2", tmp_path / "empty", impl="vhdl")
    assert proc.returncode == 2 and "unknown IMPL 'vhdl'" in proc.stderr and calls == []
