"""The overlay RTL (Verilator SimBoard) driven by the shared driver, against the golden model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from board.util import random_layer
from codesign.board.base import BoardError, BoardTimeout, ConfigHashMismatch
from codesign.board.driver import OverlayDriver
from codesign.board.program import LayerProgram
from codesign.hw.mapping import layer_shape, lower, output_words, pack_job_input
from codesign.quant.dyadic import Act
from codesign.quant.golden import INT_OPS

pytestmark = pytest.mark.rtl

# (kind, keyword arguments of random_layer): strides, padding, depthwise, dense, every
# activation, signed/unsigned in and out, output widths whose packing straddles words,
# N not a multiple of the post-process lanes, and N wider than one weight-bank tile.
CASES = {
    "conv3x3_relu": ("conv", {}),
    "conv3x3_s2_none_signed": ("conv", {"stride": 2, "act": Act.NONE, "a_signed": True, "out_signed": True}),
    "conv1x1_relu6_out5": ("conv", {"k": 1, "pad": 0, "act": Act.RELU6, "out_bits": 5, "cout": 37}),
    "conv3x3_hswish_out3": ("conv", {"act": Act.HSWISH, "out_bits": 3, "out_signed": True, "cout": 21}),
    "depthwise_relu6": ("conv", {"cin": 6, "cout": 6, "groups": 6, "act": Act.RELU6}),
    "depthwise_s2_two_blocks": ("conv", {"hw": 7, "cin": 40, "cout": 40, "groups": 40, "stride": 2}),
    "depthwise_multiplier2": ("conv", {"cin": 6, "cout": 12, "groups": 6, "act": Act.NONE, "out_signed": True}),
    "grouped_conv": ("conv", {"cin": 8, "cout": 8, "groups": 2, "k": 1, "pad": 0}),
    "dense_none_out7": ("dense", {"cin": 70, "cout": 10, "act": Act.NONE, "out_bits": 7, "out_signed": True}),
    "conv_wide_multi_tile": ("conv", {"hw": 3, "cin": 128, "cout": 300, "k": 3}),
}


def _golden(node, x, out_t):
    return INT_OPS[node.kind](node, [x], out_t)


def test_identification_registers(sim_board, overlay) -> None:
    drv = OverlayDriver(sim_board, overlay)  # checks CONFIG_HASH and BITS_SUPPORTED
    assert drv.read_reg("CONFIG_HASH") == overlay.config_hash
    for e in overlay.engines:
        drv.write_reg("DESC_BITS", e.bits)
        assert drv.read_reg("ENGINE_LANES") == e.lanes
    assert drv.read_reg("AP_CTRL") & 0b100  # idle


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_bit_exact(sim_board, overlay, case: str, bits: int) -> None:
    kind, kw = CASES[case]
    rng = np.random.default_rng(abs(hash((case, bits))) % 2**32)
    node, x, in_t, out_t = random_layer(rng, kind, bits, **kw)
    run = OverlayDriver(sim_board, overlay).run_layer(node, x, in_t, out_t)
    np.testing.assert_array_equal(run.output, _golden(node, x, out_t))


@pytest.mark.parametrize("bits", [4, 8])
def test_counters_match_the_job_structure(sim_board, overlay, bits: int) -> None:
    """Activity counters equal what the job structure implies (derived from shapes, not a run)."""
    rng = np.random.default_rng(bits)
    node, x, in_t, out_t = random_layer(rng, "conv", bits, cin=16, cout=40, hw=5)
    eng = overlay.engine(bits)
    shp, jobs = lower(node, x, eng, overlay, "host")  # the img2col path: tests/board/test_img2col_path.py
    run = OverlayDriver(sim_board, overlay, img2col="host").run_layer(node, x, in_t, out_t)
    c = run.counters
    kb = -(-shp.k // eng.tree)
    beats = sum(j.a.shape[0] * kb * -(-j.w.shape[1] // eng.lanes) for j in jobs)
    words_in = sum(pack_job_input(j, eng, in_t.signed).size for j in jobs)
    words_out = sum(output_words(j.a.shape[0], j.w.shape[1], out_t.bits) for j in jobs)
    assert c["CYC_COMPUTE"] == beats
    assert c["CNT_MACS"] == beats * eng.peak_macs_per_cycle
    assert c["CNT_BRAM_READS"] == beats * (eng.lanes + 1)
    assert c["CNT_BEATS_IN"] == c["CNT_BRAM_WRITES"] == words_in
    assert c["CNT_BEATS_OUT"] == words_out
    chunks = sum(j.a.shape[0] * sum(-(-min(eng.lanes, j.w.shape[1] - g * eng.lanes) // overlay.post_lanes)
                                    for g in range(-(-j.w.shape[1] // eng.lanes))) for j in jobs)
    assert c["CYC_POSTPROC"] == chunks
    for stage in ("CYC_TRANSFER_IN", "CYC_COMPUTE", "CYC_POSTPROC", "CYC_WRITEBACK"):
        assert 0 < c[stage] <= c["CYC_TOTAL"]
    assert run.macs == shp.macs
    assert run.macs <= c["CNT_MACS"]


def test_four_bit_engine_is_faster_on_a_compute_bound_layer(sim_board, overlay) -> None:
    cyc = {}
    for bits in (4, 8):
        node, x, in_t, out_t = random_layer(np.random.default_rng(3), "conv", bits, hw=8, cin=64, cout=64)
        cyc[bits] = OverlayDriver(sim_board, overlay).run_layer(node, x, in_t, out_t).counters["CYC_COMPUTE"]
    assert cyc[4] * 2 == cyc[8]  # twice the tree, same lanes (K = 576 is a multiple of both trees)


def test_dma_bandwidth_and_latency_show_in_transfer_cycles(overlay) -> None:
    from codesign.board.sim import SimBoard

    node, x, in_t, out_t = random_layer(np.random.default_rng(5), "conv", 8, hw=6, cin=16, cout=8, k=1, pad=0)
    totals = {}
    for bw, lat in ((8.0, 0), (2.0, 200)):
        board = SimBoard(overlay, dma_bytes_per_cycle=bw, dma_latency=lat)
        run = OverlayDriver(board, overlay).run_layer(node, x, in_t, out_t)
        np.testing.assert_array_equal(run.output, _golden(node, x, out_t))
        totals[bw] = run.counters
        board.close()
    words_in = totals[8.0]["CNT_BEATS_IN"]
    assert totals[2.0]["CYC_TRANSFER_IN"] >= 4 * words_in  # one beat per 4 cycles at 2 B/cycle
    assert totals[2.0]["CYC_TOTAL"] > totals[8.0]["CYC_TOTAL"] + 200


def test_timeout_raises_with_register_dump(overlay, monkeypatch) -> None:
    from codesign.board.sim import SimBoard

    board = SimBoard(overlay)
    node, x, in_t, out_t = random_layer(np.random.default_rng(7), "conv", 4)
    real = LayerProgram.activation_words
    monkeypatch.setattr(LayerProgram, "activation_words", lambda *a: [w[:-3] for w in real(*a)])  # the DMA sends too little
    with pytest.raises(BoardTimeout) as err:
        OverlayDriver(board, overlay).run_layer(node, x, in_t, out_t)
    msg = str(err.value)
    assert "Register dump" in msg and "AP_CTRL=" in msg and "CYC_TOTAL=" in msg
    board.close()


def test_hash_mismatch_is_refused(sim_board, overlay) -> None:
    other = dataclasses.replace(overlay, wbank_depth=overlay.wbank_depth // 2)
    with pytest.raises(ConfigHashMismatch, match="config hash"):
        OverlayDriver(sim_board, other)


def test_layer_shape_of_dense_and_conv() -> None:
    rng = np.random.default_rng(0)
    node, x, _i, _o = random_layer(rng, "conv", 4, hw=7, cin=8, cout=12, stride=2)
    shp = layer_shape(node, x.shape)
    assert (shp.m, shp.n, shp.k) == (16, 12, 72)


class _DeadBoard:
    """A board whose AXI-lite port does not answer."""

    name = "dead"
    device = "xc7z020"
    clock_mhz = 100.0

    def read(self, offset: int) -> int:
        raise BoardError("no AXI-lite response")

    def write(self, offset: int, value: int) -> None:
        raise BoardError("no AXI-lite response")


def test_board_that_does_not_answer(overlay) -> None:
    with pytest.raises(BoardError, match="does not answer"):
        OverlayDriver(_DeadBoard(), overlay)  # type: ignore[arg-type]
