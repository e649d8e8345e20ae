// Replay testbench of the overlay for Icarus Verilog (a second simulator next to Verilator).
// It replays what the driver did against a recording board: the AXI-lite writes of
// regs.txt ("<addr> <data>" in hex per line, ending with the AP_START write), streams the
// words of in.txt (one 64-bit hex word per line) into s_axis one beat per cycle, and writes
// every m_axis word to out.txt until tlast. tests/board/test_icarus.py compares the result
// with the golden model.
`timescale 1ns / 1ps
module tb_overlay_icarus;
    reg ap_clk = 1'b0;
    always #5 ap_clk = ~ap_clk;
    reg ap_rst_n = 1'b0;

    reg [7:0] awaddr, araddr;
    reg awvalid = 1'b0, wvalid = 1'b0, bready = 1'b1, arvalid = 1'b0, rready = 1'b1;
    reg [31:0] wdata;
    wire awready, wready, bvalid, arready, rvalid, interrupt;
    wire [1:0] bresp, rresp;
    wire [31:0] rdata;
    reg [63:0] s_tdata = 64'd0;
    reg s_tvalid = 1'b0;
    wire s_tready;
    wire [63:0] m_tdata;
    wire [7:0] m_tkeep;
    wire m_tvalid, m_tlast;

    `TOP dut (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .interrupt(interrupt),
        .s_axi_control_awaddr(awaddr), .s_axi_control_awvalid(awvalid), .s_axi_control_awready(awready),
        .s_axi_control_wdata(wdata), .s_axi_control_wstrb(4'hF), .s_axi_control_wvalid(wvalid),
        .s_axi_control_wready(wready), .s_axi_control_bresp(bresp), .s_axi_control_bvalid(bvalid),
        .s_axi_control_bready(bready), .s_axi_control_araddr(araddr), .s_axi_control_arvalid(arvalid),
        .s_axi_control_arready(arready), .s_axi_control_rdata(rdata), .s_axi_control_rresp(rresp),
        .s_axi_control_rvalid(rvalid), .s_axi_control_rready(rready),
        .s_axis_tdata(s_tdata), .s_axis_tvalid(s_tvalid), .s_axis_tready(s_tready), .s_axis_tlast(1'b0),
        .m_axis_tdata(m_tdata), .m_axis_tkeep(m_tkeep), .m_axis_tvalid(m_tvalid), .m_axis_tready(1'b1),
        .m_axis_tlast(m_tlast)
    );

    // Handshakes are decided between edges (signals stable), so there is no race with the DUT.
    task axil_write(input [7:0] a, input [31:0] d);
        begin
            @(negedge ap_clk);
            awaddr = a; wdata = d; awvalid = 1'b1; wvalid = 1'b1;
            #1;
            while (!(awready && wready)) begin @(negedge ap_clk); #1; end
            @(posedge ap_clk);
            #1;
            awvalid = 1'b0; wvalid = 1'b0;
        end
    endtask

    integer fregs, fin, fout, n, cycles;
    reg [31:0] a32, d32;
    reg [63:0] word;
    reg done_in, done_out, in_fire, out_fire, out_last;
    reg [63:0] out_word;
    initial begin
        fregs = $fopen("regs.txt", "r");
        fin = $fopen("in.txt", "r");
        fout = $fopen("out.txt", "w");
        repeat (5) @(posedge ap_clk);
        ap_rst_n = 1'b1;
        // Every write but the last (AP_START) first; streaming begins with the start.
        while ($fscanf(fregs, "%h %h\n", a32, d32) == 2) axil_write(a32[7:0], d32);
        done_in = 1'b0;
        done_out = 1'b0;
        cycles = 0;
        n = $fscanf(fin, "%h\n", word);
        if (n == 1) begin s_tdata = word; s_tvalid = 1'b1; end else done_in = 1'b1;
        while (!done_out && cycles < 2000000) begin
            @(negedge ap_clk);
            in_fire = s_tvalid && s_tready;
            out_fire = m_tvalid;
            out_word = m_tdata;
            out_last = m_tlast;
            @(posedge ap_clk);
            #1;
            cycles = cycles + 1;
            if (out_fire) begin
                $fwrite(fout, "%h\n", out_word);
                if (out_last) done_out = 1'b1;
            end
            if (in_fire) begin
                n = $fscanf(fin, "%h\n", word);
                if (n == 1) s_tdata = word; else begin s_tvalid = 1'b0; done_in = 1'b1; end
            end
        end
        $fclose(fout);
        if (!done_out) $display("TIMEOUT");
        $finish;
    end
endmodule
