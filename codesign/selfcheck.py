"""The search's self-check: does INT8, calibrated on the distilled images, still follow the float model?

Every search distils a few more images than it calibrates on and keeps them aside. The
uniform INT8 model (calibrated with the search's PTQ on the calibration images) and the float
model classify the held-out images; their top-1 *agreement* is reported. INT8 is nearly
lossless on representative calibration data, so a low agreement means the distilled images
are not representative of the model's inputs (typically: a wrong input range, issue 14's
raw-[0, 255] model agreed on 2.5 % where in-range calibration gave 92 %). Below
``AGREEMENT_WARN`` the terminal and report.md warn. NumPy-only (runs on the board).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from codesign.graph.execute import run_float
from codesign.graph.ir import Graph

if TYPE_CHECKING:
    from codesign.quant.qgraph import QuantOptions

AGREEMENT_WARN = 0.80  # below this fraction of held-out images, warn (see module docstring)
BATCH = 32


def holdout_count(n_images: int) -> int:
    """Distilled images kept aside for the self-check (a quarter of the calibration batch, >= 4)."""
    return max(4, n_images // 4)


def int8_agreement(graph: Graph, calib: np.ndarray, holdout: np.ndarray, qkw: QuantOptions) -> float:
    """Fraction of ``holdout`` images on which uniform INT8 and float agree on the top-1 class."""
    from codesign.quant.bitconfig import BitConfig
    from codesign.quant.golden import GoldenModel
    from codesign.quant.qgraph import quantize_model

    gm = GoldenModel(quantize_model(graph, BitConfig.uniform(graph, 8), calib, **qkw))
    agree = 0
    for i in range(0, len(holdout), BATCH):
        x = holdout[i : i + BATCH]
        agree += int(np.sum(gm.predict(x).argmax(-1) == np.asarray(run_float(graph, x)).argmax(-1)))
    return agree / max(1, len(holdout))


def verdict(agreement: float) -> str | None:
    """The warning text when ``agreement`` is below the threshold, else None."""
    if agreement >= AGREEMENT_WARN:
        return None
    return (f"INT8 agrees with the float model on only {100 * agreement:.1f} % of held-out distilled images "
            f"(threshold {100 * AGREEMENT_WARN:.0f} %): the calibration data is not representative of the "
            "model's inputs. Check --input-range (the pixel range the model was trained on).")
