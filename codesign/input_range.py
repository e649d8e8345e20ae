"""The pixel range (or at least the scale) of a model's inputs, for scale-invariant distillation.

Distillation optimises images in a normalised space ``u`` mapped to the model's input space
(:func:`codesign.distill.distill`): with a known range ``[lo, hi]``, ``x = lo + (hi - lo) * u``
and ``u`` stays in [0, 1]; with only a scale ``s``, ``x = s * u`` unclipped. The initial
noise, the step size and the clip then mean the same thing for a model fed [0, 1] pixels
and one fed raw [0, 255] pixels. Where the range comes from, first hit wins:

1. ``--input-range`` (or a zoo model's training range);
2. the model's own input preprocessing: an ``Affine`` reading the input directly (Keras
   ``Rescaling`` or ``Normalization``). A ``Rescaling(s, o)`` maps the raw range onto [0, 1]
   (``o >= 0``) or [-1, 1] (``o < 0``), so the raw range is its pre-image. A per-channel
   normalisation ``(x - mean) / std`` gets the pre-image of z-scores in [-Z_SPAN, Z_SPAN]:
   a uniform pixel spans |z| <= sqrt(3) ~ 1.73 and natural images have heavier tails;
3. otherwise only a *scale*, estimated from the first BatchNorm: probe images U(0, 1) are
   run to that BN's input, and the ratio of its running std to the probe's std (median over
   channels) is the factor the probe must be scaled by. The layers before the first BN are
   conv/dense (+bias, +ReLU): positively homogeneous, so that std grows linearly with the
   input scale. It gives ~1 on the [0, 1] zoo models and ~255 on a raw-pixel one. The
   search warns loudly, naming ``--input-range``, whenever it falls back to this.

NumPy-only (runs on the board).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.graph.grad import forward
from codesign.graph.ir import Affine, BatchNorm, Graph

Z_SPAN = 2.5
PROBE_IMAGES = 8


@dataclass(frozen=True)
class InputDomain:
    """Where distilled images live: a range (clip), or only a scale; and how it was found."""

    range: tuple[float, float] | None
    scale: float
    source: str  # "argument", "zoo", "Rescaling layer ...", "first BN ...", "none"

    @property
    def estimated(self) -> bool:
        """True when only a BN-statistics estimate was available (the search warns)."""
        return self.source.startswith("estimated")


def from_preprocessing(graph: Graph) -> tuple[tuple[float, float], str] | None:
    """The raw input range implied by an Affine (Rescaling/Normalization) reading the input."""
    inp = graph.inputs[0]
    readers = graph.consumers(inp)
    if len(readers) != 1 or not isinstance(readers[0], Affine):
        return None
    ly = readers[0]
    scale = ly.params["scale"].astype(np.float64)
    offset = ly.params["offset"].astype(np.float64)
    if np.any(scale == 0) or not np.all(np.isfinite(scale)):
        return None
    if ly.role == "rescaling":  # onto [0, 1] or [-1, 1]
        target = (0.0, 1.0) if float(np.min(offset)) >= 0 else (-1.0, 1.0)
        what = f"Rescaling layer {ly.name!r} (maps it onto [{target[0]:g}, {target[1]:g}])"
    elif ly.role == "normalization":  # (x - mean) / std
        target = (-Z_SPAN, Z_SPAN)
        what = f"Normalization layer {ly.name!r} (z-scores within +-{Z_SPAN:g})"
    else:  # x + c, x * c from tf ops: not a statement about the data
        return None
    ends = np.stack([(t - offset) / scale for t in target])  # pre-images, per channel
    lo, hi = float(ends.min()), float(ends.max())
    return (lo, hi), what


def first_bn(graph: Graph) -> BatchNorm | None:
    """The BatchNorm closest to the input (fewest layers before it in graph order)."""
    for ly in graph.layers:
        if isinstance(ly, BatchNorm):
            return ly
    return None


def scale_from_bn(graph: Graph, seed: int = 0) -> float | None:
    """Input scale at which U(0, 1) probe images match the first BN's running std (None: no BN)."""
    bn = first_bn(graph)
    if bn is None:
        return None
    rng = np.random.default_rng(seed)
    probe = rng.uniform(0.0, 1.0, (PROBE_IMAGES, *graph.input_shape)).astype(np.float64)
    z = forward(graph, probe, [bn.inputs[0]], dtype=np.float64).outputs[bn.inputs[0]]
    probe_std = z.reshape(-1, z.shape[-1]).std(axis=0)
    run_std = np.sqrt(bn.params["var"].astype(np.float64) + bn.epsilon)
    ok = probe_std > 1e-12
    if not ok.any():
        return None
    return float(np.median(run_std[ok] / probe_std[ok]))


def resolve(graph: Graph, given: tuple[float, float] | None, given_source: str, seed: int = 0) -> InputDomain:
    """The input domain for distillation: ``given`` if any, else preprocessing, else a BN estimate."""
    if given is not None:
        return InputDomain(given, given[1] - given[0], f"[{given[0]:g}, {given[1]:g}] from {given_source}")
    if given_source == "none":  # --input-range none: unit scale, no clip (the old behaviour)
        return InputDomain(None, 1.0, "none (--input-range none: unit scale, no clipping)")
    pre = from_preprocessing(graph)
    if pre is not None:
        (lo, hi), what = pre
        return InputDomain((lo, hi), hi - lo, f"[{lo:.4g}, {hi:.4g}] inferred from the {what}")
    s = scale_from_bn(graph, seed)
    if s is None or not np.isfinite(s) or s <= 0:
        return InputDomain(None, 1.0, "unknown (no BatchNorm to estimate it from; unit scale assumed)")
    bn = first_bn(graph)
    return InputDomain(None, s, f"estimated: scale {s:.3g} from the statistics of BN {bn.name!r}" if bn else "")
