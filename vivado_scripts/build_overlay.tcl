# Build the OQA overlay bitstream: vivado -mode batch -source vivado_scripts/build_overlay.tcl \
#     -tclargs <out_dir> [pynq_z2|zcu104] [bits] [rtl|hls]
# 1. renders the overlay RTL and its manifest from the generated IP (python -m codesign.hw.overlay),
#    with the cores in the chosen view: rtl = the Verilog twins (default), hls = the RTL Vitis HLS
#    exported for each core behind a wrapper with the twin's name and ports,
# 2. creates the project (with the board part when its board files are installed) and the
#    block design of the board (vivado_scripts/overlay/bd_<board>.tcl),
# 3. runs synthesis and implementation to write_bitstream,
# 4. copies <top>.bit and <top>.hwh into <out_dir> (the names PynqBoard looks for).
# Every IP name, port and address comes from the manifest; tests/board/test_tcl_dryrun.py runs
# this script under tclsh with the Vivado commands stubbed and checks them.

set script_dir [file normalize [file dirname [info script]]]
set repo_root [file dirname $script_dir]
set out_dir [file normalize [expr {[llength $argv] > 0 ? [lindex $argv 0] : "$repo_root/build/overlay"}]]
set board [expr {[llength $argv] > 1 ? [lindex $argv 1] : "pynq_z2"}]
if {[llength $argv] > 2} {
    set bits [lindex $argv 2]
} elseif {[info exists ::env(BITS)]} {
    set bits $::env(BITS)
} else {
    set bits "4,8"
}
if {[llength $argv] > 3} {
    set impl [lindex $argv 3]
} elseif {[info exists ::env(IMPL)]} {
    set impl $::env(IMPL)
} else {
    set impl rtl
}
if {$impl ni {rtl hls}} {
    puts stderr "build_overlay: unknown IMPL '$impl' (known: rtl, hls)"
    exit 2
}
set ip_dir [expr {[info exists ::env(CODESIGN_IP_DIR)] ? $::env(CODESIGN_IP_DIR) : "$repo_root/build/ip"}]
set bd_script "$script_dir/overlay/bd_${board}.tcl"
if {![file exists $bd_script]} {
    puts stderr "build_overlay: unknown board '$board' (known: pynq_z2, zcu104)"
    exit 2
}

# ---- 1. overlay RTL + manifest ---------------------------------------------------------
set python "$repo_root/.venv/bin/python"
if {![file executable $python]} { set python python3 }
set src_dir "$out_dir/src"
if {[catch {exec $python -m codesign.hw.overlay --bits $bits --ip-dir $ip_dir --out $src_dir --impl $impl 2>@1} msg]} {
    puts stderr "build_overlay: could not render the overlay: $msg"
    exit 2
}
source "$src_dir/overlay_manifest.tcl"
array set board_device {pynq_z2 xc7z020 zcu104 zcu104}
if {$OVERLAY(device) ne $board_device($board)} {
    puts stderr "build_overlay: the IP under $ip_dir targets $OVERLAY(device), not $board; regenerate it with make ip DEVICE=$board_device($board)"
    exit 2
}

# ---- 2. project + block design -----------------------------------------------------------
source $bd_script
set proj_dir "$out_dir/vivado_$board"
create_project overlay $proj_dir -part $OVERLAY(part) -force
# The board part brings the PS presets (DDR, MIO); without its board files the board script
# configures the PS explicitly.
set board_part [lindex [lsort -dictionary [get_board_parts -quiet [overlay_board_part]]] end]
set use_board_preset [expr {$board_part ne "" ? 1 : 0}]
if {$use_board_preset} {
    set_property board_part $board_part [current_project]
} else {
    puts "build_overlay: no board files match [overlay_board_part]; configuring the PS explicitly"
}
add_files -norecurse $OVERLAY(rtl)
update_compile_order -fileset sources_1
create_overlay_bd overlay $use_board_preset

# ---- 3. implementation -------------------------------------------------------------------
set bd_file [get_files overlay.bd]
generate_target all $bd_file
set wrapper [make_wrapper -files $bd_file -top]
add_files -norecurse $wrapper
set_property top overlay_wrapper [current_fileset]
update_compile_order -fileset sources_1
# The engines register their adder trees level by level (docs/hw.md, "The mac_tree RTL"), so
# retiming is not needed for them; it stays on as a margin for the control paths.
set_property STEPS.SYNTH_DESIGN.ARGS.RETIMING true [get_runs synth_1]
launch_runs impl_1 -to_step write_bitstream -jobs 2
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    puts stderr "build_overlay: implementation failed; see $proj_dir/overlay.runs/impl_1"
    exit 1
}

# ---- 4. .bit + .hwh for pynq.Overlay -----------------------------------------------------
set runs_dir "$proj_dir/overlay.runs/impl_1"
file mkdir $out_dir
file copy -force "$runs_dir/overlay_wrapper.bit" "$out_dir/$OVERLAY(top).bit"
set hwh [lindex [glob -nocomplain "$proj_dir/overlay.gen/sources_1/bd/overlay/hw_handoff/overlay.hwh" \
                                  "$proj_dir/overlay.srcs/sources_1/bd/overlay/hw_handoff/overlay.hwh"] 0]
file copy -force $hwh "$out_dir/$OVERLAY(top).hwh"
puts "build_overlay: wrote $out_dir/$OVERLAY(top).bit and .hwh (IMPL=$OVERLAY(impl), config hash $OVERLAY(config_hash))"
