"""IPSpec, device budgets and the lane derivation."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.errors import BitWidthError
from codesign.hw.budget import dsp_products_per_slice
from codesign.hw.device import XC7Z020, ZCU104, DeviceBudgetError
from codesign.hw.plan import plan_overlay
from codesign.hw.spec import make_spec

pytestmark = pytest.mark.unit


def _packing_is_exact(bits: int, k: int, a_width: int, b_width: int, p_width: int) -> bool:
    """Brute-force oracle: every operand combination (random sample above 4 bits) of ``k``
    offset-binary weights packed at 2*bits offsets, times one offset-binary activation, fits
    the signed A/B ports and the P port and gives back each product exactly in its field."""
    rng = np.random.default_rng(bits * 10 + k)
    top = (1 << bits) - 1
    n = 4096
    w = rng.integers(0, top + 1, size=(n, k))
    a = rng.integers(0, top + 1, size=n)
    w[0], a[0] = top, top  # the largest codes
    field = 2 * bits
    packed = sum(w[:, j] << (j * field) for j in range(k))
    p = packed * a
    fits = packed.max() < (1 << (a_width - 1)) and a.max() < (1 << (b_width - 1)) and int(p.max()) < (1 << (p_width - 1))
    fields = np.stack([(p >> (j * field)) & ((1 << field) - 1) for j in range(k)], axis=1)
    return bool(fits and np.array_equal(fields, w * a[:, None]))


def test_dsp_packing_is_exact_and_maximal() -> None:
    """k unsigned products per slice, checked against a brute-force model of the ports."""
    for dev in (XC7Z020, ZCU104):
        for bits in range(2, 9):
            k = dsp_products_per_slice(bits, dev)
            ports = (dev.dsp_a_width, dev.dsp_b_width, dev.dsp_p_width)
            assert _packing_is_exact(bits, k, *ports)
            # maximal: one more field would overflow a port (the top field is the widest)
            assert (k * 2 * bits + bits > dev.dsp_a_width - 1) or ((k + 1) * 2 * bits > dev.dsp_p_width)
    assert dsp_products_per_slice(8, XC7Z020) == 2  # offset-binary fields: an INT8 pair even on DSP48E1


@pytest.mark.parametrize("widths", [(4, 8), (2, 4, 8), (3, 4, 6, 8), (2, 3, 4, 5, 6, 7, 8)])
def test_planned_overlay_fits_and_narrow_widths_are_faster(widths: tuple[int, ...]) -> None:
    """Every engine of a width set comes from one plan that fits the budget, and a narrower
    engine never has fewer MACs per cycle than a wider one."""
    plan = plan_overlay(widths, "xc7z020")
    est, cap = plan.estimate, plan.budget
    assert est.lut <= cap.lut and est.ff <= cap.ff and est.dsp <= cap.dsp and est.bram36 <= cap.bram36
    macs = {b: make_spec("mac_tree", b, widths=widths).lanes * make_spec("mac_tree", b, widths=widths).tree
            for b in widths}
    assert all(macs[a] >= macs[b] for a, b in zip(sorted(widths), sorted(widths)[1:])), macs
    for b in widths:
        spec = make_spec("mac_tree", b, widths=widths)
        assert spec.widths == tuple(sorted(widths)) and spec.tree == 64 // b
        assert spec.lanes & (spec.lanes - 1) == 0 and spec.lanes >= spec.post_lanes


def test_over_budget_and_bad_knobs_are_user_errors() -> None:
    with pytest.raises(DeviceBudgetError, match="does not fit"):
        make_spec("mac_tree", 8, lanes=128)  # 512 DSP slices of INT8 pairs
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


def test_width_set_that_does_not_fit_names_resource_and_largest_subset(monkeypatch) -> None:
    """A budget too small for every engine: the error names the resource, needed vs available,
    and the largest subset of the widths that fits (computed independently here by brute force)."""
    import itertools

    from codesign.hw import plan as plan_mod
    from codesign.hw.resources import Resources

    small = Resources(lut=9_000, ff=101_900, dsp=220, bram36=136)
    monkeypatch.setattr(plan_mod, "budget", lambda device: small)
    plan_mod.plan_overlay.cache_clear()
    widths = (2, 3, 4, 8)
    with pytest.raises(DeviceBudgetError) as err:
        plan_mod.plan_overlay(widths, "xc7z020")
    msg = str(err.value)
    assert "lut" in msg and "9,000" in msg
    fitting = []
    for n in range(len(widths), 0, -1):  # brute force over subsets, widest widths first
        for sub in itertools.combinations(sorted(widths, reverse=True), n):
            mults = [("lut", "dsp") if 2 * b < 9 else ("dsp",) for b in sub]
            for choice in itertools.product(*mults):
                eng = tuple(plan_mod.EnginePlan(b, 4, m) for b, m in zip(sub, choice))
                est = plan_mod.estimate("xc7z020", eng)
                if est.lut <= small.lut and est.ff <= small.ff and est.dsp <= small.dsp and est.bram36 <= small.bram36:
                    fitting = sorted(sub)
                    break
            if fitting:
                break
        if fitting:
            break
    assert f"largest width set that fits: {','.join(map(str, fitting))}" in msg
    plan_mod.plan_overlay.cache_clear()
