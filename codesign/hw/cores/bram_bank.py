"""bram_bank: a double-buffered tile bank; 64-bit word writes, ``64/bits`` parallel element reads.

Two buffers of ``WORDS`` 64-bit words: the *fill* buffer takes wide-word writes (from the DMA
stream) while the *compute* buffer serves reads, so loading tile ``t+1`` overlaps computing
tile ``t``; ``swap`` exchanges the roles. A read returns the ``64/bits`` elements of one word in
parallel, each sign- or zero-extended to 8 bits (``rd_signed``), using the packing of
:mod:`codesign.hw.packing`. Reads have one cycle of latency (a registered BRAM output).
Activity counters count reads and writes (the overlay's CNT_BRAM_READS/WRITES).
"""

from __future__ import annotations

import numpy as np

from codesign.hw.budget import bram36_for
from codesign.hw.cores.base import Core, CsimCase, Port, clog2
from codesign.hw.packing import unpack_words

LANE_BITS = 8


def bram_bank_golden(ops: np.ndarray, bits: int, signed: bool, words: int) -> np.ndarray:
    """Reads of an op sequence; ``ops`` rows are ``[wr_en, wr_addr, wr_data, rd_en, rd_addr, swap]``."""
    mem = np.zeros((2, words), dtype=np.uint64)
    fill = 0
    out = []
    per = 64 // bits
    for wr_en, wr_addr, wr_data, rd_en, rd_addr, swap in ops:
        if rd_en:  # the compute buffer, before this cycle's swap
            out.append(unpack_words([int(mem[1 - fill, rd_addr])], bits, signed, per))
        if wr_en:
            mem[fill, wr_addr] = np.uint64(int(wr_data) & (2**64 - 1))
        if swap:
            fill = 1 - fill
    return np.array(out, dtype=np.int64).reshape(-1, per)


class BramBank(Core):
    """Double-buffered tile bank with wide writes and parallel narrow reads."""

    name = "bram_bank"
    summary = "double-buffered bank: 64-bit word writes, 64/bits parallel element reads"
    hls_top_template = "bram_bank.cpp.j2"
    hls_header_template = "bram_bank.h.j2"
    csim_template = "bram_bank_csim.cpp.j2"
    verilog_template = "bram_bank.v.j2"

    @property
    def words(self) -> int:
        """Words per buffer: one weight tile, tile_k x tile_n elements."""
        return -(-self.spec.tile_k * self.spec.tile_n // self.spec.elems_per_word)

    def params(self) -> dict[str, int]:
        s = self.spec
        return {"BITS": s.bits, "EPW": s.elems_per_word, "WORDS": self.words, "ADDR_W": clog2(self.words),
                "LANE_BITS": LANE_BITS}

    def ports(self) -> list[Port]:
        p = self.params()
        return [
            Port("ap_clk", "in", 1, "clock"), Port("ap_rst_n", "in", 1, "reset"),
            Port("swap", "in", 1, "ctrl", "exchange fill and compute buffers after this cycle"),
            Port("wr_en", "in", 1, "wire"), Port("wr_addr", "in", p["ADDR_W"], "wire"),
            Port("wr_data", "in", 64, "wire", "one packed word into the fill buffer"),
            Port("rd_en", "in", 1, "wire"), Port("rd_addr", "in", p["ADDR_W"], "wire"),
            Port("rd_signed", "in", 1, "ctrl", "elements are signed"),
            Port("rd_data", "out", p["EPW"] * LANE_BITS, "wire", "lane i: element i of the word, extended"),
            Port("rd_valid", "out", 1, "wire", "rd_data valid (one cycle after rd_en)"),
            Port("stat_reads", "out", 64, "wire"), Port("stat_writes", "out", 64, "wire"),
            Port("stat_busy_cycles", "out", 64, "wire", "cycles with a read, write or swap"),
        ]

    def exp_cycles(self, ops: int, **_: int) -> int:
        """One read and/or write per cycle."""
        return ops

    def reference_workload(self) -> dict[str, int]:
        return {"ops": self.words}  # fill one buffer

    def resources(self) -> dict[str, int]:
        return {"lut": 64 + self.spec.elems_per_word * 4, "dsp": 0, "bram36": bram36_for(64, 2 * self.words)}

    def make_case(self, rng: np.random.Generator, n_vectors: int, extremes: bool = False,
                  signed: bool | None = None) -> CsimCase:
        """``n_vectors`` cycles of random concurrent writes/reads/swaps (reads only of written words)."""
        words = self.words
        span = min(words, 48)
        addr_base = int(rng.integers(0, words - span + 1))
        written: list[set[int]] = [set(), set()]
        fill = 0
        ops = []
        for _ in range(n_vectors):
            wr_en = rng.random() < 0.6
            wr_addr = addr_base + int(rng.integers(0, span))
            if extremes:
                corners = (0, 2**64 - 1, 0x8080808080808080, 0x7F7F7F7F7F7F7F7F)  # all-ones, most negative, ...
                wr_data = corners[int(rng.integers(0, len(corners)))]
            else:
                wr_data = int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2))
            can_read = bool(written[1 - fill])
            rd_en = can_read and rng.random() < 0.6
            rd_addr = int(rng.choice(sorted(written[1 - fill]))) if rd_en else 0
            swap = rng.random() < 0.08
            if wr_en:
                written[fill].add(wr_addr)
            ops.append([int(wr_en), wr_addr, wr_data, int(rd_en), rd_addr, int(swap)])
            if swap:
                fill = 1 - fill
        signed = bool(rng.integers(0, 2)) if signed is None else signed
        arr = np.array(ops, dtype=object)
        expected = bram_bank_golden(arr, self.spec.bits, signed, words)
        flat = np.array([[int(v) - (2**64 if j == 2 and int(v) >= 2**63 else 0) for j, v in enumerate(row)]
                         for row in ops], dtype=np.int64).reshape(-1, 6)
        cfg = np.array([len(ops), int(signed)], dtype=np.int64)
        return CsimCase(cfg, flat.ravel(), expected.ravel(), {"ops": ops, "signed": signed,
                                                              "n_reads": len(expected)})
