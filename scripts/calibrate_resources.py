"""Measure the per-core resource coefficients of codesign.hw.resources with open synthesis.

    python scripts/calibrate_resources.py [--out codesign/hw/data/resources_xc7.json]

Synthesizes (Yosys ``synth_xilinx -family xc7`` through :mod:`codesign.hw.synth`, cached under
``build/synth/calibration``) the MAC tree at every width 2..8, with fabric and with packed DSP
products, at 4 and 8 lanes, the post-process at 4 lanes and the overlay {4,8}; writes the
measured LUT / FF / DSP per configuration. ``codesign.hw.resources`` fits a line in lanes
through the two lane counts; ``tests/synth/test_estimates.py`` checks the estimate against a
synthesis at a lane count that is not part of the fit.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from codesign.hw.spec import make_spec
from codesign.hw.synth.run import synth_and_analyse, synth_spec
from codesign.hw.synth.yosys import find_yosys

CAL_LANES = (4, 8)


def _measure(spec, work: Path, yosys) -> dict[str, float]:
    u = synth_spec(spec, work, yosys, net_ns=0.4).utilization.used
    return {"lut": u["LUT"], "ff": u["FF"], "dsp": u["DSP"], "bram36": u["BRAM36"], "carry": u["CARRY"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("codesign/hw/data/resources_xc7.json"))
    p.add_argument("--work", type=Path, default=Path("build/synth/calibration"))
    args = p.parse_args(argv)
    yosys = find_yosys(None)
    table: dict[str, object] = {"yosys": yosys.version, "device": "xc7z020", "lanes": list(CAL_LANES),
                                "mac_tree": {}, "postproc": {}}
    for bits in range(2, 9):
        for mult in ("lut", "dsp"):
            if mult == "lut" and 2 * bits >= 9:
                continue  # synthesis maps products of 9+ bits to DSP slices: no fabric engine
            for lanes in CAL_LANES:
                spec = replace(make_spec("mac_tree", bits, lanes=4), lanes=lanes, mult=mult)
                table["mac_tree"][f"{bits}_{mult}_{lanes}"] = _measure(spec, args.work, yosys)  # type: ignore[index]
                print(bits, mult, lanes, table["mac_tree"][f"{bits}_{mult}_{lanes}"], flush=True)  # type: ignore[index]
    spec = make_spec("postproc", 8)
    table["postproc"][str(spec.post_lanes)] = _measure(spec, args.work, yosys)  # type: ignore[index]
    # the overlay's own logic: the synthesized overlay {4,8} minus its cores' estimates
    # (codesign.hw.resources.shell documents the structural per-lane part)
    from codesign.hw import resources
    from codesign.synth import collect_tops

    (top,) = collect_tops([4, 8], "xc7z020", "overlay", args.work / "ip", [])
    ov = synth_and_analyse(top, "xc7z020", args.work, yosys, net_ns=0.4).utilization.used
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    resources._table.cache_clear()
    dev = make_spec("mac_tree", 8).device_profile
    cores = (resources.mac_tree(4, 32, "lut", dev) + resources.mac_tree(8, 32, "dsp", dev)
             + resources.postproc(4))
    lut, ff = ov["LUT"] - cores.lut, ov["FF"] - cores.ff
    table["shell"] = {"lut": lut - 100 * 32, "ff": ff - 96 * 32, "lut_per_lane": 100, "ff_per_lane": 96,
                      "measured_total_at_bank_lanes": 32, "measured_lut": lut, "measured_ff": ff}
    args.out.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
