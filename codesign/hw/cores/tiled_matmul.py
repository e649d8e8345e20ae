"""tiled_matmul: the tile-loop controller that streams BRAM banks through the MAC tree.

For a tile ``A [M x K] @ B [K x N]`` (M, N, K <= 128, set at run time) it walks
``for nb in N/lanes: for m in M: for kb in K/tree`` and feeds one beat per cycle to the
``mac_tree`` of the same bit-width: the activation word ``A[m, kb*tree : (kb+1)*tree]`` from
the activation bank and the ``lanes x tree`` weight block of ``(nb, kb)`` from the weight bank.
Every ``(nb, m)`` emits one beat of ``lanes`` int32 accumulators ``C[m, nb*lanes + l]``.

Cycle model: ``ceil(N/lanes) * M * ceil(K/tree)`` beats at II=1 plus the MAC-tree latency and
one start cycle. Utilisation = ``M*N*K / (lanes*tree*cycles)`` is only lost to padding K up to
a multiple of ``tree`` and N up to a multiple of ``lanes`` (see docs/hw.md for 3x3 convs).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from codesign.hw.budget import bram36_for
from codesign.hw.cores.base import Core, CsimCase, Port, clog2
from codesign.hw.cores.mac_tree import MacTree, wrap_int32
from codesign.hw.packing import join_lanes
from codesign.hw.spec import IPSpec
from codesign.quant.dyadic import qrange


def tiled_matmul_golden(a: np.ndarray, b: np.ndarray, lanes: int) -> np.ndarray:
    """Output beats [ceil(N/lanes) * M, lanes]: beat ``nb*M + m`` holds ``C[m, nb*lanes : +lanes]``."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    m, n = a.shape[0], b.shape[1]
    nb = -(-n // lanes)
    c = np.zeros((m, nb * lanes), dtype=np.int64)
    c[:, :n] = a @ b
    return wrap_int32(c.reshape(m, nb, lanes).transpose(1, 0, 2).reshape(nb * m, lanes))


class TiledMatmul(Core):
    """Tile-loop controller of one GEMM engine."""

    name = "tiled_matmul"
    summary = "tile loop over BRAM banks feeding the MAC tree (one beat per cycle)"
    hls_top_template = "tiled_matmul.cpp.j2"
    hls_header_template = "tiled_matmul.h.j2"
    csim_template = "tiled_matmul_csim.cpp.j2"
    verilog_template = "tiled_matmul.v.j2"

    @property
    def mac(self) -> MacTree:
        """The MAC tree this controller instantiates."""
        s = self.spec
        return MacTree(dataclasses.replace(s, core="mac_tree"))

    def rtl_dependencies(self) -> list[IPSpec]:
        """Other cores whose Verilog this core instantiates."""
        return [self.mac.spec]

    def params(self) -> dict[str, int]:
        s = self.spec
        kb_max = -(-s.tile_k // s.tree)
        nb_max = -(-s.tile_n // s.lanes)
        return {
            "BITS": s.bits, "LANES": s.lanes, "TREE": s.tree, "ACC_BITS": s.acc_bits,
            "KB_MAX": kb_max, "NB_MAX": nb_max, "M_MAX": s.tile_m,
            "A_WORDS": s.tile_m * kb_max, "B_WORDS": nb_max * kb_max,
            "A_ADDR_W": clog2(s.tile_m * kb_max), "B_ADDR_W": max(1, clog2(nb_max * kb_max)),
            "WBLK_W": s.lanes * s.tree * s.bits, "DIM_W": 8, "MAC_LATENCY": self.mac.latency,
        }

    def ports(self) -> list[Port]:
        p = self.params()
        return [
            Port("ap_clk", "in", 1, "clock"), Port("ap_rst_n", "in", 1, "reset"),
            Port("ap_start", "in", 1, "ctrl", "pulse: run one tile"), Port("ap_done", "out", 1, "ctrl", "pulse"),
            Port("ap_idle", "out", 1, "ctrl"),
            Port("cfg_m", "in", 8, "ctrl", "rows M (1..tile_m)"), Port("cfg_nb", "in", 8, "ctrl", "ceil(N/lanes)"),
            Port("cfg_kb", "in", 8, "ctrl", "ceil(K/tree)"), Port("act_signed", "in", 1, "ctrl"),
            Port("a_we", "in", 1, "wire"), Port("a_addr", "in", p["A_ADDR_W"], "wire", "m*KB_MAX + kb"),
            Port("a_data", "in", 64, "wire", "packed activation word"),
            Port("b_we", "in", 1, "wire"), Port("b_addr", "in", p["B_ADDR_W"], "wire", "nb*KB_MAX + kb"),
            Port("b_data", "in", p["WBLK_W"], "wire", "lanes x tree weight block, (l,t) at (l*TREE+t)*BITS"),
            Port("m_axis_tdata", "out", p["LANES"] * 32, "axis"), Port("m_axis_tvalid", "out", 1, "axis"),
            Port("m_axis_tready", "in", 1, "axis"), Port("m_axis_tlast", "out", 1, "axis"),
            Port("stat_busy_cycles", "out", 64, "wire", "cycles from start to done"),
            Port("stat_beats", "out", 64, "wire", "MAC-tree beats issued (x lanes*tree = MACs)"),
        ]

    def exp_cycles(self, m: int, n: int, k: int, **_: int) -> int:
        """``ceil(N/lanes)*M*ceil(K/tree)`` beats at II=1 plus the MAC-tree latency."""
        s = self.spec
        return -(-n // s.lanes) * m * -(-k // s.tree) + self.mac.latency

    def reference_workload(self) -> dict[str, int]:
        s = self.spec
        return {"m": s.tile_m, "n": s.tile_n, "k": s.tile_k}

    def utilization(self, m: int, n: int, k: int) -> float:
        """MACs done / MACs the tree could do in exp_cycles()."""
        s = self.spec
        return m * n * k / (s.lanes * s.tree * self.exp_cycles(m, n, k))

    def resources(self) -> dict[str, int]:
        s = self.spec
        # activation bank (one bus word per cycle) and weight bank (one k-row of lanes weights),
        # double-buffered in depth; LUT/DSP are those of its mac_tree
        act = bram36_for(64, 2 * math.ceil(s.tile_m * s.tile_k / s.tree))
        wgt = bram36_for(s.lanes * s.bits, 2 * math.ceil(s.tile_k * s.tile_n / s.lanes))
        return {**self.mac.resources(), "bram36": act + wgt}

    def make_case(self, rng: np.random.Generator, n_vectors: int, extremes: bool = False,
                  act_signed: bool = True, shape: tuple[int, int, int] | None = None) -> CsimCase:
        """A random tile with about ``n_vectors`` output rows (M * ceil(N/lanes))."""
        s = self.spec
        if shape is None:
            n = int(rng.integers(1, min(s.tile_n, 2 * s.lanes) + 1))
            nb = -(-n // s.lanes)
            m = int(np.clip(-(-n_vectors // nb), 1, s.tile_m))
            k = int(rng.integers(1, min(s.tile_k, 3 * s.tree) + 1))
        else:
            m, n, k = shape
        a_lo, a_hi = qrange(s.bits, act_signed)
        w_lo, w_hi = qrange(s.bits, True)
        a = rng.integers(a_lo, a_hi + 1, size=(m, k))
        b = rng.integers(w_lo, w_hi + 1, size=(k, n))
        if extremes:
            a = np.where(rng.random(a.shape) < 0.5, rng.choice([a_lo, a_hi], size=a.shape), a)
            b = np.where(rng.random(b.shape) < 0.5, rng.choice([w_lo, w_hi], size=b.shape), b)
            a[0, :], b[:, 0] = a_lo, w_lo
        expected = tiled_matmul_golden(a, b, s.lanes)
        cfg = np.array([int(act_signed), m, n, k], dtype=np.int64)
        return CsimCase(cfg, np.concatenate([a.ravel(), b.ravel()]).astype(np.int64), expected.ravel(),
                        {"a": a, "b": b, "act_signed": act_signed, "m": m, "n": n, "k": k})

    def bank_words(self, a: np.ndarray, b: np.ndarray) -> tuple[dict[int, int], dict[int, int]]:
        """Bank contents for a tile: activation words and weight blocks, by address."""
        s = self.spec
        p = self.params()
        m, k = a.shape
        n = b.shape[1]
        kb = -(-k // s.tree)
        nb = -(-n // s.lanes)
        a_pad = np.zeros((m, kb * s.tree), np.int64)
        a_pad[:, :k] = a
        b_pad = np.zeros((kb * s.tree, nb * s.lanes), np.int64)
        b_pad[:k, :n] = b
        a_words = {mi * p["KB_MAX"] + ki: join_lanes(a_pad[mi, ki * s.tree:(ki + 1) * s.tree], s.bits)
                   for mi in range(m) for ki in range(kb)}
        b_words = {}
        for ni in range(nb):
            for ki in range(kb):
                blk = b_pad[ki * s.tree:(ki + 1) * s.tree, ni * s.lanes:(ni + 1) * s.lanes].T  # [lanes, tree]
                b_words[ni * p["KB_MAX"] + ki] = join_lanes(blk.ravel(), s.bits)
        return a_words, b_words
