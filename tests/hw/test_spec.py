"""IPSpec, device budgets and the lane derivation."""

from __future__ import annotations

import pytest

from codesign.errors import BitWidthError
from codesign.hw.budget import dsp_products_per_slice, lut_per_multiplier
from codesign.hw.device import XC7Z020, ZCU104, DeviceBudgetError
from codesign.hw.spec import make_spec

pytestmark = pytest.mark.unit


def test_dsp_packing_respects_port_widths() -> None:
    """k products share the A port: (k-1)*(2b+1) + b + 1 <= A, checked independently here."""
    for dev in (XC7Z020, ZCU104):
        for bits in range(2, 9):
            k = dsp_products_per_slice(bits, dev)
            field = 2 * bits + 1
            assert (k - 1) * field + bits + 1 <= dev.dsp_a_width
            assert k * field <= dev.dsp_p_width
            assert k * field + bits + 1 > dev.dsp_a_width  # maximal: one more would not fit
    assert dsp_products_per_slice(8, XC7Z020) == 1  # 25-bit A port: no INT8 pair with the full range
    assert dsp_products_per_slice(8, ZCU104) == 2  # 27-bit A port: the WP486 INT8 pair
    assert dsp_products_per_slice(4, XC7Z020) == 3


def test_lut_multiplier_cost_is_finn_formula() -> None:
    assert lut_per_multiplier(8) == (2 * 3 - 1) * 17
    assert lut_per_multiplier(2) == 1 * 5


@pytest.mark.parametrize("device", ["xc7z020", "zcu104"])
def test_lower_bits_get_more_macs_per_cycle(device: str) -> None:
    macs = {b: make_spec("mac_tree", b, device).lanes * make_spec("mac_tree", b, device).tree for b in range(2, 9)}
    for b in range(2, 8):
        assert macs[b] >= macs[b + 1], macs
    assert macs[4] >= 2 * macs[8]


@pytest.mark.parametrize("bits", range(2, 9))
def test_derived_spec_fits_budget(bits: int) -> None:
    spec = make_spec("mac_tree", bits)
    assert spec.estimate().fits(spec.device_profile)
    assert spec.tree == 64 // bits
    assert 1 <= spec.lanes <= 128 and spec.lanes & (spec.lanes - 1) == 0


def test_over_budget_and_bad_knobs_are_user_errors() -> None:
    with pytest.raises(DeviceBudgetError, match="does not fit"):
        make_spec("mac_tree", 8, lanes=128)
    with pytest.raises(DeviceBudgetError, match="tile_m"):
        make_spec("mac_tree", 4, tile_m=256)
    with pytest.raises(DeviceBudgetError, match="unknown device"):
        make_spec("mac_tree", 4, "xc7a35t")
    with pytest.raises(BitWidthError):
        make_spec("mac_tree", 9)


def test_config_hash_is_stable_and_sensitive() -> None:
    a, b = make_spec("mac_tree", 4), make_spec("mac_tree", 4)
    assert a.config_hash == b.config_hash and 0 <= a.config_hash < 2**32
    assert a.config_hash != make_spec("mac_tree", 5).config_hash
    assert a.config_hash != make_spec("mac_tree", 4, tile_k=64).config_hash
    assert a.config_hash_hex.startswith(f"{a.config_hash:08x}")
