// Verilator C++ harness (no cocotb) that measures the simulation speed of a generated mac_tree.
// The model is built with --prefix Vdut; the harness streams back-to-back beats (cycling
// through 256 pre-drawn random input words, so the random generator is not what is timed)
// with the output always ready, and prints "<cycles> <cpu seconds> <outputs>" for
// bench/bench_ip.py. Arguments: [cycles] [act_signed (0/1, default 1)].
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <vector>

#include "Vdut.h"
#include "verilated.h"

int main(int argc, char **argv) {
    Verilated::commandArgs(argc, argv);
    const long long cycles = argc > 1 ? std::atoll(argv[1]) : 1000000;
    const int act_signed = argc > 2 ? std::atoi(argv[2]) : 1;
    Vdut *dut = new Vdut;
    std::mt19937 rng(1);
    dut->ap_rst_n = 0;
    dut->act_signed = act_signed;
    dut->m_axis_tready = 1;
    for (int i = 0; i < 4; ++i) {
        dut->ap_clk = 0;
        dut->eval();
        dut->ap_clk = 1;
        dut->eval();
    }
    dut->ap_rst_n = 1;
    const int words = sizeof(dut->s_axis_tdata) / sizeof(dut->s_axis_tdata[0]);
    constexpr int kVectors = 256;
    std::vector<uint32_t> pool(static_cast<size_t>(kVectors) * words);
    for (auto &w : pool) w = rng();
    long long outputs = 0;
    const std::clock_t t0 = std::clock();
    for (long long c = 0; c < cycles; ++c) {
        dut->ap_clk = 0;
        const uint32_t *v = &pool[static_cast<size_t>(c % kVectors) * words];
        for (int w = 0; w < words; ++w) dut->s_axis_tdata[w] = v[w];
        dut->s_axis_tvalid = 1;
        dut->s_axis_tlast = (c % 8) == 7;  // 8-beat dot products
        dut->eval();
        dut->ap_clk = 1;
        dut->eval();
        outputs += dut->m_axis_tvalid;
    }
    const double secs = static_cast<double>(std::clock() - t0) / CLOCKS_PER_SEC;
    std::printf("%lld %.6f %lld\n", cycles, secs, outputs);
    delete dut;
    return 0;
}
