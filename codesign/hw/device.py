"""Device budget profiles: the resources an IP generator may spend on one GEMM engine.

A profile states what the part has (DSP slices, LUTs, BRAM36 blocks) and which fraction of it
one engine may use; the rest is left for the PS interconnect, DMA, post-process and counters.
The DSP port widths drive the packing of several narrow products into one DSP slice
(see ``docs/hw.md``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from codesign.errors import CodesignError


class DeviceBudgetError(CodesignError):
    """A requested IP spec does not fit the device budget, or the device is unknown."""


@dataclass(frozen=True)
class DeviceProfile:
    """Resources of one FPGA part and the share of them one GEMM engine may use."""

    name: str
    dsp: int  # DSP slices on the part
    lut: int  # 6-input LUTs on the part
    bram36: int  # 36 Kb block RAMs on the part
    dsp_a_width: int  # width of the DSP multiplier's wide (A / pre-adder) port
    dsp_b_width: int  # width of the DSP multiplier's narrow (B) port
    dsp_p_width: int  # width of the DSP post-adder / P output
    clock_mhz: float  # fabric clock the cycle figures are converted with
    part: str  # full part name for Vitis HLS / Vivado
    engine_dsp_fraction: float = 0.85  # share of DSPs for MAC multipliers
    engine_lut_fraction: float = 0.40  # share of LUTs for LUT multipliers, adder tree, accumulators
    engine_bram_fraction: float = 0.60  # share of BRAM36 for tile banks

    def to_dict(self) -> dict[str, object]:
        """Plain-data view (for ip.json and the config hash)."""
        return asdict(self)

    @property
    def dsp_budget(self) -> int:
        """DSP slices one engine may use."""
        return int(self.dsp * self.engine_dsp_fraction)

    @property
    def lut_budget(self) -> int:
        """LUTs one engine may use."""
        return int(self.lut * self.engine_lut_fraction)

    @property
    def bram_budget(self) -> int:
        """BRAM36 blocks one engine may use."""
        return int(self.bram36 * self.engine_bram_fraction)


# xc7z020 (PYNQ-Z2): DS190 Zynq-7000 overview, 7-series DSP48E1 (25x18 multiplier, 48-bit P).
XC7Z020 = DeviceProfile(
    name="xc7z020", dsp=220, lut=53_200, bram36=140,
    dsp_a_width=25, dsp_b_width=18, dsp_p_width=48, clock_mhz=100.0,
    part="xc7z020clg400-1",
)
# zcu104 (xczu7ev): DS891 Zynq UltraScale+ overview, DSP48E2 (27x18 multiplier, 48-bit P).
ZCU104 = DeviceProfile(
    name="zcu104", dsp=1_728, lut=230_400, bram36=312,
    dsp_a_width=27, dsp_b_width=18, dsp_p_width=48, clock_mhz=200.0,
    part="xczu7ev-ffvc1156-2-e",
)

DEVICES: dict[str, DeviceProfile] = {d.name: d for d in (XC7Z020, ZCU104)}


def get_device(name: str) -> DeviceProfile:
    """Look a device profile up by name, with a user error naming the known ones."""
    try:
        return DEVICES[name]
    except KeyError:
        known = ", ".join(sorted(DEVICES))
        raise DeviceBudgetError(f"unknown device {name!r}; known device profiles: {known}.") from None
