"""The analytic resource estimates (codesign.hw.resources, calibrated at 4 and 8 lanes) are
within 15 % of a Yosys synthesis at a lane count outside the calibration (issue 12).

Each core is synthesized for real here at 16 lanes; DSP slices must match exactly (their
count is fixed by the RTL's packing), LUT and FF within 15 %.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from codesign.hw import resources
from codesign.hw.paths import BUILD_DIR
from codesign.hw.spec import make_spec
from codesign.hw.synth.delays import NET_NS
from codesign.hw.synth.run import synth_spec

from .conftest import needs_yosys

pytestmark = [pytest.mark.synth, pytest.mark.slow, needs_yosys]
TOLERANCE = 0.15


def _synth(spec, yosys):
    return synth_spec(spec, BUILD_DIR / "synth_tests" / "estimates", yosys, NET_NS)


@pytest.mark.parametrize(("bits", "mult"), [(4, "lut"), (8, "dsp")])
def test_mac_tree_estimate_within_15_percent(yosys, bits: int, mult: str) -> None:
    spec = replace(make_spec("mac_tree", bits, lanes=4), lanes=16, mult=mult)
    used = _synth(spec, yosys).utilization.used
    est = resources.mac_tree(bits, 16, mult, spec.device_profile)
    assert est.dsp == used["DSP"]
    for name, e, u in (("LUT", est.lut, used["LUT"]), ("FF", est.ff, used["FF"])):
        assert abs(e - u) <= TOLERANCE * u, f"{spec.name} {name}: estimate {e:.0f}, synthesis {u:.0f}"
