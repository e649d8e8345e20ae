"""The overlay on a second simulator: Icarus Verilog replays what the driver does.

A recording board captures the driver's AXI-lite writes and DMA words for one layer; the
Icarus testbench (``sim/harness/tb_overlay_icarus.v``) replays them into the overlay RTL and
the streamed output is compared with the golden model.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from board.util import random_layer
from codesign.board.driver import REG, OverlayDriver
from codesign.hw.mapping import unpack_output
from codesign.hw.overlay import generate_overlay
from codesign.hw.paths import SIM_DIR
from codesign.quant.dyadic import Act
from codesign.quant.golden import INT_OPS

pytestmark = [pytest.mark.rtl, pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog missing")]


class RecordingBoard:
    """Answers like an idle overlay of ``spec`` and records writes and DMA words."""

    name = "recording"
    device = "xc7z020"
    clock_mhz = 100.0

    def __init__(self, spec) -> None:
        self.spec = spec
        self.writes: list[tuple[int, int]] = []
        self.sent = np.zeros(0, np.uint64)
        self.recv_words = 0

    def read(self, offset: int) -> int:
        if offset == REG["CONFIG_HASH"].offset:
            return self.spec.config_hash
        if offset == REG["BITS_SUPPORTED"].offset:
            return self.spec.bits_mask
        if offset == REG["AP_CTRL"].offset:
            return 0b110  # done + idle
        return 0

    def write(self, offset: int, value: int) -> None:
        self.writes.append((offset, value))

    def allocate(self, shape, dtype=np.uint64):
        return np.zeros(shape, dtype)

    def dma_send(self, buf, nwords=None) -> None:
        self.sent = np.array(buf[:nwords], np.uint64)

    def dma_recv(self, buf, nwords=None) -> None:
        self.recv_words = int(nwords if nwords is not None else buf.size)

    def dma_wait_send(self, timeout_s: float) -> bool:
        return True

    def dma_wait_recv(self, timeout_s: float) -> bool:
        return True

    def energy_uj(self):
        return None

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("bits", "kw"), [
    (8, {"act": Act.RELU6, "cout": 11}),
    (4, {"act": Act.HSWISH, "out_bits": 5, "out_signed": True, "cout": 6, "a_signed": True}),
])
def test_overlay_on_icarus(overlay, tmp_path, bits: int, kw: dict) -> None:
    node, x, in_t, out_t = random_layer(np.random.default_rng(bits), "conv", bits, hw=4, cin=8, **kw)
    rec = RecordingBoard(overlay)
    OverlayDriver(rec, overlay).run_layer(node, x, in_t, out_t)
    start = [i for i, (a, _v) in enumerate(rec.writes) if a == REG["AP_CTRL"].offset]
    assert len(start) == 1, "one job expected"
    kernel = [v for a, v in rec.writes if a == REG["DESC_KERNEL"].offset][-1]
    cin_words_whole = 8 % overlay.engine(bits).tree == 0
    assert bool(kernel >> REG["DESC_KERNEL"].fields[4].lsb & 1) == cin_words_whole  # hardware img2col at 8 bit
    regs = rec.writes[: start[0] + 1]
    (tmp_path / "regs.txt").write_text("".join(f"{a:02x} {v & 0xFFFFFFFF:08x}\n" for a, v in regs))
    (tmp_path / "in.txt").write_text("".join(f"{int(w):016x}\n" for w in rec.sent))
    gen = generate_overlay(overlay, tmp_path / "src")
    vvp = tmp_path / "tb.vvp"
    subprocess.run(["iverilog", "-g2005", f"-DTOP={overlay.name}", "-o", str(vvp),
                    str(SIM_DIR / "harness" / "tb_overlay_icarus.v"), *map(str, gen.sources)],
                   check=True, capture_output=True, text=True)
    run = subprocess.run(["vvp", "-n", str(vvp)], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "TIMEOUT" not in run.stdout
    words = np.array([int(s, 16) for s in (tmp_path / "out.txt").read_text().split()], np.uint64)
    assert words.size == rec.recv_words
    m = x.shape[1] * x.shape[2]
    y = unpack_output(words, m, node.params["weight"].shape[-1], out_t).reshape(1, 4, 4, -1)
    np.testing.assert_array_equal(y, INT_OPS["conv"](node, [x], out_t))
