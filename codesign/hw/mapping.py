"""The layer -> GEMM mapping: lowering a conv/dense node to overlay jobs, and their packing.

A QGraph conv/dense node becomes one or more GEMMs (:func:`_blocks`, whose geometry is the
op's own :meth:`codesign.quant.ops.gemm.GemmOp.gemm_blocks`) and each GEMM, per
N-tile, one :class:`GemmJob`: the im2col activation matrix ``A`` [M, K], the weight tile
``W`` [K, NT] and the per-channel post-process parameters. Packing follows
:mod:`codesign.hw.packing` (64-bit words, element 0 in the LSBs): rows of ``A`` are padded to
``KB * tree`` elements, the weight tile is ordered (lane group, k-beat, lane) with ``tree``
weights per word. Depthwise layers run as block-diagonal GEMMs: a degenerate mapping that
issues mostly zero products, which is exactly what OQA should measure.

Standard convolutions whose input channels fill whole 64-bit words (``Cin % tree == 0``,
``K <= 7``) can use the overlay's hardware img2col instead (:func:`img2col_ok`): the job
streams the feature map once as channel words in (y, x, cw) order through the overlay's
circular IFM buffer, and the overlay builds the GEMM rows itself. The driver
takes that path when it streams fewer activation words than the im2col rows
(:func:`choose_path`); the K order (kh, kw, cin) and hence the weight packing are the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.errors import UnsupportedLayerError
from codesign.graph import ops
from codesign.hw.cores.img2col import K_MAX, NIB_MAX, img2col_geometry
from codesign.hw.cores.postproc import MAX_CHANNELS
from codesign.hw.overlay import EngineSpec, OverlaySpec
from codesign.hw.packing import check_range, pack64, pack_codes64, to_codes, unpack64
from codesign.hw.regmap import pack_fields
from codesign.quant.ops.gemm import Conv, GemmOp
from codesign.quant.qir import QNode, QTensor

PP_DEPTH = MAX_CHANNELS  # channels of the post-process parameter memory (one definition: the postproc core)


HOST, HW_IMG2COL = "host", "hw_img2col"  # activation paths of a layer


@dataclass
class GemmJob:
    """One ap_start: an N-tile of one group of a layer."""

    a: np.ndarray  # [M, K] activation codes (the im2col rows; on the img2col path for reference)
    w: np.ndarray  # [K, NT] weight codes
    bias: np.ndarray  # [NT]
    mult: np.ndarray  # [NT]
    shift: np.ndarray  # [NT]
    col0: int  # first output channel of the tile in the layer's output
    group: int
    ifm: np.ndarray | None = None  # [H, W, Cin] feature-map codes streamed (hardware img2col)

    @property
    def path(self) -> str:
        """HOST (im2col rows streamed) or HW_IMG2COL (feature map streamed)."""
        return HOST if self.ifm is None else HW_IMG2COL


@dataclass(frozen=True)
class LayerShape:
    """GEMM view of a layer plus the conv geometry the descriptor records."""

    m: int
    n: int
    k: int
    groups: int
    in_h: int
    in_w: int
    in_c: int
    kh: int
    kw: int
    stride: int
    pad: int

    @property
    def macs(self) -> int:
        """Useful multiply-accumulates of the layer (all groups)."""
        return self.m * self.n * self.k


def layer_shape(node: QNode, x_shape: tuple[int, ...]) -> LayerShape:
    """GEMM dimensions of ``node`` for an NHWC (or NC) input of shape ``x_shape``."""
    op = _gemm_op(node)
    w = op.weight
    if not isinstance(op, Conv):
        batch = int(np.prod(x_shape[:-1]))
        return LayerShape(batch, w.shape[1], w.shape[0], 1, 1, 1, x_shape[-1], 1, 1, 1, 0)
    kh, kw, cin_g, cout = w.shape
    groups = int(op.groups)
    n_img, h, wd, _c = x_shape
    t, b, lft, r = op.padding
    sh, sw = op.strides
    oh = (h + t + b - kh) // sh + 1
    ow = (wd + lft + r - kw) // sw + 1
    return LayerShape(n_img * oh * ow, cout // groups, kh * kw * cin_g, groups, h, wd, _c, kh, kw, sh, max(t, lft))


def tile_width(engine: EngineSpec, spec: OverlaySpec, k: int, n: int) -> int:
    """Widest N-tile whose weights fit the weight bank (and the post-process memory)."""
    kb = -(-k // engine.tree)
    if kb > spec.row_depth:
        raise UnsupportedLayerError(
            f"K={k} needs {kb} activation words per row but the overlay's row buffer holds {spec.row_depth}; "
            "this layer is too deep for the overlay."
        )
    groups_fit = max(1, spec.wbank_depth // kb)
    if kb > spec.wbank_depth:
        raise UnsupportedLayerError(f"K={k} does not fit the weight bank ({spec.wbank_depth} words per lane).")
    width = min(n, groups_fit * engine.lanes, PP_DEPTH)
    return width


@dataclass(frozen=True)
class EngineTiles:
    """An engine as the op cycle model sees it (:class:`codesign.quant.ops.gemm.EngineGeometry`)."""

    engine: EngineSpec
    spec: OverlaySpec

    @property
    def lanes(self) -> int:
        """Output channels per beat."""
        return self.engine.lanes

    @property
    def tree(self) -> int:
        """Products summed per lane and beat."""
        return self.engine.tree

    def tile_n(self, k: int, n: int) -> int:
        """Widest N-tile (:func:`tile_width`)."""
        return tile_width(self.engine, self.spec, k, n)


def expected_cycles(node: QNode, x_shape: tuple[int, ...], engine: EngineSpec, spec: OverlaySpec) -> tuple[int, int]:
    """``(expected CYC_COMPUTE, lower bound on CYC_TOTAL)`` of a conv/dense node on ``engine``."""
    op = _gemm_op(node)
    tiles = EngineTiles(engine, spec)
    return op.exp_cycles(tiles, x_shape), op.min_total_cycles(tiles, x_shape)


def _gemm_op(node: QNode) -> GemmOp:
    op = node.op
    if not isinstance(op, GemmOp):
        raise UnsupportedLayerError(f"layer {node.name!r} of kind {node.kind} does not run on the overlay.")
    return op


def _out_hw(op: Conv, shp: LayerShape) -> tuple[int, int]:
    t, b, lft, r = op.padding
    return (shp.in_h + t + b - shp.kh) // shp.stride + 1, (shp.in_w + lft + r - shp.kw) // op.strides[1] + 1


def img2col_ok(node: QNode, x_shape: tuple[int, ...], engine: EngineSpec, spec: OverlaySpec) -> bool:
    """True when ``node`` can run on the overlay's hardware img2col.

    Eligible: a standard (ungrouped) convolution of one image whose ``Cin`` fills whole words
    (``Cin % tree == 0``), with ``KH, KW <= 7``, equal strides, top/left padding that fit the
    descriptor's 4-bit fields, and ``KH + stride - 1`` image rows inside the IFM buffer (the
    rows one output row's windows span, plus the rows the last one skips).
    """
    op = node.op
    if not isinstance(op, Conv) or len(x_shape) != 4 or x_shape[0] != 1:
        return False
    shp = layer_shape(node, x_shape)
    t, _b, lft, _r = op.padding
    sh, sw = op.strides
    cw = shp.in_c // engine.tree
    return not (shp.groups != 1 or shp.in_c % engine.tree or max(shp.kh, shp.kw) > K_MAX or sh != sw
                or max(sh, t, lft) > NIB_MAX or shp.kh * shp.kw * cw > spec.row_depth
                or (shp.kh + sh - 1) * shp.in_w * cw > spec.ifm_depth)


def choose_path(node: QNode, x_shape: tuple[int, ...], engine: EngineSpec, spec: OverlaySpec,
                mode: str = "auto") -> str:
    """The layer's activation path: ``mode`` "host", "hw" (whenever eligible) or "auto".

    "auto" takes hardware img2col when the layer is eligible and its feature map has fewer
    words than its im2col rows: 3x3 and larger windows, not 1x1 convolutions (equal at
    stride 1, 4x more words at stride 2).
    """
    if mode not in ("auto", "host", "hw"):
        raise ValueError(f"img2col mode must be 'auto', 'host' or 'hw', not {mode!r}")
    if mode == "host" or not img2col_ok(node, x_shape, engine, spec):
        return HOST
    if mode == "auto":
        shp = layer_shape(node, x_shape)
        if shp.in_h * shp.in_w * (shp.in_c // engine.tree) >= shp.m * -(-shp.k // engine.tree):
            return HOST
    return HW_IMG2COL


def _blocks(node: QNode, x: np.ndarray, shp: LayerShape, lanes: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """The layer as independent GEMMs ``(A [M, K], W [K, N], first output channel)``.

    Dense and ungrouped convs are one GEMM. A depthwise conv (one input channel per group,
    channel multiplier 1) becomes block-diagonal GEMMs over ``lanes`` channels at a time: the
    im2col rows of the block's channels against a weight matrix that is zero off the diagonal
    blocks. That issues ``lanes`` times more multiplies than useful, but fewer beats and jobs
    than one channel per job. Other grouped convs run one GEMM per group.
    """
    weights = weight_blocks(node, x.shape, shp, lanes)
    acts = activation_blocks(node, x, shp, lanes)
    return [(a, w, first) for a, (w, first) in zip(acts, weights, strict=True)]


def _depthwise(op: GemmOp, shp: LayerShape) -> bool:
    return isinstance(op, Conv) and shp.groups > 1 and op.weight.shape[2] == 1 and shp.n == 1


def weight_blocks(node: QNode, x_shape: tuple[int, ...], shp: LayerShape, lanes: int) -> list[tuple[np.ndarray, int]]:
    """The weight side of :func:`_blocks`: ``(W [K, N], first output channel)`` per GEMM (image-independent)."""
    op = _gemm_op(node)
    w = op.weight.astype(np.int64)
    if not isinstance(op, Conv):
        return [(w, 0)]
    kh, kw, cin_g, cout = w.shape
    if shp.groups == 1:
        return [(w.reshape(kh * kw * cin_g, cout), 0)]
    out = []
    taps = kh * kw
    for blk in op.gemm_blocks(x_shape, lanes):
        c0, b = blk.col0, blk.n
        if _depthwise(op, shp):  # block-diagonal over the block's channels
            wb = np.zeros((taps, b, b), np.int64)
            idx = np.arange(b)
            wb[:, idx, idx] = w[:, :, 0, c0:c0 + b].reshape(taps, b)
            out.append((wb.reshape(taps * b, b), c0))
        else:
            out.append((w[..., c0:c0 + b].reshape(taps * cin_g, b), c0))
    return out


def activation_blocks(node: QNode, x: np.ndarray, shp: LayerShape, lanes: int) -> list[np.ndarray]:
    """The activation side of :func:`_blocks`: the im2col rows ``A [M, K]`` of each GEMM for input ``x``."""
    op = _gemm_op(node)
    if not isinstance(op, Conv):
        return [x.reshape(-1, x.shape[-1])]
    kh, kw, cin_g, cout = op.weight.shape
    xp = ops.pad_nhwc(x, op.padding, 0)
    if shp.groups == 1:
        cols = ops.im2col(xp, (kh, kw), op.strides)
        return [cols.reshape(-1, cols.shape[-1])]
    blocks = op.gemm_blocks(x.shape, lanes)
    if _depthwise(op, shp):
        taps = kh * kw
        cols = ops.im2col(xp, (kh, kw), op.strides).reshape(-1, taps, cout)
        return [np.ascontiguousarray(cols[:, :, b.col0:b.col0 + b.n]).reshape(-1, taps * b.n) for b in blocks]
    out = []
    for g, _blk in enumerate(blocks):
        cols = ops.im2col(xp[..., g * cin_g:(g + 1) * cin_g], (kh, kw), op.strides)
        out.append(cols.reshape(-1, cols.shape[-1]))
    return out


def lower(node: QNode, x: np.ndarray, engine: EngineSpec, spec: OverlaySpec,
          img2col: str = "auto") -> tuple[LayerShape, list[GemmJob]]:
    """Split a conv/dense node over an input batch ``x`` into overlay jobs (host tile loop).

    ``img2col`` selects the activation path (:func:`choose_path`); on the hardware-img2col
    path every N-tile job streams the whole feature map.
    """
    x = np.asarray(x, np.int64)
    shp = layer_shape(node, x.shape)
    path = choose_path(node, x.shape, engine, spec, img2col)
    ifm = np.ascontiguousarray(x[0]) if path == HW_IMG2COL else None
    op = _gemm_op(node)
    jobs: list[GemmJob] = []
    for g, (a, wb, first) in enumerate(_blocks(node, x, shp, engine.lanes)):
        k, n = wb.shape
        width = tile_width(engine, spec, k, n)
        for c0 in range(0, n, width):
            c1 = min(n, c0 + width)
            lo, hi = first + c0, first + c1
            jobs.append(GemmJob(a, wb[:, c0:c1], op.bias[lo:hi], op.mult[lo:hi], op.shift[lo:hi], lo, g, ifm))
    return shp, jobs


def pack_job_input(job: GemmJob, engine: EngineSpec, a_signed: bool) -> np.ndarray:
    """The job's input stream: weight words (g, kb, lane) then activation words, as uint64."""
    acts = job.a if job.ifm is None else job.ifm
    check_range(acts, engine.bits, a_signed)
    codes = to_codes(acts, engine.bits)
    return np.concatenate([pack_weights(job.w, engine),
                           pack_activations(codes, job.ifm is not None, job.w.shape[0], engine)]).astype(np.uint64)


def pack_weights(w: np.ndarray, engine: EngineSpec) -> np.ndarray:
    """A weight tile ``W [K, NT]`` as the job's weight words, ordered (lane group, k-beat, lane)."""
    k, nt = w.shape
    tree, lanes = engine.tree, engine.lanes
    kb = -(-k // tree)
    g = -(-nt // lanes)
    wp = np.zeros((kb * tree, g * lanes), np.int64)
    wp[:k, :nt] = w
    # [kb, t, g, l] -> [g, kb, l, t]
    wt = wp.reshape(kb, tree, g, lanes).transpose(2, 0, 3, 1)
    return pack64(wt.ravel(), engine.bits, signed=True)


def pack_activations(codes: np.ndarray, feature_map: bool, k: int, engine: EngineSpec) -> np.ndarray:
    """A job's activation words from the activations' ``uint8`` codes (:func:`codesign.hw.packing.to_codes`,
    range already checked): the feature map's channel words in (y, x, cw) order (hardware img2col,
    ``feature_map``), or the im2col rows ``A [M, K]`` each padded to whole k-words."""
    if not feature_map:
        kb = -(-k // engine.tree)
        if kb * engine.tree != k:  # pad every row to whole k-words
            padded = np.zeros((codes.shape[0], kb * engine.tree), np.uint8)
            padded[:, :k] = codes
            codes = padded
    return pack_codes64(codes, engine.bits)


def output_words(m: int, nt: int, out_bits: int) -> int:
    """64-bit words of the job's output stream."""
    per = 64 // out_bits
    return -(-(m * nt) // per)


def unpack_output(words: np.ndarray, m: int, nt: int, out_t: QTensor) -> np.ndarray:
    """Output stream -> [M, NT] codes."""
    return unpack64(words, out_t.bits, out_t.signed, m * nt).reshape(m, nt)


def descriptor(node: QNode, shp: LayerShape, job: GemmJob, engine: EngineSpec, in_t: QTensor,
               out_t: QTensor) -> dict[str, int]:
    """Register values of the layer descriptor for one job (names and fields from REGMAP).

    The job geometry the overlay needs (k-beats, lane groups, word counts, img2col address
    steps) is computed here, on the host, so the hardware has no run-time divider or chained
    multiplier (docs/hw.md, "Timing closure by construction").
    """
    op = _gemm_op(node)
    ap = op.act_params
    nib = lambda v: min(int(v), NIB_MAX)  # noqa: E731 - 4-bit descriptor fields (informational on the host path)
    m = job.a.shape[0]
    k, n = job.w.shape
    kb = -(-k // engine.tree)
    g = -(-n // engine.lanes)
    kernel = pack_fields("DESC_KERNEL", KH=nib(shp.kh), KW=nib(shp.kw), STRIDE=nib(shp.stride), PAD=nib(shp.pad))
    ow = _out_hw(op, shp)[1] if isinstance(op, Conv) else 1
    cw = ifm_words = row_pitch = x_step = y_step = addr0 = floor0 = 0
    if job.ifm is not None and isinstance(op, Conv):  # hardware img2col: exact left and top padding, mode bit
        t, _b, lft, _r = op.padding
        kernel = pack_fields("DESC_KERNEL", KH=shp.kh, KW=shp.kw, STRIDE=shp.stride, PAD=int(lft), IMG2COL=1,
                         PAD_TOP=int(t))
        cw = shp.in_c // engine.tree
        geo = img2col_geometry(shp.in_h, shp.in_w, cw, shp.stride, int(t), int(lft))
        ifm_words, row_pitch, x_step, y_step = geo.ifm_words, geo.row_pitch, geo.x_step, geo.y_step
        addr0, floor0 = geo.addr0, geo.floor0
    return {
        "DESC_M": m,
        "DESC_N": n,
        "DESC_K": k,
        "DESC_IN_HW": pack_fields("DESC_IN_HW", IN_H=shp.in_h & 0xFFFF, IN_W=shp.in_w & 0xFFFF),
        "DESC_IN_C": shp.in_c,
        "DESC_KERNEL": kernel,
        "DESC_OUT_HW": pack_fields("DESC_OUT_HW", OUT_H=(m // ow) & 0xFFFF, OUT_W=ow & 0xFFFF),
        "DESC_BITS": pack_fields("DESC_BITS", W_BITS=engine.bits, A_BITS=in_t.bits, OUT_BITS=out_t.bits,
                             A_SIGNED=int(in_t.signed), OUT_SIGNED=int(out_t.signed)),
        "DESC_ACT": int(ap.act),
        "DESC_ACT_SIX": int(ap.six),
        "DESC_ACT_THREE": int(ap.three),
        "DESC_HS_MULT": int(ap.hs_mult),
        "DESC_HS_SHIFT": int(ap.hs_shift),
        "DESC_KB": kb,
        "DESC_G": g,
        "DESC_WWORDS": g * kb * engine.lanes,
        "DESC_CODES": m * n,
        "DESC_CW": cw,
        "DESC_IFM_WORDS": ifm_words,
        "DESC_ROW_PITCH": row_pitch,
        "DESC_X_STEP": x_step,
        "DESC_Y_STEP": y_step,
        "DESC_I2C_ADDR0": addr0 & 0xFFFFFFFF,
        "DESC_I2C_FLOOR0": floor0 & 0xFFFFFFFF,
    }


__all__ = ["HOST", "HW_IMG2COL", "EngineTiles", "GemmJob", "LayerShape", "activation_blocks", "choose_path", "descriptor",
           "expected_cycles", "img2col_ok", "layer_shape", "lower", "output_words", "pack_activations", "pack_job_input",
           "pack_weights", "tile_width", "unpack_output", "weight_blocks"]
