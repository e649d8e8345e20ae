"""The overlay spec on the board: read from the JSON shipped with the bitstream, not recomputed.

``OverlaySpec.config_hash`` covers the spec *and* a digest of the RTL it was built from, which
:func:`codesign.hw.overlay.overlay_spec` computes by re-rendering the cores' Verilog from the
templates. A board has the bitstream, its ``.hwh`` and the overlay manifest (``overlay.json``,
written by the build flow), not the generated IP tree: the spec comes from the manifest, and
its hash is re-derived from the recorded spec and checked against the recorded hash (a
hand-edited or truncated manifest is refused). The driver then compares it with the
CONFIG_HASH register of the loaded bitstream, as always.
"""

from __future__ import annotations

import json
from pathlib import Path

from codesign.board.base import BoardError
from codesign.hw.overlay import EngineSpec, OverlaySpec


def spec_from_manifest(path: str | Path) -> OverlaySpec:
    """The OverlaySpec recorded in an overlay manifest; BoardError if it is unreadable or inconsistent."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        d = dict(data["spec"])
        d["bits"] = tuple(d["bits"])
        d["engines"] = tuple(EngineSpec(**e) for e in d["engines"])
        spec = OverlaySpec(**d)
        recorded = int(str(data["config_hash"]), 16)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BoardError(f"overlay manifest {p} is not readable ({type(err).__name__}: {err}); copy the "
                         "overlay.json written by the overlay build next to the bitstream.") from None
    if spec.config_hash != recorded:
        raise BoardError(f"overlay manifest {p} records config hash 0x{recorded:08x} but its spec hashes to "
                         f"0x{spec.config_hash:08x}: the file was edited or comes from another build.")
    return spec


def manifest_for(bitstream: Path, name: str) -> Path | None:
    """The manifest shipped with a bitstream: ``<name>.json`` or ``overlay.json`` beside it, or ``<name>/overlay.json``."""
    folder = bitstream if bitstream.is_dir() else bitstream.parent
    stem = bitstream.stem if bitstream.suffix == ".bit" else name
    for cand in (folder / f"{stem}.json", folder / "overlay.json", folder / stem / "overlay.json"):
        if cand.is_file():
            return cand
    return None


def overlay_name(bits: list[int]) -> str:
    """Module name of the overlay with engines ``bits`` (as ``OverlaySpec.name``)."""
    return "overlay_w" + "_".join(str(b) for b in sorted(set(bits)))


__all__ = ["manifest_for", "overlay_name", "spec_from_manifest"]
