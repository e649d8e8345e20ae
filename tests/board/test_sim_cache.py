"""The simulator cache key: a changed spec, core, template or harness means a rebuild."""

from __future__ import annotations

import dataclasses

import pytest

from codesign.board import sim
from codesign.hw import overlay as overlay_mod
from codesign.hw.overlay import MissingIPError, overlay_spec, sim_cache_key


def test_key_follows_spec_template_and_harness(overlay, monkeypatch) -> None:
    base = sim_cache_key(overlay, sim.harness_digest())
    assert sim_cache_key(overlay, sim.harness_digest()) == base
    assert sim_cache_key(dataclasses.replace(overlay, row_depth=512), sim.harness_digest()) != base
    assert sim_cache_key(overlay, "another harness") != base
    monkeypatch.setattr(overlay_mod, "template_digest", lambda: "edited template")
    assert sim_cache_key(overlay, sim.harness_digest()) != base


def test_config_hash_is_the_spec(overlay) -> None:
    assert dataclasses.replace(overlay, ip_dir="/elsewhere").config_hash == overlay.config_hash
    assert dataclasses.replace(overlay, wbank_depth=512).config_hash != overlay.config_hash


def test_bits_without_ip_name_the_make_target(tmp_path) -> None:
    with pytest.raises(MissingIPError, match=r"make ip BITS=4,6"):
        overlay_spec([4, 6], tmp_path)


def test_engine_lookup_names_the_make_target(overlay) -> None:
    with pytest.raises(MissingIPError, match=r"make ip BITS=3,4,8"):
        overlay.engine(3)
