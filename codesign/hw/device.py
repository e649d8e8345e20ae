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


@dataclass(frozen=True)
class DeviceCapacity:
    """What one part offers to the synthesizer: the denominators of ``codesign.synth``'s fit check.

    Kept apart from :class:`DeviceProfile` so that the figures do not enter the IP config hash.
    ``lut`` counts every slice LUT (logic and memory); ``lutram`` the LUTs that may be memory
    (SLICEM); ``carry`` the carry-chain primitives (one per slice on 7-series, per CLB on
    UltraScale+).
    """

    lut: int
    lutram: int
    ff: int
    dsp: int
    bram36: int
    carry: int
    yosys_family: str  # ``synth_xilinx -family``; selects the primitive names counted


# xc7z020: DS190 (Zynq-7000 SoC Data Sheet: Overview), table "Zynq-7000 SoC Family",
# Z-7020: 53,200 LUTs, 106,400 flip-flops, 140 36 Kb block RAMs (= 280 18 Kb), 220 DSP48E1.
# 13,300 slices of 4 LUTs (UG474, 7 Series CLB User Guide), each with one CARRY4. LUTs usable as
# distributed RAM / shift registers (SLICEM): 17,400, the "LUT as Memory" capacity Vivado reports
# for the part (4,350 SLICEMs; 17,400 x 64 bit = 1.1 Mb of distributed RAM).
XC7Z020_CAPACITY = DeviceCapacity(
    lut=53_200, lutram=17_400, ff=106_400, dsp=220, bram36=140, carry=13_300, yosys_family="xc7",
)
# xczu7ev (ZCU104): DS891 (Zynq UltraScale+ MPSoC Data Sheet: Overview), ZU7EV: 230,400 CLB
# LUTs, 460,800 CLB flip-flops, 312 36 Kb block RAMs (11 Mb), 1,728 DSP48E2; 28,800 CLBs of 8
# LUTs, each with one CARRY8. LUTs usable as memory: 101,760 is the figure Vivado's utilization
# report gives for this part; it was not checked against DS891 here (which quotes Mb).
ZCU104_CAPACITY = DeviceCapacity(
    lut=230_400, lutram=101_760, ff=460_800, dsp=1_728, bram36=312, carry=28_800, yosys_family="xcup",
)
CAPACITIES: dict[str, DeviceCapacity] = {"xc7z020": XC7Z020_CAPACITY, "zcu104": ZCU104_CAPACITY}

# What the block design adds around the overlay (PS7 AXI interconnect / SmartConnect and one
# AXI DMA with its scatter-gather off): reserved before the overlay may use the part (issue 12).
DMA_ALLOWANCE_LUT = 3_500
DMA_ALLOWANCE_FF = 4_500
DMA_ALLOWANCE_BRAM36 = 4


def get_capacity(name: str) -> DeviceCapacity:
    """The capacity of a device by profile name, with a user error naming the known ones."""
    get_device(name)
    return CAPACITIES[name]
