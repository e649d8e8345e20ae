"""Open synthesis (Yosys ``synth_xilinx``): resource counts, memory placement, timing estimate.

``python -m codesign.synth`` (``make synth``) drives it; see ``docs/hw.md``, "Open synthesis and
the timing estimate". The parts, one job each: :mod:`.yosys` (which Yosys, running it),
:mod:`.run` (script, cache, folder), :mod:`.netlist` (the JSON netlist), :mod:`.utilization`
(counts and the fit check), :mod:`.memories` (BRAM or not), :mod:`.delays` and :mod:`.timing`
(the delay model and the longest-path estimate), :mod:`.report` (the files written).
"""

from codesign.hw.synth.memories import Memory
from codesign.hw.synth.run import SynthResult, SynthTop, synth_and_analyse
from codesign.hw.synth.timing import TimingPath, TimingReport, estimate_timing
from codesign.hw.synth.utilization import (
    DMA_ALLOWANCE,
    NO_ALLOWANCE,
    Allowance,
    Overrun,
    Utilization,
    check_fit,
    count_utilization,
)
from codesign.hw.synth.yosys import Yosys, YosysMissingError, find_yosys, yosys_available

__all__ = [
    "DMA_ALLOWANCE", "NO_ALLOWANCE", "Allowance", "Memory", "Overrun", "SynthResult", "SynthTop", "TimingPath",
    "TimingReport", "Utilization", "Yosys", "YosysMissingError", "check_fit", "count_utilization",
    "estimate_timing", "find_yosys", "synth_and_analyse", "yosys_available",
]
