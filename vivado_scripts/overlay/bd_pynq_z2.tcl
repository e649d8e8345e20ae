# Block design of the OQA overlay on PYNQ-Z2 (xc7z020clg400-1): PS7 with FCLK0 at the
# manifest's clock (100 MHz), M_AXI_GP0 for AXI-lite, S_AXI_HP0 (64-bit) for the DMA.
source [file join [file dirname [info script]] bd_common.tcl]

proc create_overlay_bd {name} {
    global OVERLAY
    create_bd_design $name
    set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7:5.5 processing_system7_0]
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config {make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" Slave "Disable"} $ps
    set_property -dict [list \
        CONFIG.PCW_USE_S_AXI_HP0 {1} \
        CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {64} \
        CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $OVERLAY(clock_mhz) \
        CONFIG.PCW_USE_M_AXI_GP0 {1} \
    ] $ps
    add_overlay_and_dma
    connect_overlay /processing_system7_0/M_AXI_GP0 /processing_system7_0/S_AXI_HP0 /processing_system7_0/FCLK_CLK0
    assign_overlay_addresses
    validate_bd_design
    save_bd_design
}
