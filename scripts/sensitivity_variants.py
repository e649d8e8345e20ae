"""Rank agreement of the per-width sensitivity estimators with direct Eq. 5, per zoo model (docs/method.md).

For each model: distil the 32 images (the search's defaults), compute direct Eq. 5 at 2 and 4
bits (the search's PTQ, GPTQ included), the noise-matched MQE (``ohq-mqe``, 4 draws) and the
Fisher estimate (``ohq``) with 1, 2 and 4 probes, with and without the rounding-flip term, and
print Spearman rho against direct Eq. 5 and the seconds of each.

    .venv/bin/python scripts/sensitivity_variants.py resnet_s mobilenetv3_s mobilenetv2_s
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(models: list[str]) -> None:
    """Print one block of rho/seconds rows per model."""
    from codesign.distill import distill
    from codesign.fisher import fisher_sensitivity
    from codesign.models import ZOO, resolve_model
    from codesign.mqe import direct_sensitivity, spearman, width_sensitivity
    from codesign.quant.bitconfig import BitConfig
    from codesign.quant.qgraph import SEARCH_PTQ, calibration_state, quantize_model

    quant = SEARCH_PTQ.copy()
    for model in models:
        g = resolve_model(model)
        x = distill(g, seed=0, progress=False, clip=ZOO[model].input_range).images
        names = [ly.name for ly in g.quantizable()]
        folded, _ranges, grams = calibration_state(g, x, quant["method"], 99.99, names)
        qg8 = quantize_model(g, BitConfig.uniform(g, 8), x, **quant)
        steps = {k: t.scale for k, t in qg8.tensors.items()}
        direct = {low: direct_sensitivity(g, x, x, low_bits=low, progress=False,
                                          quantize=lambda gr, bc, cx: quantize_model(gr, bc, cx, **quant))
                  for low in (2, 4)}
        print(f"## {model} ({len(names)} layers); direct Eq. 5: {direct[2].seconds:.2f} s at 2 bit, "
              f"{direct[4].seconds:.2f} s at 4 bit")
        rows = [("mqe, 4 draws", width_sensitivity(qg8, x, [2, 4], draws=4, clip=quant["weight_clip"]))]
        for flips in (False, True):
            for probes in (1, 2, 4):
                t0 = time.perf_counter()
                fs = fisher_sensitivity(folded, x, [2, 4], probes=probes, clip=quant["weight_clip"], grams=grams,
                                        steps=steps if flips else None)
                fs.seconds = time.perf_counter() - t0
                rows.append((f"fisher, {probes} probe(s){', flips' if flips else ''}", fs))
        for label, ws in rows:
            print(f"{label:28s} rho@2 {spearman(ws.at(2).scores, direct[2].scores):.2f}  "
                  f"rho@4 {spearman(ws.at(4).scores, direct[4].scores):.2f}  {ws.seconds:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:] or ["resnet_s", "mobilenetv3_s", "mobilenetv2_s"])
