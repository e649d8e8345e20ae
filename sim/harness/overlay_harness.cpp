// Verilator board model of the OQA overlay: the same AXI-lite MMIO and DMA-buffer surface as
// PYNQ (pynq.MMIO / allocate / dma.sendchannel / dma.recvchannel), exposed as a small C API
// that codesign.board.sim loads with ctypes.
//
// The DMA/DDR model: each channel starts `latency` cycles after its transfer is posted and
// then moves one 64-bit beat whenever its byte credit (refilled by `bytes_per_cycle` every
// cycle, capped at one burst) covers 8 bytes. MM2S drives s_axis; S2MM accepts m_axis and
// completes on tlast (or when the buffer is full), like the AXI DMA in simple mode.
//
// Time only advances inside this file: every MMIO access clocks the model (AXI-lite
// handshakes take cycles) and ob_run_until runs whole transfers in C++, so a layer costs a
// handful of ctypes calls. Every cycle figure the driver reports comes from the RTL counters.
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "verilated.h"
#include VTOP_HEADER
#include VTOP_ROOT_HEADER

// The model's evaluation entry point below eval(): eval() = eval_step() adds per-call
// bookkeeping (deleter, message-queue flush) that this design never needs.
void VTOP_ROOT_EVAL(VTOP_ROOT* vlSelf);

namespace {

constexpr double kBeatBytes = 8.0;

// Verilator finds the rising edge of ap_clk by comparing it with the value it saw at the
// previous evaluation. One cycle is normally two evaluations (clock low, then high). The fast
// step records "clock was low" directly and evaluates once, at the rising edge. That is exact
// as long as the stream outputs the step samples before the edge (s_axis_tready,
// m_axis_tvalid/tdata/tlast) are registered or derived from registers only, i.e. do not
// change with this cycle's inputs: tests/board/test_sim_fast_step.py runs layers both ways and
// requires identical outputs, counters and cycle counts. When the model has no such member
// (another Verilator version), the step falls back to the low-phase evaluation.
template <typename R, typename = void>
struct HasClockPrev : std::false_type {};
template <typename R>
struct HasClockPrev<R, std::void_t<decltype(std::declval<R&>().__Vtrigprevexpr___TOP__ap_clk__0)>>
    : std::true_type {};
constexpr bool kFastStep = HasClockPrev<VTOP_ROOT>::value;

template <typename R>
void mark_clock_low(R* r) {
    if constexpr (HasClockPrev<R>::value) r->__Vtrigprevexpr___TOP__ap_clk__0 = 0;
}

struct Channel {
    double bytes_per_cycle = 8.0;
    uint64_t latency = 0;
    double burst_bytes = 128.0;  // credit cap: a 16-beat burst
    double credit = 0.0;
    uint64_t start_cycle = 0;
    bool active = false;
    uint64_t pos = 0;
    uint64_t n = 0;
    bool last_seen = false;

    void post(uint64_t now, uint64_t words) {
        active = true;
        pos = 0;
        n = words;
        credit = 0.0;
        start_cycle = now + latency;
        last_seen = false;
    }
    bool can_beat(uint64_t now) const {
        return active && pos < n && now >= start_cycle && credit >= kBeatBytes;
    }
    void tick(uint64_t now) {
        if (active && now >= start_cycle) {
            credit += bytes_per_cycle;
            if (credit > burst_bytes) credit = burst_bytes;
        }
    }
    bool done() const { return !active || pos >= n || last_seen; }
};

struct Board {
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<VTOP_CLASS> top;
    uint64_t cycle = 0;
    Channel mm2s, s2mm;
    std::vector<uint64_t> send_buf;
    uint64_t* recv_buf = nullptr;
    bool fast = kFastStep;  // one evaluation per cycle (see mark_clock_low)

    Board() : ctx(new VerilatedContext), top(new VTOP_CLASS(ctx.get())) {}

    // One clock cycle: drive the streams from the DMA model, settle (clock low), sample the
    // handshakes, then the rising edge.
    void step() {
        VTOP_CLASS& t = *top;
        bool in_valid = mm2s.can_beat(cycle);
        t.s_axis_tvalid = in_valid;
        t.s_axis_tdata = in_valid ? send_buf[mm2s.pos] : 0;
        t.s_axis_tlast = in_valid && mm2s.pos + 1 == mm2s.n;
        bool out_ready = s2mm.can_beat(cycle);
        t.m_axis_tready = out_ready;
        t.ap_clk = 0;
        if (fast) {
            mark_clock_low(t.rootp);
        } else {
            VTOP_ROOT_EVAL(t.rootp);
        }
        bool in_fire = in_valid && t.s_axis_tready;
        bool out_fire = out_ready && t.m_axis_tvalid;
        uint64_t out_word = t.m_axis_tdata;
        bool out_last = t.m_axis_tlast;
        t.ap_clk = 1;
        VTOP_ROOT_EVAL(t.rootp);
        if (in_fire) {
            mm2s.pos++;
            mm2s.credit -= kBeatBytes;
        }
        if (out_fire) {
            recv_buf[s2mm.pos++] = out_word;
            s2mm.credit -= kBeatBytes;
            if (out_last) s2mm.last_seen = true;
        }
        mm2s.tick(cycle);
        s2mm.tick(cycle);
        cycle++;
    }
};

}  // namespace

extern "C" {

void* ob_new() {
    auto* b = new Board();
    b->top->ap_rst_n = 0;
    b->top->eval();  // initial/settle
    return b;
}

void ob_free(void* h) { delete static_cast<Board*>(h); }

// Hold reset for `cycles` cycles; clears the DMA channels.
void ob_reset(void* h, uint32_t cycles) {
    auto* b = static_cast<Board*>(h);
    VTOP_CLASS& t = *b->top;
    t.s_axi_control_awvalid = 0;
    t.s_axi_control_wvalid = 0;
    t.s_axi_control_bready = 0;
    t.s_axi_control_arvalid = 0;
    t.s_axi_control_rready = 0;
    t.s_axi_control_wstrb = 0xF;
    b->mm2s.active = false;
    b->s2mm.active = false;
    t.ap_rst_n = 0;
    for (uint32_t i = 0; i < cycles; ++i) b->step();
    t.ap_rst_n = 1;
    b->step();
}

// 1: one model evaluation per cycle (default), 0: two (clock low, clock high). Returns
// whether the fast step is available in this build.
int ob_set_fast(void* h, int on) {
    static_cast<Board*>(h)->fast = on && kFastStep;
    return kFastStep ? 1 : 0;
}

void ob_set_dma(void* h, double in_bpc, uint32_t in_latency, double out_bpc, uint32_t out_latency) {
    auto* b = static_cast<Board*>(h);
    b->mm2s.bytes_per_cycle = in_bpc;
    b->mm2s.latency = in_latency;
    b->s2mm.bytes_per_cycle = out_bpc;
    b->s2mm.latency = out_latency;
}

// AXI-lite write: address and data together, then the write response. Returns 0 on success,
// 1 when the slave did not answer within `max_cycles`.
int ob_axil_write(void* h, uint32_t addr, uint32_t data, uint32_t max_cycles) {
    auto* b = static_cast<Board*>(h);
    VTOP_CLASS& t = *b->top;
    t.s_axi_control_awaddr = addr;
    t.s_axi_control_wdata = data;
    t.s_axi_control_awvalid = 1;
    t.s_axi_control_wvalid = 1;
    t.s_axi_control_bready = 1;
    uint32_t n = 0;
    bool accepted = false;
    while (n++ < max_cycles) {
        t.ap_clk = 0;
        VTOP_ROOT_EVAL(t.rootp);
        accepted = t.s_axi_control_awready && t.s_axi_control_wready;
        b->step();
        if (accepted) break;
    }
    t.s_axi_control_awvalid = 0;
    t.s_axi_control_wvalid = 0;
    if (!accepted) return 1;
    while (n++ < max_cycles) {
        t.ap_clk = 0;
        VTOP_ROOT_EVAL(t.rootp);
        bool resp = t.s_axi_control_bvalid;
        b->step();
        if (resp) {
            t.s_axi_control_bready = 0;
            return 0;
        }
    }
    t.s_axi_control_bready = 0;
    return 1;
}

// AXI-lite read; *ok is set to 0 when the slave did not answer within `max_cycles`.
uint32_t ob_axil_read(void* h, uint32_t addr, uint32_t max_cycles, int* ok) {
    auto* b = static_cast<Board*>(h);
    VTOP_CLASS& t = *b->top;
    t.s_axi_control_araddr = addr;
    t.s_axi_control_arvalid = 1;
    t.s_axi_control_rready = 1;
    uint32_t n = 0;
    bool accepted = false;
    while (n++ < max_cycles) {
        t.ap_clk = 0;
        VTOP_ROOT_EVAL(t.rootp);
        accepted = t.s_axi_control_arready;
        b->step();
        if (accepted) break;
    }
    t.s_axi_control_arvalid = 0;
    *ok = 0;
    if (!accepted) return 0;
    while (n++ < max_cycles) {
        t.ap_clk = 0;
        VTOP_ROOT_EVAL(t.rootp);
        bool valid = t.s_axi_control_rvalid;
        uint32_t data = t.s_axi_control_rdata;
        b->step();
        if (valid) {
            t.s_axi_control_rready = 0;
            *ok = 1;
            return data;
        }
    }
    t.s_axi_control_rready = 0;
    return 0;
}

// Post an MM2S transfer (the words are copied, like a DMA reading a contiguous buffer).
void ob_dma_send(void* h, const uint64_t* words, uint64_t n) {
    auto* b = static_cast<Board*>(h);
    b->send_buf.assign(words, words + n);
    b->mm2s.post(b->cycle, n);
}

// Post an S2MM transfer into `words` (capacity n); the buffer must stay alive until done.
void ob_dma_recv(void* h, uint64_t* words, uint64_t n) {
    auto* b = static_cast<Board*>(h);
    b->recv_buf = words;
    b->s2mm.post(b->cycle, n);
}

uint64_t ob_send_pos(void* h) { return static_cast<Board*>(h)->mm2s.pos; }
uint64_t ob_recv_pos(void* h) { return static_cast<Board*>(h)->s2mm.pos; }
int ob_send_done(void* h) { return static_cast<Board*>(h)->mm2s.done(); }
int ob_recv_done(void* h) { return static_cast<Board*>(h)->s2mm.done(); }
uint64_t ob_cycle(void* h) { return static_cast<Board*>(h)->cycle; }

// Run until the selected channel completes (1: MM2S, 2: S2MM, 3: both) or `max_cycles`
// pass; returns the cycles run. The caller checks completion.
uint64_t ob_run_until(void* h, int which, uint64_t max_cycles) {
    auto* b = static_cast<Board*>(h);
    uint64_t start = b->cycle;
    while (b->cycle - start < max_cycles) {
        bool send_ok = !(which & 1) || b->mm2s.done();
        bool recv_ok = !(which & 2) || b->s2mm.done();
        if (send_ok && recv_ok) break;
        b->step();
    }
    return b->cycle - start;
}

// Run exactly `cycles` cycles (idle time, tests).
void ob_run(void* h, uint64_t cycles) {
    auto* b = static_cast<Board*>(h);
    for (uint64_t i = 0; i < cycles; ++i) b->step();
}

}  // extern "C"
