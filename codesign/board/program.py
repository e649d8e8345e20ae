"""Compiled layers: the part of a conv/dense layer's overlay jobs that no image changes, built once.

Once a network is quantized, its weights, post-process parameters and job descriptors are fixed:
per image only the activation words change. :func:`compile_layer` lowers a layer once for an
input shape. It packs each job's weight words and flattens the job's register writes (the
descriptor, then the post-process window) into ``(offset, value)`` pairs, in the order the
driver writes them. :meth:`LayerProgram.activation_words` then packs one image's activations per
GEMM block, and N-tile jobs of one block share them.

This is what the PYNQ drivers of FINN and hls4ml do with weights (prepared once, not per
inference), for an overlay that streams the weights with every job: the words are packed once
and copied into the DMA buffer, not re-derived per image. The register sequence and the DMA
words equal those of lowering the layer afresh (tests/board/test_program.py), so the bus
cycles in the hardware table still count what deployment spends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.hw.mapping import (
    HOST,
    HW_IMG2COL,
    LayerShape,
    activation_blocks,
    descriptor,
    lower,
    output_words,
    pack_activations,
    pack_weights,
)
from codesign.hw.overlay import EngineSpec, OverlaySpec
from codesign.hw.packing import check_range, to_codes
from codesign.hw.regmap import by_name
from codesign.quant.qgraph import QNode, QTensor

REG = by_name()


@dataclass(frozen=True)
class JobProgram:
    """One N-tile job without its activations."""

    regs: tuple[tuple[int, int], ...]  # (AXI-lite offset, 32-bit value): descriptor, PP_ADDR, per-channel PP
    w_words: np.ndarray  # uint64 weight words, streamed before the activation words
    block: int  # the GEMM block whose activation words follow (LayerProgram.activation_words)
    col0: int  # first output channel of the tile in the layer's output
    m: int  # output rows
    k: int  # reduction length
    nt: int  # output channels of the tile
    n_out: int  # 64-bit words of the job's output stream
    bits: int  # the engine's width


def _job_regs(desc: dict[str, int], bias: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> tuple[tuple[int, int], ...]:
    regs = [(REG[name].offset, int(value) & 0xFFFFFFFF) for name, value in desc.items()]
    regs.append((REG["PP_ADDR"].offset, 0))
    b_off, m_off, s_off = REG["PP_BIAS"].offset, REG["PP_MULT"].offset, REG["PP_SHIFT"].offset
    for b, m, s in zip(bias, mult, shift, strict=True):
        regs += [(b_off, int(b) & 0xFFFFFFFF), (m_off, int(m) & 0xFFFFFFFF), (s_off, int(s) & 0xFFFFFFFF)]
    return tuple(regs)


@dataclass(frozen=True)
class LayerProgram:
    """A conv/dense layer lowered once for one input shape and activation path."""

    node: QNode
    shp: LayerShape
    engine: EngineSpec
    path: str  # HOST or HW_IMG2COL
    a_signed: bool
    out_t: QTensor
    out_shape: tuple[int, ...]
    jobs: tuple[JobProgram, ...]

    def activation_words(self, x: np.ndarray) -> list[np.ndarray]:
        """The activation words of an image (or a batch) per GEMM block (``jobs[i].block`` indexes it).

        The input's range is checked once, then im2col and packing work on its ``uint8`` codes
        (a host im2col copies each value up to KH*KW times; at 8 bit per code rather than 64).
        """
        check_range(x, self.engine.bits, self.a_signed)
        codes = to_codes(x, self.engine.bits)
        if self.path == HW_IMG2COL:  # the feature map once, for every N-tile job
            return [pack_activations(codes[0], True, 0, self.engine)]
        return [pack_activations(a, False, a.shape[1], self.engine)
                for a in activation_blocks(self.node, codes, self.shp, self.engine.lanes)]


def _out_shape(node: QNode, x_shape: tuple[int, ...], shp: LayerShape) -> tuple[int, ...]:
    n_out = shp.n * shp.groups
    if node.kind == "dense":
        return (*x_shape[:-1], n_out)
    kw = node.params["weight"].shape[1]
    _t, _b, lft, r = node.attrs["padding"]
    ow = (x_shape[2] + lft + r - kw) // node.attrs["strides"][1] + 1
    return (x_shape[0], shp.m // x_shape[0] // ow, ow, n_out)


def compile_layer(node: QNode, x: np.ndarray, engine: EngineSpec, spec: OverlaySpec, in_t: QTensor,
                  out_t: QTensor, img2col: str = "auto") -> LayerProgram:
    """Lower ``node`` for inputs shaped like ``x`` and keep everything but the activations."""
    x = np.asarray(x, np.int64)
    shp, jobs = lower(node, x, engine, spec, img2col)
    progs = []
    for job in jobs:
        desc = descriptor(node, shp, job, engine, in_t, out_t)
        progs.append(JobProgram(_job_regs(desc, job.bias, job.mult, job.shift), pack_weights(job.w, engine),
                                job.group, job.col0, job.a.shape[0], job.w.shape[0], job.w.shape[1],
                                output_words(job.a.shape[0], job.w.shape[1], out_t.bits), engine.bits))
    path = jobs[0].path if jobs else HOST
    return LayerProgram(node, shp, engine, path, in_t.signed, out_t, _out_shape(node, x.shape, shp), tuple(progs))


__all__ = ["JobProgram", "LayerProgram", "compile_layer"]
