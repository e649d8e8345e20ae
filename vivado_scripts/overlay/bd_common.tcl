# Board-independent part of the overlay block design: the overlay RTL module, one AXI DMA
# (simple mode, 64-bit streams) and the stream connections. Sourced by bd_<board>.tcl; names
# and addresses come from the manifest (OVERLAY array, overlay_manifest.tcl).

proc add_overlay_and_dma {} {
    global OVERLAY
    set ovl [create_bd_cell -type module -reference $OVERLAY(top) $OVERLAY(instance)]
    set dma [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:7.1 $OVERLAY(dma)]
    set_property -dict [list \
        CONFIG.c_include_sg {0} \
        CONFIG.c_sg_length_width {26} \
        CONFIG.c_m_axi_mm2s_data_width $OVERLAY(stream_width) \
        CONFIG.c_m_axis_mm2s_tdata_width $OVERLAY(stream_width) \
        CONFIG.c_m_axi_s2mm_data_width $OVERLAY(stream_width) \
        CONFIG.c_s_axis_s2mm_tdata_width $OVERLAY(stream_width) \
        CONFIG.c_mm2s_burst_size {16} \
        CONFIG.c_s2mm_burst_size {16} \
    ] $dma
    connect_bd_intf_net [get_bd_intf_pins $OVERLAY(dma)/M_AXIS_MM2S] [get_bd_intf_pins $OVERLAY(instance)/s_axis]
    connect_bd_intf_net [get_bd_intf_pins $OVERLAY(instance)/m_axis] [get_bd_intf_pins $OVERLAY(dma)/S_AXIS_S2MM]
}

# The clock as block automation names it: "<pin> (<MHz> MHz)".
proc overlay_clock {clk_pin} {
    global OVERLAY
    return "$clk_pin ($OVERLAY(clock_mhz) MHz)"
}

# AXI-lite slaves on the PS master, DMA masters on the high-performance slave port, one clock.
# The axi4 rule takes one clock per side (Clk_master, Clk_slave) and one for the interconnect
# (Clk_xbar): all three are the PL clock, so no clock-domain crossing is inserted.
proc connect_overlay {ps_master ps_hp_slave clk_pin} {
    global OVERLAY
    set clk [overlay_clock $clk_pin]
    set clocks [list Clk_master $clk Clk_slave $clk Clk_xbar $clk]
    foreach slave [list $OVERLAY(instance)/s_axi_control $OVERLAY(dma)/S_AXI_LITE] {
        apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
            -config [list Master $ps_master Slave /$slave {*}$clocks intc_ip {New AXI Interconnect}] \
            [get_bd_intf_pins $slave]
    }
    foreach master [list $OVERLAY(dma)/M_AXI_MM2S $OVERLAY(dma)/M_AXI_S2MM] {
        apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
            -config [list Master /$master Slave $ps_hp_slave {*}$clocks intc_ip {Auto}] \
            [get_bd_intf_pins $master]
    }
    apply_bd_automation -rule xilinx.com:bd_rule:clkrst -config [list Clk $clk Freq $OVERLAY(clock_mhz)] \
        [get_bd_pins $OVERLAY(instance)/ap_clk]
}

# Fixed addresses of the AXI-lite slaves (the manifest's address map; the overlay's range is
# its register file's size, codesign.hw.overlay.axil_range).
proc assign_overlay_addresses {} {
    global OVERLAY
    foreach seg [list $OVERLAY(instance)/s_axi_control $OVERLAY(dma)/S_AXI_LITE] {
        set addr_seg [get_bd_addr_segs -of_objects [get_bd_intf_pins $seg]]
        assign_bd_address -offset $OVERLAY(base,$seg) -range $OVERLAY(range,$seg) $addr_seg
    }
}
