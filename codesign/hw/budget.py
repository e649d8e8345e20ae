"""Arithmetic facts the device plan builds on: elements per bus word, products per DSP slice
(operand packing), block-RAM geometry. The resource estimates are in
:mod:`codesign.hw.resources` (calibrated on synthesis) and the whole-overlay sizing in
:mod:`codesign.hw.plan`; ``docs/hw.md`` explains both.
"""

from __future__ import annotations

import math

from codesign.hw.device import DeviceProfile

ACC_BITS = 32  # int32 accumulators (see codesign.quant.dyadic)
MAX_TILE = 128  # tiles are at most 128 per side
BRAM36_WIDTH = 64  # data bits of a BRAM36 in 512x72 mode that we use (the 8 parity bits are unused)
BRAM36_DEPTH = 512
# The overlay's memories, in 64-bit words (one definition: codesign.hw.overlay and the device plan).
WBANK_DEPTH = 1024  # per weight-bank lane: 2 BRAM36
ROW_DEPTH = 1024  # per half of the activation row buffer (K up to ROW_DEPTH * tree)
IFM_DEPTH = 4096  # the img2col feature-map buffer: (KH + stride - 1) rows of every 224x224 zoo layer


def elems_per_word(bits: int, bus_width: int = 64) -> int:
    """Elements of ``bits`` bits packed in one bus word: ``floor(bus_width / bits)``."""
    return bus_width // bits


def dsp_products_per_slice(bits: int, device: DeviceProfile) -> int:
    """Narrow products one DSP slice computes at once by operand packing (WP486-style).

    The engines multiply offset-binary (unsigned) codes, so a product is an unsigned
    ``2*bits``-bit field that cannot borrow from its neighbour. ``k`` weights share the
    signed A port at offsets ``F = 2*bits`` (top bit kept 0), the activation sits on the
    signed B port: ``(k-1)*F + bits <= A-1``, ``bits <= B-1`` and ``k*F <= P``. DSP48E1 (A = 25):
    k = 6, 4, 3, 2, 2, 2, 2 for 2..8 bit, so two INT8 products per slice even on 7-series.
    """
    field = 2 * bits
    if bits > device.dsp_b_width - 1:
        return 1
    k = (device.dsp_a_width - 1 - bits) // field + 1
    while k > 1 and k * field > device.dsp_p_width:
        k -= 1
    return max(1, k)


def bram36_for(width_bits: int, depth: int) -> int:
    """BRAM36 blocks for a ``width_bits`` x ``depth`` buffer (512 x 64 data bits per block)."""
    return math.ceil(width_bits / BRAM36_WIDTH) * math.ceil(depth / BRAM36_DEPTH)
