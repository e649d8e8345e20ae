"""The simulator cache key and CONFIG_HASH: a changed spec, core, template or harness means a
rebuild, and a bitstream built from other templates is refused."""

from __future__ import annotations

import dataclasses
import os
import time

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


def _edited_templates(tmp_path, name: str):
    """A copy of hls_templates/ with ``name`` edited (a comment appended), and a Jinja
    environment that renders from it."""
    import shutil

    import jinja2

    from codesign.hw import render as render_mod
    from codesign.hw.paths import HLS_TEMPLATES

    root = tmp_path / "hls_templates"
    shutil.copytree(HLS_TEMPLATES, root)
    path = root / name
    path.write_text(path.read_text() + "// edited after the bitstream was built\n")
    env = render_mod.environment()
    new_env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(root)]), undefined=env.undefined, trim_blocks=True,
        lstrip_blocks=True, keep_trailing_newline=True,
    )
    new_env.filters.update(env.filters)
    return root, new_env


@pytest.mark.parametrize("template", ["mac_tree.v.j2", "postproc.v.j2", "overlay/overlay_top.v.j2"])
def test_config_hash_covers_every_template(overlay, monkeypatch, tmp_path, template: str) -> None:
    """CONFIG_HASH covers the spec *and* the templates the overlay is rendered from: after an
    edit of any of them the hash changes, so the driver refuses a bitstream built before."""
    from codesign.hw import render as render_mod

    base = overlay_spec(list(overlay.bits), overlay.ip_dir)
    assert base.config_hash == overlay.config_hash and len(base.rtl_sha256) == 64
    root, env = _edited_templates(tmp_path, template)
    monkeypatch.setattr(render_mod, "environment", lambda: env)
    monkeypatch.setattr(overlay_mod, "HLS_TEMPLATES", root)
    edited = overlay_spec(list(overlay.bits), overlay.ip_dir)
    assert edited.rtl_sha256 != base.rtl_sha256
    assert edited.config_hash != base.config_hash
    # the rendered overlay carries the new hash in its CONFIG_HASH register
    assert f"32'h{edited.config_hash:08X}" in overlay_mod.render_overlay(edited)


def test_driver_refuses_a_bitstream_from_older_templates(overlay) -> None:
    """A board reporting the CONFIG_HASH of the same spec rendered from other templates."""
    from codesign.board.base import ConfigHashMismatch
    from codesign.board.driver import OverlayDriver

    class OldBitstream:
        """Answers the identification registers like an overlay built from older templates."""

        name = "old-bitstream"

        def read(self, offset: int) -> int:
            from codesign.board.driver import REG

            old = dataclasses.replace(overlay, rtl_sha256="0" * 64)
            if offset == REG["CONFIG_HASH"].offset:
                return old.config_hash
            return overlay.bits_mask if offset == REG["BITS_SUPPORTED"].offset else 0

    with pytest.raises(ConfigHashMismatch, match="config hash"):
        OverlayDriver(OldBitstream(), overlay)  # type: ignore[arg-type]


def _fake_build(root, name: str, age_s: float, with_lib: bool = True):
    d = root / name
    (d / "obj").mkdir(parents=True)
    if with_lib:
        lib = d / "liboverlay_w4_8.so"
        lib.write_bytes(b"\x7fELF")
        t = time.time() - age_s
        os.utime(lib, (t, t))
    (root / f".{name}.lock").touch()
    return d


def test_prune_keeps_the_most_recently_used_builds(tmp_path) -> None:
    ages = {"overlay_w4_8_a": 10.0, "overlay_w4_8_b": 7200.0, "overlay_w4_8_c": 9000.0, "overlay_w4_8_d": 20.0}
    dirs = {n: _fake_build(tmp_path, n, a) for n, a in ages.items()}
    in_progress = _fake_build(tmp_path, "overlay_w4_8_e.tmp123", 99999.0)
    other_top = _fake_build(tmp_path, "overlay_w2_4_z", 99999.0, with_lib=False)
    removed = sim.prune_builds(tmp_path, "overlay_w4_8", keep=2, min_age_s=3600.0)
    # the two newest stay; of the rest, only those unused for an hour go (with their lock files)
    assert sorted(p.name for p in removed) == ["overlay_w4_8_b", "overlay_w4_8_c"]
    assert dirs["overlay_w4_8_a"].is_dir() and dirs["overlay_w4_8_d"].is_dir()
    assert not dirs["overlay_w4_8_b"].exists() and not (tmp_path / ".overlay_w4_8_b.lock").exists()
    assert in_progress.is_dir() and other_top.is_dir()
    # a recently used build beyond `keep` is spared
    assert sim.prune_builds(tmp_path, "overlay_w4_8", keep=1, min_age_s=3600.0) == []


def test_slim_build_keeps_sources_and_log(tmp_path) -> None:
    obj = tmp_path / "obj"
    obj.mkdir()
    keep = ["Vtop.cpp", "Vtop.h", "Vtop.mk"]
    drop = ["Vtop__pch.h.fast.gch", "Vtop.o", "libverilated.a", "Vtop__ALL.a", "Vtop.d"]
    for n in keep + drop:
        (obj / n).write_text("x")
    sim.slim_build(obj)
    assert sorted(p.name for p in obj.iterdir()) == sorted(keep)
