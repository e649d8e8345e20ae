# Block design of the OQA overlay on ZCU104 (xczu7ev-ffvc1156-2-e): Zynq UltraScale+ PS with
# pl_clk0 at the manifest's clock, M_AXI_HPM0_LPD for AXI-lite, S_AXI_HP0_FPD for the DMA.
# The PMBus power rails of this board give OQA measured energy (PynqBoard.energy_uj).
source [file join [file dirname [info script]] bd_common.tcl]

# The board part (newest installed revision) build_overlay.tcl sets on the project when its
# board files are installed (Vivado ships them for ZCU104; without them the PS keeps its
# defaults, DDR included).
proc overlay_board_part {} { return "xilinx.com:zcu104:part0:*" }

proc create_overlay_bd {name use_board_preset} {
    global OVERLAY
    create_bd_design $name
    set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e:3.5 zynq_ultra_ps_e_0]
    apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config [list apply_board_preset $use_board_preset] $ps
    set_property -dict [list \
        CONFIG.PSU__USE__M_AXI_GP0 {0} \
        CONFIG.PSU__USE__M_AXI_GP1 {0} \
        CONFIG.PSU__USE__M_AXI_GP2 {1} \
        CONFIG.PSU__USE__S_AXI_GP2 {1} \
        CONFIG.PSU__SAXIGP2__DATA_WIDTH {64} \
        CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ $OVERLAY(clock_mhz) \
    ] $ps
    add_overlay_and_dma
    connect_overlay /zynq_ultra_ps_e_0/M_AXI_HPM0_LPD /zynq_ultra_ps_e_0/S_AXI_HP0_FPD /zynq_ultra_ps_e_0/pl_clk0
    assign_overlay_addresses
    validate_bd_design
    save_bd_design
}
