"""The board reads the overlay spec and its config hash from the manifest shipped with the bitstream."""

from __future__ import annotations

import json

import pytest

import codesign.hw.overlay as overlay_mod
from codesign.board.base import BoardError
from codesign.board.manifest import manifest_for, overlay_name, spec_from_manifest
from codesign.hw.overlay import manifest_dict

pytestmark = pytest.mark.unit


def test_manifest_gives_the_spec_and_hash_without_templates(overlay, tmp_path, monkeypatch) -> None:
    path = tmp_path / f"{overlay.name}.json"
    path.write_text(json.dumps(manifest_dict(overlay)))

    def no_templates(*_a, **_k):
        raise AssertionError("the board path must not render or read templates")

    for name in ("overlay_spec", "rtl_digest", "template_digest", "core_verilog", "render"):
        monkeypatch.setattr(overlay_mod, name, no_templates)
    spec = spec_from_manifest(path)
    assert spec.to_dict() == overlay.to_dict() and spec.config_hash == overlay.config_hash
    bit = tmp_path / f"{overlay.name}.bit"
    bit.write_bytes(b"\0")
    assert manifest_for(bit, overlay.name) == path
    assert manifest_for(tmp_path, overlay_name(list(overlay.bits))) == path


def test_edited_or_broken_manifest_is_refused(overlay, tmp_path) -> None:
    data = manifest_dict(overlay)
    data["spec"]["wbank_depth"] += 1  # a spec edited by hand no longer hashes to the recorded value
    path = tmp_path / "overlay.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BoardError, match="edited or comes from another build"):
        spec_from_manifest(path)
    path.write_text("{not json")
    with pytest.raises(BoardError, match="not readable"):
        spec_from_manifest(path)
