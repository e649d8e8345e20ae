"""The energy-per-event fallback: structure, not numbers."""

from __future__ import annotations

import pytest

from codesign.board.energy import activity_energy_uj, energy_table

ZERO = {"CNT_MACS": 0, "CNT_BRAM_READS": 0, "CNT_BRAM_WRITES": 0, "CNT_BEATS_IN": 0, "CNT_BEATS_OUT": 0,
        "CYC_TOTAL": 0}


def test_narrow_macs_cost_less() -> None:
    assert energy_table(4).mac_pj < energy_table(8).mac_pj
    assert energy_table(8).beat_pj > energy_table(8).bram_read_pj > energy_table(8).mac_pj


@pytest.mark.parametrize("counter", ["CNT_MACS", "CNT_BRAM_READS", "CNT_BRAM_WRITES", "CNT_BEATS_IN", "CYC_TOTAL"])
def test_every_counter_adds_energy(counter: str) -> None:
    base = activity_energy_uj(ZERO, 8, "xc7z020", 100.0)
    assert base == 0.0
    assert activity_energy_uj({**ZERO, counter: 1000}, 8, "xc7z020", 100.0) > base


def test_static_energy_is_power_times_time() -> None:
    e = activity_energy_uj({**ZERO, "CYC_TOTAL": 100_000_000}, 8, "xc7z020", 100.0)  # one second
    assert e == pytest.approx(energy_table(8, "xc7z020").static_w * 1e6)
