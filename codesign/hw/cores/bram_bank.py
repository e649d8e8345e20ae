"""bram_bank: ``BANKS`` block RAMs of ``DEPTH`` 64-bit words side by side (the overlay's memories).

One write port (a write enable per bank, shared address and data: the receiver writes one
bank per word) and one read port (shared address, all banks at once, a registered output:
``rd_data`` holds the words read at the last ``rd_en`` from the cycle after it). A read and
a write of the same address in one cycle return the old word (read-first). Double buffering
is the caller's address bit (the overlay's row buffer is one bank of ``2 * ROW_DEPTH`` words
whose top address bit selects the half). The overlay instantiates this module for its weight
bank (``BANK_LANES`` banks) and its activation row buffer; a standalone core is the weight
bank of one engine (``lanes`` banks of ``WBANK_DEPTH`` words).

The HLS view is a free-running (``ap_ctrl_none``) function pipelined at II = 1, one call per
clock cycle, over a ``ram_s2p`` block-RAM array partitioned on the bank index.
"""

from __future__ import annotations

import numpy as np

from codesign.hw.budget import WBANK_DEPTH, bram36_for
from codesign.hw.cores.base import Core, CsimCase, Port, clog2

WORD_BITS = 64
MASK64 = 2**64 - 1


def bram_bank_golden(ops: list[list[int]], banks: int, depth: int) -> np.ndarray:
    """Words read by an op sequence, ``[n_reads, banks]`` (uint64 patterns in int64).

    ``ops`` rows are ``[wr_mask, wr_addr, wr_data, rd_en, rd_addr]``; a read sees the memory
    before the same cycle's write.
    """
    mem = np.zeros((banks, depth), dtype=np.uint64)
    out = []
    for wr_mask, wr_addr, wr_data, rd_en, rd_addr in ops:
        if rd_en:
            out.append(mem[:, rd_addr].copy())
        for b in range(banks):
            if (wr_mask >> b) & 1:
                mem[b, wr_addr] = np.uint64(wr_data & MASK64)
    return np.array(out, dtype=np.uint64).reshape(-1, banks).view(np.int64)


class BramBank(Core):
    """Banked block RAM: per-bank write enables, one registered wide read."""

    name = "bram_bank"
    summary = "banked block RAM: per-bank word writes, registered read of every bank"
    hls_top_template = "bram_bank.cpp.j2"
    hls_header_template = "bram_bank.h.j2"
    csim_template = "bram_bank_csim.cpp.j2"
    verilog_template = "bram_bank.v.j2"

    def params(self) -> dict[str, int]:
        return {"BANKS": self.spec.lanes, "DEPTH": WBANK_DEPTH, "AW": clog2(WBANK_DEPTH)}

    def ports(self) -> list[Port]:
        p = self.params()
        return [
            Port("ap_clk", "in", 1, "clock"), Port("ap_rst_n", "in", 1, "reset"),
            Port("wr_en", "in", p["BANKS"], "wire", "bit b: write bank b"),
            Port("wr_addr", "in", p["AW"], "wire"),
            Port("wr_data", "in", WORD_BITS, "wire"),
            Port("rd_en", "in", 1, "wire", "read every bank at rd_addr into rd_data"),
            Port("rd_addr", "in", p["AW"], "wire"),
            Port("rd_data", "out", p["BANKS"] * WORD_BITS, "wire", "bank b at [b*64 +: 64], from the cycle after rd_en"),
        ]

    def exp_cycles(self, ops: int, **_: int) -> int:
        """One write and one read per cycle."""
        return ops

    def reference_workload(self) -> dict[str, int]:
        return {"ops": WBANK_DEPTH}  # fill a bank

    def resources(self) -> dict[str, int]:
        return {"lut": 0, "dsp": 0, "bram36": self.spec.lanes * bram36_for(WORD_BITS, WBANK_DEPTH)}

    def make_case(self, rng: np.random.Generator, n_vectors: int, extremes: bool = False) -> CsimCase:
        """``n_vectors`` cycles of random concurrent writes and reads (also same-address ones).

        C-sim ABI: ``cfg = [n_ops]``; ``inputs`` per op ``[wr_mask, wr_addr, wr_data, rd_en,
        rd_addr]`` (``wr_data`` as the int64 of its bit pattern); output per read the ``BANKS`` words.
        """
        p = self.params()
        banks, depth = p["BANKS"], p["DEPTH"]
        span = min(depth, 40)
        base = int(rng.integers(0, depth - span + 1))
        corners = (0, MASK64, 0x8080808080808080, 0x7F7F7F7F7F7F7F7F)
        ops = []
        for _ in range(n_vectors):
            mask = int(rng.integers(0, 2**banks)) if rng.random() < 0.7 else 0
            if extremes and rng.random() < 0.3:
                mask = 2**banks - 1
            data = corners[int(rng.integers(0, 4))] if extremes else int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2))
            wr_addr = base + int(rng.integers(0, span))
            rd_en = int(rng.random() < 0.6)
            rd_addr = wr_addr if rng.random() < 0.15 else base + int(rng.integers(0, span))
            ops.append([mask, wr_addr, data, rd_en, rd_addr])
        if depth > span:  # the highest address too
            ops += [[2**banks - 1, depth - 1, corners[3], 0, 0], [0, 0, 0, 1, depth - 1]]
        expected = bram_bank_golden(ops, banks, depth)
        flat = np.array([[v - (2**64 if j == 2 and v >= 2**63 else 0) for j, v in enumerate(row)] for row in ops],
                        dtype=np.int64)
        return CsimCase(np.array([len(ops)], np.int64), flat.ravel(), expected.ravel(),
                        {"ops": ops, "n_reads": len(expected)})
