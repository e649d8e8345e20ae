"""Energy per hardware event: the fallback when a board has no power-rail sensors.

``energy = sum(activity counter x energy per event) + static power x time``. The numbers are
order-of-magnitude estimates, not measurements; every entry names its source. ASIC figures
are Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm, 0.9 V); FPGA fabric costs
more than an ASIC for the same operation, by the factor measured by Kuon & Rose, "Measuring
the gap between FPGAs and ASICs", IEEE TCAD 2007 (dynamic power ratio 7-14x; we take 12x).
Multiplier energy scales with the product of the operand widths (array multiplier).
DDR traffic: ~20 pJ/bit for DDR3 interface + array (Micron TN-41-01 power calculator range
15-25 pJ/bit; Horowitz lists 1.3-2.6 nJ per 64-bit DRAM access). Static power: Xilinx Power
Estimator (XPE, UG440) for an xc7z020 PL at 25 C ambient, ~0.12 W; for the ZCU104 PL ~0.6 W.
On ZCU104 the PMBus rails are read instead (``PynqBoard.energy_uj``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

FPGA_OVER_ASIC = 12.0  # Kuon & Rose 2007, dynamic power gap (7-14x)
MUL8_PJ_ASIC = 0.2  # Horowitz 2014: 8-bit integer multiply, 45 nm
ADD32_PJ_ASIC = 0.1  # Horowitz 2014: 32-bit integer add, 45 nm
SRAM64_PJ_ASIC = 10.0  # Horowitz 2014: 64-bit read of an 8 KB SRAM, 45 nm
DDR_PJ_PER_BIT = 20.0  # Micron TN-41-01 (DDR3) range 15-25 pJ/bit
STATIC_W = {"xc7z020": 0.12, "zcu104": 0.6}  # XPE (UG440) PL static power at 25 C


@dataclass(frozen=True)
class EnergyTable:
    """Energy per event in picojoules (and static power in watts) for one bit-width."""

    bits: int
    mac_pj: float  # one issued multiply-accumulate (bits x bits product + adder-tree share)
    bram_read_pj: float  # one 64-bit BRAM word read
    bram_write_pj: float  # one 64-bit BRAM word write
    beat_pj: float  # one 64-bit stream beat moved to/from DDR by the DMA
    static_w: float

    def to_dict(self) -> dict[str, float]:
        """Plain-data view (written into the hardware table's header)."""
        return asdict(self)


def energy_table(bits: int, device: str = "xc7z020") -> EnergyTable:
    """The per-event energies at ``bits``-bit operands on ``device``."""
    mul = MUL8_PJ_ASIC * (bits * bits) / 64.0
    mac = (mul + ADD32_PJ_ASIC) * FPGA_OVER_ASIC
    bram = SRAM64_PJ_ASIC * FPGA_OVER_ASIC / 4.0  # a BRAM36 is a hard block: a third to a quarter of fabric cost
    return EnergyTable(bits, mac, bram, bram, DDR_PJ_PER_BIT * 64, STATIC_W.get(device, 0.12))


def activity_energy_uj(counters: dict[str, int], bits: int, device: str, clock_mhz: float) -> float:
    """Energy of one layer from the activity counters (uJ)."""
    t = energy_table(bits, device)
    dynamic_pj = (
        counters["CNT_MACS"] * t.mac_pj
        + counters["CNT_BRAM_READS"] * t.bram_read_pj
        + counters["CNT_BRAM_WRITES"] * t.bram_write_pj
        + (counters["CNT_BEATS_IN"] + counters["CNT_BEATS_OUT"]) * t.beat_pj
    )
    seconds = counters["CYC_TOTAL"] / (clock_mhz * 1e6)
    return dynamic_pj * 1e-6 + t.static_w * seconds * 1e6


__all__ = ["EnergyTable", "activity_energy_uj", "energy_table"]
