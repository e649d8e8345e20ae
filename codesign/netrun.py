"""Images through the whole quantized network: GEMMs on the overlay, the rest on the CPU.

Every conv/depthwise/dense node runs on the overlay engine of its weight width through
:class:`codesign.board.driver.OverlayDriver`; its output tensor already has the width its
consumers ask for (``codesign.quant.qgraph``), so a mixed transition (an 8-bit layer feeding a
4-bit one) is the post-process writing 4-bit codes. Every other node runs on the CPU with the
integer golden op (:data:`codesign.quant.golden.INT_OPS`), timed. The integer golden model runs
the same image on its own as the oracle: each node's output must equal the golden one bit for
bit, else :class:`DeployMismatchError` names the layer and the image.

Time is split the way a board spends it: overlay cycles from the counters (per stage), bus
cycles (AXI-lite descriptor writes, DMA set-up, done polls: on the simulated board the model's
cycle count outside the jobs' counters), host time in the driver outside board calls (im2col,
packing, unpacking) and host time of the CPU ops.

Images run one at a time (the latency a single request sees, and what the hardware table's
rows measure) or in batches (:meth:`NetworkRunner.run_batch`): every layer then runs once for
the whole batch, one job stream of ``B x`` the GEMM rows, so the descriptor and post-process
writes, the weight words and the DMA set-up are paid once per batch, as in FINN's and hls4ml's
batched PYNQ drivers. A batch always takes the host im2col path (the hardware img2col core
holds one image's feature map). Each image of a batch is credited ``1/B`` of the batch's
cycles and times.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from codesign.board.base import Board
from codesign.board.driver import OverlayDriver
from codesign.board.timed import TimedBoard, bus_cycles
from codesign.hw.overlay import OverlaySpec
from codesign.hw.regmap import STAGES
from codesign.oqa import BitExactError
from codesign.quant.golden import INT_OPS, GoldenModel
from codesign.quant.qgraph import QGraph, QNode

CYCLE_KEYS = tuple(f"CYC_{s}" for s in STAGES)


class DeployMismatchError(BitExactError):
    """The accelerator path's output differs from the golden model's for some layer and image."""


@dataclass
class LayerMeasure:
    """One GEMM layer of one image on the overlay."""

    layer: str
    kind: str
    w_bits: int
    a_bits: int
    out_bits: int
    path: str
    jobs: int
    cycles: dict[str, float]  # CYC_* counters (stages overlap; CYC_TOTAL is start to done, summed over jobs)
    bus_cycles: float | None  # cycles of the layer outside its jobs (codesign.board.timed.bus_cycles)
    board_s: float  # wall time inside board calls (real latency on hardware; simulator time in sim)
    driver_s: float  # host time in the driver outside board calls (lowering, im2col, packing)
    batch: int = 1  # images that shared the layer's jobs; the figures above are the batch's / batch


@dataclass
class ImageRun:
    """Everything measured for one image."""

    index: int
    logits: list[int]
    layers: list[LayerMeasure]
    ps_s: dict[str, float] = field(default_factory=dict)  # CPU node -> host seconds
    ps_kind: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0


def _mismatch(node: QNode, indices: list[int], got: np.ndarray, want: np.ndarray, where: str) -> DeployMismatchError:
    """The error naming the layer and the first image of the batch whose output differs."""
    index = indices[0]
    if got.shape != want.shape:
        detail = f"shape {got.shape} instead of {want.shape}"
    else:
        bad = np.argwhere(got != want)
        first = tuple(int(v) for v in bad[0])
        index = indices[first[0]]  # the leading axis is the batch
        n_bad = int(np.count_nonzero(got[first[0]] != want[first[0]]))
        detail = (f"{n_bad} of {got[first[0]].size} codes differ (first at {first[1:]}: {int(got[first])} instead "
                  f"of {int(want[first])})")
    batch = f" (in a batch of {len(indices)})" if len(indices) > 1 else ""
    return DeployMismatchError(
        f"image {index}{batch}: layer {node.name!r} ({node.kind}, {where}) differs from the golden model: {detail}. "
        "The accelerator path is not bit-exact; the overlay, the driver or the DMA corrupted data."
    )


class NetworkRunner:
    """Runs a quantized network on one board's overlay, image by image or in batches."""

    def __init__(self, qg: QGraph, board: Board, spec: OverlaySpec, img2col: str = "auto") -> None:
        self.qg = qg
        self.board = TimedBoard(board)
        self.driver = OverlayDriver(self.board, spec, img2col=img2col)
        self.golden = GoldenModel(qg)

    def run_image(self, x_q: np.ndarray, index: int) -> ImageRun:
        """One image (integer input codes, shape [1, ...]) through the network, checked node by node."""
        return self.run_batch(x_q, [index])[0]

    def run_batch(self, x_q: np.ndarray, indices: list[int]) -> list[ImageRun]:
        """Images ``x_q`` [B, ...] (their dataset indices ``indices``) through the network, every layer once
        for the batch, each node's output checked against the golden model's; one ImageRun per image."""
        qg = self.qg
        b = len(indices)
        if x_q.shape[0] != b:
            raise ValueError(f"{x_q.shape[0]} images for {b} indices")
        t_img = time.perf_counter()
        want = self.golden.trace(x_q).outputs
        acts: dict[str, np.ndarray] = {qg.input: np.asarray(x_q, np.int64)}
        layers: list[LayerMeasure] = []
        ps_s: dict[str, float] = {}
        ps_kind: dict[str, str] = {}
        for node in qg.nodes:
            ins = [acts[t] for t in node.inputs]
            out_t = qg.tensors[node.output]
            if node.is_gemm:
                in_t = qg.tensors[node.inputs[0]]
                cyc0, board0, t0 = self.board.cycles(), self.board.seconds, time.perf_counter()
                run = self.driver.run_layer(node, ins[0], in_t, out_t)
                wall = time.perf_counter() - t0
                in_board = self.board.seconds - board0
                c = {k: int(run.counters[k]) for k in CYCLE_KEYS}
                bus = bus_cycles(self.board, cyc0, board0, c["CYC_TOTAL"])
                layers.append(LayerMeasure(node.name, node.kind, int(node.attrs["w_bits"]), in_t.bits, out_t.bits,
                                           run.path, run.jobs, _share(c, b), None if bus is None else _share1(bus, b),
                                           in_board / b, (wall - in_board) / b, b))
                y = run.output
                where = f"on the {node.attrs['w_bits']}-bit engine"
            else:
                t0 = time.perf_counter()
                y = INT_OPS[node.kind](node, ins, out_t)
                ps_s[node.name] = (time.perf_counter() - t0) / b
                ps_kind[node.name] = node.kind
                where = "on the CPU"
            if y.shape != want[node.name].shape or not np.array_equal(y, want[node.name]):
                raise _mismatch(node, indices, np.asarray(y), want[node.name], where)
            acts[node.output] = y
        logits = np.asarray(acts[qg.output]).reshape(b, -1)
        wall_s = (time.perf_counter() - t_img) / b
        return [ImageRun(idx, [int(v) for v in logits[i]], list(layers), dict(ps_s), dict(ps_kind), wall_s)
                for i, idx in enumerate(indices)]


def _share1(value: int, b: int) -> float:
    """One image's share of a batch figure (the integer itself for a batch of one)."""
    return value if b == 1 else value / b


def _share(cycles: dict[str, int], b: int) -> dict[str, float]:
    return {k: _share1(v, b) for k, v in cycles.items()}


__all__ = ["CYCLE_KEYS", "DeployMismatchError", "ImageRun", "LayerMeasure", "NetworkRunner", "TimedBoard"]
