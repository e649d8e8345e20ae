"""The default overlay {4,8}, synthesized with Yosys, fits the xc7z020 with the DMA allowance,
keeps its large memories in block RAM and meets the 7 ns register-to-register estimate (issue 12).

Full-overlay synthesis takes about three minutes on one core; the result is cached under
``build/synth`` by the hash of the RTL (shared with ``make synth``), so a rerun takes seconds.
"""

from __future__ import annotations

import pytest

from codesign.hw.paths import BUILD_DIR
from codesign.hw.plan import plan_overlay
from codesign.hw.synth import DMA_ALLOWANCE, synth_and_analyse
from codesign.hw.synth.delays import NET_NS
from codesign.hw.synth.report import LIMIT_NS, write_outputs
from codesign.synth import collect_tops

from .conftest import needs_yosys

pytestmark = [pytest.mark.synth, pytest.mark.slow, needs_yosys]


def test_overlay_fits(yosys) -> None:
    out = BUILD_DIR / "synth"
    (top,) = collect_tops([4, 8], "xc7z020", "overlay", out / "ip", [])
    result = synth_and_analyse(top, "xc7z020", out, yosys, NET_NS)
    write_outputs(result)
    problems = [o.describe() for o in result.overruns(DMA_ALLOWANCE)]
    problems += [f"memory {m.name} is {m.mapped_to}, not block RAM: {m.reason()}" for m in result.lutram_memories()]
    problems += [f"{p.total_ns:.2f} ns > {LIMIT_NS:g} ns: {p.start} -> {p.end}" for p in result.timing.over(LIMIT_NS)]
    assert not problems, f"{top.name} (report: {result.folder / 'report.md'}): " + "; ".join(problems)
    # the plan's estimate of the whole overlay against the synthesized figures
    est = plan_overlay((4, 8), "xc7z020").estimate
    used = result.utilization.used
    assert est.dsp == used["DSP"] and est.bram36 == used["BRAM36"]
    for name, e, u in (("LUT", est.lut, used["LUT"]), ("FF", est.ff, used["FF"])):
        assert abs(e - u) <= 0.15 * u, f"overlay {name}: plan estimate {e:.0f}, synthesis {u:.0f}"
