// Verilator C++ harness (no cocotb) that measures the simulation speed of a generated mac_tree.
// The model is built with --prefix Vdut; the harness streams random back-to-back beats with the
// output always ready, and prints "<cycles> <seconds> <outputs>" for bench/bench_ip.py.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "Vdut.h"
#include "verilated.h"

int main(int argc, char **argv) {
    Verilated::commandArgs(argc, argv);
    const long long cycles = argc > 1 ? std::atoll(argv[1]) : 1000000;
    Vdut *dut = new Vdut;
    std::mt19937 rng(1);
    dut->ap_rst_n = 0;
    dut->act_signed = 1;
    dut->m_axis_tready = 1;
    for (int i = 0; i < 4; ++i) {
        dut->ap_clk = 0;
        dut->eval();
        dut->ap_clk = 1;
        dut->eval();
    }
    dut->ap_rst_n = 1;
    const int words = sizeof(dut->s_axis_tdata) / sizeof(dut->s_axis_tdata[0]);
    long long outputs = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (long long c = 0; c < cycles; ++c) {
        dut->ap_clk = 0;
        for (int w = 0; w < words; ++w) dut->s_axis_tdata[w] = rng();
        dut->s_axis_tvalid = 1;
        dut->s_axis_tlast = (c % 8) == 7;  // 8-beat dot products
        dut->eval();
        dut->ap_clk = 1;
        dut->eval();
        outputs += dut->m_axis_tvalid;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%lld %.6f %lld\n", cycles, secs, outputs);
    delete dut;
    return 0;
}
