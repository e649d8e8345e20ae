"""Hardware img2col in the overlay: the feature map is streamed once per job and the overlay
builds the GEMM rows itself (DESC_KERNEL.IMG2COL). Every output is checked against the golden
model; counters are checked against what the job structure implies."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from board.util import random_layer
from codesign.board.driver import OverlayDriver
from codesign.hw.mapping import HOST, HW_IMG2COL, choose_path, img2col_ok, lower, pack_job_input
from codesign.quant.dyadic import Act
from codesign.quant.golden import INT_OPS

# (name, keyword arguments of random_layer with cin given in words per pixel "cw", driver mode)
HW_CASES = {
    "k3_s1_p1": ({"hw": 6, "cw": 2}, "auto"),
    "k3_s2_p1_signed": ({"hw": 7, "cw": 1, "stride": 2, "act": Act.NONE, "a_signed": True, "out_signed": True}, "auto"),
    "k3_s2_same_asym": ({"hw": 6, "cw": 2, "stride": 2, "padding": (0, 1, 0, 1)}, "auto"),
    "k3_s1_p0_hswish": ({"hw": 5, "cw": 1, "pad": 0, "act": Act.HSWISH, "out_bits": 3, "out_signed": True}, "auto"),
    "k5_s1_p2_relu6": ({"hw": 6, "cw": 1, "k": 5, "pad": 2, "act": Act.RELU6, "cout": 37}, "auto"),
    "k7_s2_p3": ({"hw": 9, "cw": 1, "k": 7, "pad": 3, "stride": 2, "cout": 9}, "auto"),
    "k1_s1_forced": ({"hw": 5, "cw": 2, "k": 1, "pad": 0}, "hw"),
    "k1_s2_forced": ({"hw": 6, "cw": 1, "k": 1, "pad": 0, "stride": 2, "cout": 5}, "hw"),
    "k3_several_n_tiles": ({"hw": 3, "cw": 16, "cout": 300}, "auto"),
}


def _layer(rng, bits: int, overlay, **kw):
    kw = dict(kw)
    cin = kw.pop("cw") * overlay.engine(bits).tree
    padding = kw.pop("padding", None)
    node, x, in_t, out_t = random_layer(rng, "conv", bits, cin=cin, **kw)
    if padding is not None:
        node.attrs["padding"] = padding
    return node, x, in_t, out_t


def _golden(node, x, out_t):
    return INT_OPS[node.kind](node, [x], out_t)


@pytest.mark.rtl
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("case", sorted(HW_CASES))
def test_hw_img2col_bit_exact(sim_board, overlay, case: str, bits: int) -> None:
    kw, mode = HW_CASES[case]
    node, x, in_t, out_t = _layer(np.random.default_rng(abs(hash((case, bits))) % 2**32), bits, overlay, **kw)
    run = OverlayDriver(sim_board, overlay, img2col=mode).run_layer(node, x, in_t, out_t)
    assert run.path == HW_IMG2COL
    np.testing.assert_array_equal(run.output, _golden(node, x, out_t))
    if case == "k3_several_n_tiles":
        assert run.jobs > 1


@pytest.mark.rtl
@pytest.mark.parametrize(("bits", "stride", "k"), [(8, 1, 3), (4, 2, 3), (8, 2, 1)])
def test_feature_map_larger_than_the_ifm_buffer(sim_board, overlay, bits: int, stride: int, k: int) -> None:
    """A 64x64 map of 8 words per pixel (8x the IFM buffer) streams through it in one job per
    N-tile: the receiver stalls instead of overwriting rows the current output row needs."""
    eng = overlay.engine(bits)
    node, x, in_t, out_t = random_layer(np.random.default_rng(bits + stride), "conv", bits, hw=64, cin=8 * eng.tree,
                                        cout=8, stride=stride, k=k, pad=k // 2)
    assert overlay.ifm_depth < 64 * 64 * 8 and img2col_ok(node, x.shape, eng, overlay)
    run = OverlayDriver(sim_board, overlay, img2col="hw").run_layer(node, x, in_t, out_t)
    assert run.path == HW_IMG2COL and run.jobs == 1
    assert run.counters["CNT_BEATS_IN"] == 8 * k * k * eng.lanes + 64 * 64 * 8
    np.testing.assert_array_equal(run.output, _golden(node, x, out_t))


def test_ifm_buffer_must_hold_the_window_rows(overlay) -> None:
    """Eligible only while KH + stride - 1 image rows fit the IFM buffer."""
    eng = overlay.engine(8)
    node, x, _i, _o = random_layer(np.random.default_rng(0), "conv", 8, hw=16, cin=16, stride=2)
    rows = 16 * 2  # words per image row
    assert img2col_ok(node, x.shape, eng, dataclasses.replace(overlay, ifm_depth=4 * rows))
    assert not img2col_ok(node, x.shape, eng, dataclasses.replace(overlay, ifm_depth=4 * rows - 1))
    assert choose_path(node, x.shape, eng, dataclasses.replace(overlay, ifm_depth=rows)) == HOST


@pytest.mark.parametrize(("case", "kw"), [
    ("stem_cin3", {"cin": 3, "hw": 8, "stride": 2}),
    ("cin_not_whole_words_4bit", {"cin": 8}),
    ("depthwise", {"cin": 16, "cout": 16, "groups": 16}),
    ("pointwise_1x1", {"cin": 16, "k": 1, "pad": 0}),
    ("kernel_9", {"cin": 16, "k": 9, "pad": 4, "hw": 10}),
])
def test_host_path_where_required(overlay, case: str, kw: dict) -> None:
    """Stem, partial channel words, depthwise, 1x1 and K > 7 stay on the host path."""
    node, x, _i, _o = random_layer(np.random.default_rng(1), "conv", 4, **kw)
    assert choose_path(node, x.shape, overlay.engine(4), overlay) == HOST
    _shp, jobs = lower(node, x, overlay.engine(4), overlay)
    assert all(j.path == HOST for j in jobs)
    dense, xd, _i, _o = random_layer(np.random.default_rng(2), "dense", 8, cin=64, cout=8)
    assert choose_path(dense, xd.shape, overlay.engine(8), overlay, "hw") == HOST


@pytest.mark.rtl
def test_host_path_runs_stem_and_depthwise(sim_board, overlay) -> None:
    for kw in ({"cin": 3, "hw": 8, "stride": 2}, {"cin": 16, "cout": 16, "groups": 16}):
        node, x, in_t, out_t = random_layer(np.random.default_rng(4), "conv", 4, **kw)
        run = OverlayDriver(sim_board, overlay).run_layer(node, x, in_t, out_t)
        assert run.path == HOST
        np.testing.assert_array_equal(run.output, _golden(node, x, out_t))


@pytest.mark.rtl
@pytest.mark.parametrize("bits", [4, 8])
def test_hw_img2col_shrinks_transfer_in(sim_board, overlay, bits: int) -> None:
    """Same 3x3 layer on both paths: same outputs and compute, ~KH*KW fewer activation words."""
    eng = overlay.engine(bits)
    node, x, in_t, out_t = random_layer(np.random.default_rng(9), "conv", bits, hw=12, cin=4 * eng.tree, cout=64)
    runs = {mode: OverlayDriver(sim_board, overlay, img2col=mode).run_layer(node, x, in_t, out_t)
            for mode in ("host", "auto")}
    assert runs["host"].path == HOST and runs["auto"].path == HW_IMG2COL
    for r in runs.values():
        np.testing.assert_array_equal(r.output, _golden(node, x, out_t))
    h, a = runs["host"].counters, runs["auto"].counters
    assert a["CYC_COMPUTE"] == h["CYC_COMPUTE"] and a["CNT_MACS"] == h["CNT_MACS"]
    w_words = 2 * 9 * 4 * eng.lanes  # two lane groups, KB = 9 * 4
    assert h["CNT_BEATS_IN"] == w_words + 144 * 36
    assert a["CNT_BEATS_IN"] == w_words + 144 * 4  # the feature map once: H*W*CW
    assert a["CYC_TRANSFER_IN"] < h["CYC_TRANSFER_IN"]
    assert a["CYC_TRANSFER_IN"] >= a["CNT_BEATS_IN"]
    # compute-bound here on both paths; the img2col path starts its first row only once the
    # rows of the first window have arrived (at most KH image rows = 3 * 12 * 4 words)
    assert a["CYC_TOTAL"] <= h["CYC_TOTAL"] + 3 * 12 * 4


@pytest.mark.rtl
@pytest.mark.parametrize("bits", [4, 8])
def test_hw_img2col_counters_match_the_job_structure(sim_board, overlay, bits: int) -> None:
    eng = overlay.engine(bits)
    node, x, in_t, out_t = random_layer(np.random.default_rng(bits), "conv", bits, hw=5, cin=2 * eng.tree, cout=40,
                                        stride=2)
    shp, jobs = lower(node, x, eng, overlay)
    assert all(j.path == HW_IMG2COL for j in jobs)
    run = OverlayDriver(sim_board, overlay).run_layer(node, x, in_t, out_t)
    c = run.counters
    kb = shp.kh * shp.kw * 2
    rows = sum(j.a.shape[0] for j in jobs)
    beats = sum(j.a.shape[0] * kb * -(-j.w.shape[1] // eng.lanes) for j in jobs)
    words_in = sum(pack_job_input(j, eng, in_t.signed).size for j in jobs)
    # IFM reads: the window taps inside the image (padding taps are zero words, not read)
    oh = ow = 3
    inside = sum(1 for oy in range(oh) for ox in range(ow) for r in range(3) for q in range(3)
                 if 0 <= oy * 2 - 1 + r < 5 and 0 <= ox * 2 - 1 + q < 5) * 2
    assert c["CYC_COMPUTE"] == beats
    w_words = sum(kb * eng.lanes * -(-j.w.shape[1] // eng.lanes) for j in jobs)
    assert c["CNT_BEATS_IN"] == words_in == w_words + len(jobs) * 25 * 2  # weights + the 5x5x2-word map per job
    assert c["CNT_BRAM_WRITES"] == words_in + rows * kb
    assert c["CNT_BRAM_READS"] == beats * (eng.lanes + 1) + len(jobs) * inside


@pytest.mark.rtl
def test_hw_img2col_waits_for_a_slow_dma(overlay) -> None:
    """At 2 B/cycle the address generator waits for each word; results stay exact."""
    from codesign.board.sim import SimBoard

    node, x, in_t, out_t = random_layer(np.random.default_rng(21), "conv", 8, hw=9, cin=16, cout=8, stride=2)
    board = SimBoard(overlay, dma_bytes_per_cycle=2.0, dma_latency=200)
    try:
        run = OverlayDriver(board, overlay).run_layer(node, x, in_t, out_t)
    finally:
        board.close()
    assert run.path == HW_IMG2COL
    np.testing.assert_array_equal(run.output, _golden(node, x, out_t))
    assert run.counters["CYC_TRANSFER_IN"] >= 4 * run.counters["CNT_BEATS_IN"]
