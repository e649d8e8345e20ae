# Block design of the OQA overlay on PYNQ-Z2 (xc7z020clg400-1): PS7 with FCLK0 at the
# manifest's clock (100 MHz), M_AXI_GP0 for AXI-lite, S_AXI_HP0 (64-bit) for the DMA.
source [file join [file dirname [info script]] bd_common.tcl]

# The board part (a get_board_parts pattern) build_overlay.tcl sets on the project when its
# board files are installed.
proc overlay_board_part {} { return "tul.com.tw:pynq-z2:part0:1.0" }

# Without the board files: the PYNQ-Z2's PS7 settings, as the PYNQ image configures them
# (DDR3 part and timing, bank voltages, the MIO peripherals the image uses).
proc pynq_z2_ps7_settings {} {
    return [list \
        CONFIG.PCW_CRYSTAL_PERIPHERAL_FREQMHZ {50} \
        CONFIG.PCW_APU_PERIPHERAL_FREQMHZ {650} \
        CONFIG.PCW_PRESET_BANK0_VOLTAGE {LVCMOS 3.3V} \
        CONFIG.PCW_PRESET_BANK1_VOLTAGE {LVCMOS 1.8V} \
        CONFIG.PCW_UIPARAM_DDR_MEMORY_TYPE {DDR 3} \
        CONFIG.PCW_UIPARAM_DDR_PARTNO {MT41J256M16 RE-125} \
        CONFIG.PCW_UIPARAM_DDR_BUS_WIDTH {16 Bit} \
        CONFIG.PCW_UIPARAM_DDR_FREQ_MHZ {525} \
        CONFIG.PCW_UIPARAM_DDR_BOARD_DELAY0 {0.223} \
        CONFIG.PCW_UIPARAM_DDR_BOARD_DELAY1 {0.212} \
        CONFIG.PCW_UIPARAM_DDR_BOARD_DELAY2 {0.085} \
        CONFIG.PCW_UIPARAM_DDR_BOARD_DELAY3 {0.092} \
        CONFIG.PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_0 {0.040} \
        CONFIG.PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_1 {0.058} \
        CONFIG.PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_2 {-0.009} \
        CONFIG.PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_3 {-0.033} \
        CONFIG.PCW_QSPI_PERIPHERAL_ENABLE {1} \
        CONFIG.PCW_QSPI_GRP_SINGLE_SS_ENABLE {1} \
        CONFIG.PCW_QSPI_GRP_FBCLK_ENABLE {1} \
        CONFIG.PCW_QSPI_GRP_FBCLK_IO {MIO 8} \
        CONFIG.PCW_ENET0_PERIPHERAL_ENABLE {1} \
        CONFIG.PCW_ENET0_ENET0_IO {MIO 16 .. 27} \
        CONFIG.PCW_ENET0_GRP_MDIO_ENABLE {1} \
        CONFIG.PCW_ENET0_GRP_MDIO_IO {MIO 52 .. 53} \
        CONFIG.PCW_ENET0_RESET_ENABLE {1} \
        CONFIG.PCW_ENET0_RESET_IO {MIO 9} \
        CONFIG.PCW_SD0_PERIPHERAL_ENABLE {1} \
        CONFIG.PCW_SD0_SD0_IO {MIO 40 .. 45} \
        CONFIG.PCW_SD0_GRP_CD_ENABLE {1} \
        CONFIG.PCW_SD0_GRP_CD_IO {MIO 47} \
        CONFIG.PCW_UART0_PERIPHERAL_ENABLE {1} \
        CONFIG.PCW_UART0_UART0_IO {MIO 14 .. 15} \
        CONFIG.PCW_USB0_PERIPHERAL_ENABLE {1} \
        CONFIG.PCW_USB0_RESET_ENABLE {1} \
        CONFIG.PCW_USB0_RESET_IO {MIO 46} \
        CONFIG.PCW_GPIO_MIO_GPIO_ENABLE {1} \
    ]
}

proc create_overlay_bd {name use_board_preset} {
    global OVERLAY
    create_bd_design $name
    set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7:5.5 processing_system7_0]
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
        -config [list make_external "FIXED_IO, DDR" apply_board_preset $use_board_preset Master Disable Slave Disable] $ps
    if {!$use_board_preset} {
        set_property -dict [pynq_z2_ps7_settings] $ps
    }
    # The overlay's interfaces, with or without the board preset.
    set_property -dict [list \
        CONFIG.PCW_FPGA_FCLK0_ENABLE {1} \
        CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $OVERLAY(clock_mhz) \
        CONFIG.PCW_USE_M_AXI_GP0 {1} \
        CONFIG.PCW_USE_S_AXI_HP0 {1} \
        CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {64} \
    ] $ps
    add_overlay_and_dma
    connect_overlay /processing_system7_0/M_AXI_GP0 /processing_system7_0/S_AXI_HP0 /processing_system7_0/FCLK_CLK0
    assign_overlay_addresses
    validate_bd_design
    save_bd_design
}
