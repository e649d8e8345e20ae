"""Random conv/dense layers with consistent integer parameters (test vectors for the overlay)."""

from __future__ import annotations

import numpy as np

from codesign.quant.dyadic import Act, ActParams, qrange, quantize_multipliers
from codesign.quant.qgraph import QNode, QTensor


def random_layer(
    rng: np.random.Generator,
    kind: str,
    bits: int,
    *,
    hw: int = 6,
    cin: int = 8,
    cout: int = 12,
    k: int = 3,
    stride: int = 1,
    pad: int = 1,
    groups: int = 1,
    act: Act = Act.RELU,
    a_signed: bool = False,
    out_bits: int | None = None,
    out_signed: bool = False,
) -> tuple[QNode, np.ndarray, QTensor, QTensor]:
    """A random conv/dense node with consistent integer params, its input codes and tensors."""
    out_bits = out_bits or bits
    wlo, whi = qrange(bits, True, narrow=True)
    if kind == "dense":
        w = rng.integers(wlo, whi + 1, size=(cin, cout))
        x_shape: tuple[int, ...] = (1, cin)
        attrs: dict = {}
    else:
        w = rng.integers(wlo, whi + 1, size=(k, k, cin // groups, cout))
        x_shape = (1, hw, hw, cin)
        attrs = {"kernel": (k, k), "strides": (stride, stride), "padding": (pad, pad, pad, pad), "groups": groups}
    alo, ahi = qrange(bits, a_signed)
    x = rng.integers(alo, ahi + 1, size=x_shape)
    fan_in = int(np.prod(w.shape[:-1]))
    # multipliers that map the accumulator spread onto the output range (so rounding matters)
    reals = rng.uniform(0.5, 2.0, cout) * (2 ** out_bits) / (fan_in * 2 ** (2 * bits - 1)) * 4
    mult, shift = quantize_multipliers(reals)
    bias = rng.integers(-(1 << (2 * bits)), 1 << (2 * bits), size=cout)
    out_scale = 6.0 / (2 ** out_bits - 1) if act in (Act.RELU6, Act.HSWISH) else 0.1
    ap = ActParams.for_scale(act, out_scale)
    attrs.update(w_bits=bits, act=int(ap.act), six=ap.six, three=ap.three, hs_mult=ap.hs_mult, hs_shift=ap.hs_shift)
    node = QNode("layer", kind, ["x"], "y", attrs, {"weight": w, "bias": bias, "mult": mult, "shift": shift})
    in_t = QTensor("x", x_shape[1:], 0.1, bits, a_signed)
    out_t = QTensor("y", (), 0.1, out_bits, out_signed)
    return node, x, in_t, out_t
