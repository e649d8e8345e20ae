"""``OverlayDriver``: all register logic of the OQA overlay, for every board.

The driver speaks only the :class:`codesign.board.base.Board` surface (MMIO + DMA buffers),
so the very same code runs against ``SimBoard`` (Verilator) in CI and ``PynqBoard`` on the
board. It checks the config hash, writes descriptors and the post-process window from
:data:`codesign.hw.regmap.REGMAP`, starts jobs, waits with a timeout (raising
:class:`BoardTimeout` with a register dump) and reads the 64-bit counters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from codesign.board.axi_dma import LENGTH_WIDTH, MAX_TRANSFER_WORDS
from codesign.board.base import Board, BoardError, BoardTimeout, ConfigHashMismatch
from codesign.board.program import JobProgram, LayerProgram, compile_layer
from codesign.hw.mapping import HOST, unpack_output
from codesign.hw.overlay import OverlaySpec
from codesign.hw.regmap import ACTIVITY, REGMAP, STAGES, by_name, pack_fields
from codesign.quant.qgraph import QNode, QTensor

REG = by_name()
AP_START = pack_fields("AP_CTRL", AP_START=1)
AP_DONE = pack_fields("AP_CTRL", AP_DONE=1)
DONE_POLLS = 64  # reads of AP_CTRL after the output transfer completed
COUNTER_NAMES = tuple(f"CYC_{s}" for s in STAGES) + tuple(f"CNT_{a}" for a in ACTIVITY)


@dataclass
class Counters:
    """The overlay's 64-bit counters, keyed by register name."""

    values: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, name: str) -> int:
        return self.values[name]

    def __add__(self, other: Counters) -> Counters:
        return Counters({k: self.values.get(k, 0) + other.values.get(k, 0) for k in COUNTER_NAMES})

    @property
    def cycles_total(self) -> int:
        """CYC_TOTAL."""
        return self.values["CYC_TOTAL"]


@dataclass
class LayerRun:
    """Result of one layer on the overlay."""

    output: np.ndarray
    counters: Counters
    jobs: int
    macs: int  # useful MACs of the layer
    peak_macs_per_cycle: int
    wall_s: float
    energy_uj_rails: float | None = None
    path: str = HOST  # activation path: "host" (im2col rows streamed) or "hw_img2col"


class OverlayDriver:
    """Register-level driver of the overlay; one instance per (board, spec)."""

    def __init__(self, board: Board, spec: OverlaySpec, check_hash: bool = True, img2col: str = "auto") -> None:
        self.board = board
        self.spec = spec
        self.img2col = img2col  # "auto" | "host" | "hw": activation path policy (layer.choose_path)
        self._programs: dict[tuple[object, ...], LayerProgram] = {}
        self._buffers: dict[str, np.ndarray] = {}
        if check_hash:
            self.check_config_hash()

    # ---- registers -------------------------------------------------------------------
    def write_reg(self, name: str, value: int) -> None:
        """Write a register by its REGMAP name."""
        self.board.write(REG[name].offset, int(value) & 0xFFFFFFFF)

    def read_reg(self, name: str) -> int:
        """Read a 32-bit register by name."""
        return self.board.read(REG[name].offset)

    def read_counter(self, name: str) -> int:
        """Read a 64-bit counter: low word first (which latches the high word)."""
        off = REG[name].offset
        lo = self.board.read(off)
        hi = self.board.read(off + 4)
        return (hi << 32) | lo

    def counters(self) -> Counters:
        """Every stage and activity counter."""
        return Counters({n: self.read_counter(n) for n in COUNTER_NAMES})

    def clear_counters(self) -> None:
        """Zero every counter (CNT_CTRL.CLEAR)."""
        self.write_reg("CNT_CTRL", 1)

    def register_dump(self) -> str:
        """Every readable register as ``NAME=0x...`` (used in timeout messages)."""
        parts = []
        for r in REGMAP:
            if r.access == "WO":
                continue
            try:
                if r.width == 64:
                    parts.append(f"{r.name}={self.read_counter(r.name)}")
                else:
                    parts.append(f"{r.name}=0x{self.board.read(r.offset):08X}")
            except BoardError:
                parts.append(f"{r.name}=<no answer>")
        return ", ".join(parts)

    def check_config_hash(self) -> None:
        """Refuse a bitstream whose CONFIG_HASH differs from the spec's."""
        try:
            got = self.read_reg("CONFIG_HASH")
        except BoardError as err:
            raise BoardError(f"the board {self.board.name!r} does not answer on the overlay's AXI-lite port ({err}).") from None
        want = self.spec.config_hash
        if got != want:
            raise ConfigHashMismatch(
                f"the overlay on board {self.board.name!r} has config hash 0x{got:08X} but the spec "
                f"{self.spec.name} expects 0x{want:08X}: the bitstream was built from a different spec. "
                "Rebuild it with `make ip BITS=...` and `make bitstream`, or pass the matching --bits."
            )
        mask = self.read_reg("BITS_SUPPORTED")
        if mask != self.spec.bits_mask:
            raise ConfigHashMismatch(f"the overlay reports engines 0x{mask:X}, the spec expects 0x{self.spec.bits_mask:X}.")

    # ---- jobs ------------------------------------------------------------------------
    def _timeout_s(self, in_words: int, out_words: int, beats: int, post_beats: int) -> float:
        cycles = 4 * (in_words + out_words + beats + post_beats) + 200_000
        return cycles / (self.board.clock_mhz * 1e6)

    def run_job(self, node: QNode, job: JobProgram, a_words: np.ndarray, out_t: QTensor) -> np.ndarray:
        """Run one GEMM job (its registers, weight words, then ``a_words``) and return its [M, NT] output codes."""
        engine = self.spec.engine(job.bits)
        n_in = job.w_words.size + a_words.size
        if max(n_in, job.n_out) > MAX_TRANSFER_WORDS:
            raise BoardError(f"layer {node.name!r}: a job of {max(n_in, job.n_out):,} 64-bit words exceeds the DMA's "
                             f"{LENGTH_WIDTH}-bit transfer length ({MAX_TRANSFER_WORDS:,} words); run fewer images per "
                             "job (a smaller --batch).")
        for offset, value in job.regs:
            self.board.write(offset, value)
        n_w = job.w_words.size
        inbuf = self._buffer("in", n_in)
        inbuf[:n_w] = job.w_words
        inbuf[n_w:n_in] = a_words
        outbuf = self._buffer("out", job.n_out)
        self.board.dma_recv(outbuf, job.n_out)
        self.board.dma_send(inbuf, n_in)
        self.write_reg("AP_CTRL", AP_START)
        kb = -(-job.k // engine.tree)
        beats = job.m * kb * -(-job.nt // engine.lanes)
        timeout = self._timeout_s(n_in, job.n_out, beats, job.m * -(-job.nt // self.spec.post_lanes))
        if not self.board.dma_wait_recv(timeout):
            raise BoardTimeout(
                f"layer {node.name!r}: the overlay did not finish a {job.m}x{job.nt}x{job.k} job within "
                f"{timeout * 1e3:.1f} ms. Register dump: {self.register_dump()}"
            )
        for _ in range(DONE_POLLS):
            if self.read_reg("AP_CTRL") & AP_DONE:
                break
        else:
            raise BoardTimeout(f"layer {node.name!r}: output complete but AP_DONE never set. "
                               f"Register dump: {self.register_dump()}")
        if not self.board.dma_wait_send(timeout):
            raise BoardTimeout(f"layer {node.name!r}: the input transfer did not complete. "
                               f"Register dump: {self.register_dump()}")
        return unpack_output(np.asarray(outbuf[:job.n_out]), job.m, job.nt, out_t)

    def _buffer(self, kind: str, words: int) -> np.ndarray:
        """The driver's DMA buffer ``kind`` ("in" or "out"), reallocated only when a job needs more words.

        One buffer per direction is reused by every job (jobs run one after another), as PYNQ
        drivers do: contiguous allocation is slow on the board and CMA memory is scarce.
        """
        buf = self._buffers.get(kind)
        if buf is None or buf.size < words:
            if buf is not None and hasattr(buf, "freebuffer"):
                buf.freebuffer()  # pynq: return the contiguous memory
            buf = self.board.allocate(max(words, 1), np.uint64)
            self._buffers[kind] = buf
        return buf

    def program(self, node: QNode, x: np.ndarray, in_t: QTensor, out_t: QTensor) -> LayerProgram:
        """The layer compiled for inputs shaped like ``x`` (built at the first call, then reused)."""
        key = (node.name, tuple(x.shape), in_t.bits, in_t.signed, out_t.bits, out_t.signed, self.img2col)
        prog = self._programs.get(key)
        if prog is None or prog.node is not node:
            engine = self.spec.engine(node_bits(node, in_t.bits))
            prog = compile_layer(node, x, engine, self.spec, in_t, out_t, self.img2col)
            self._programs[key] = prog
        return prog

    def run_layer(self, node: QNode, x: np.ndarray, in_t: QTensor, out_t: QTensor) -> LayerRun:
        """Run a whole conv/dense layer (host tile loop over groups and N-tiles)."""
        engine = self.spec.engine(node_bits(node, in_t.bits))
        if in_t.bits != engine.bits:
            raise BoardError(
                f"layer {node.name!r} reads {in_t.bits}-bit activations but its weights are {engine.bits}-bit; "
                "the overlay's engines take equal widths (quantize with the same W/A bits)."
            )
        t0 = time.perf_counter()
        rails0 = self.board.energy_uj()
        prog = self.program(node, x, in_t, out_t)
        words = prog.activation_words(x)
        self.clear_counters()
        out = np.zeros((prog.shp.m, prog.shp.n * prog.shp.groups), np.int64)
        for job in prog.jobs:
            y = self.run_job(node, job, words[job.block], out_t)
            out[:, job.col0:job.col0 + y.shape[1]] = y
        counters = self.counters()
        rails1 = self.board.energy_uj()
        energy = None if rails0 is None or rails1 is None else rails1 - rails0
        return LayerRun(out.reshape(prog.out_shape), counters, len(prog.jobs), prog.shp.macs * prog.shp.groups,
                        engine.peak_macs_per_cycle, time.perf_counter() - t0, energy, prog.path)


def node_bits(node: QNode, default: int | None = None) -> int:
    """The weight width of a conv/dense node (its engine)."""
    bits = node.attrs.get("w_bits", default)
    if bits is None:
        raise BoardError(f"layer {node.name!r} has no weight width.")
    return int(bits)


__all__ = ["Counters", "LayerRun", "OverlayDriver", "node_bits"]
