"""Render every view of every (core, bit-width) spec into ``<out>/<core>_w<bits>/``.

Layout: ``hls/`` (HLS C++ top, header, C-sim ABI wrapper, C-sim driver, Vitis HLS TCL),
``rtl/`` (Verilog-2005 twin), ``ip.json`` (spec, ports, registers, estimates, config hash);
``<out>/regmap/`` holds the register map views and ``<out>/manifest.json`` lists everything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesign.hw.cores import CORES, Core
from codesign.hw.hls_ports import HLS_MODULE_PREFIX
from codesign.hw.regmap import ADDR_WIDTH, REGMAP, STAGES, as_dict
from codesign.hw.render import render
from codesign.hw.spec import IPSpec, make_spec

MANIFEST_VERSION = 1
AXIS_HEADER = "codesign_axis.h"  # the hls::axis beat type (Vitis's, or a C-sim stand-in)


@dataclass(frozen=True)
class GeneratedIP:
    """Paths of one generated core."""

    spec: IPSpec
    root: Path

    @property
    def hls_dir(self) -> Path:
        """HLS C++ and TCL."""
        return self.root / "hls"

    @property
    def rtl_dir(self) -> Path:
        """Verilog twin."""
        return self.root / "rtl"

    @property
    def verilog(self) -> Path:
        """The Verilog top file."""
        return self.rtl_dir / f"{self.spec.name}.v"

    @property
    def verilog_sources(self) -> list[Path]:
        """Every Verilog file of the core (instantiated cores first, the top last)."""
        others = sorted(p for p in self.rtl_dir.glob("*.v") if p != self.verilog)
        return [*others, self.verilog]

    def core(self) -> Core:
        """The core object of this spec."""
        return CORES[self.spec.core](self.spec)


def _write(path: Path, text: str) -> None:
    """Write only when the content changed (builds stay cached), atomically (parallel workers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def render_regmap(out: Path) -> dict[str, str]:
    """Render the register map into C, Verilog and Python views under ``out``."""
    ctx: dict[str, Any] = {"regs": REGMAP, "addr_width": ADDR_WIDTH}
    files = {
        "regmap.h": render("regmap.h.j2", "c", **ctx),
        "regmap.vh": render("regmap.vh.j2", "v", **ctx),
        "regmap_consts.py": render("regmap_consts.py.j2", "py", **ctx),
    }
    for fname, text in files.items():
        _write(out / fname, text)
    return {k: str(out / k) for k in files}


def _context(spec: IPSpec) -> dict[str, object]:
    """The template context of one spec (shared by every view)."""
    core = CORES[spec.core](spec)
    dev = spec.device_profile
    return {
        "name": spec.name, "core": core, "p": core.params(), "part": dev.part,
        "clock_ns": f"{1000.0 / dev.clock_mhz:g}", "version": f"1.{spec.version}", "stages": STAGES,
        "hls_prefix": HLS_MODULE_PREFIX,
    }


def render_verilog(spec: IPSpec) -> dict[str, str]:
    """The Verilog twin of ``spec`` as ``{file name: text}``: instantiated cores, then the top.

    This is exactly what :func:`generate_core` writes under ``rtl/``; the overlay renders its
    cores through it, so the overlay always matches the current templates.
    """
    core = CORES[spec.core](spec)
    ctx = _context(spec)
    files: dict[str, str] = {}
    for dep in getattr(core, "rtl_dependencies", list)():
        # Instantiated cores are rendered next to the top, from their own spec and template.
        dep_core = CORES[dep.core](dep)
        dep_ctx = {**ctx, "name": dep.name, "core": dep_core, "p": dep_core.params()}
        files[f"{dep.name}.v"] = render(dep_core.verilog_template, "v", dep, **dep_ctx)
        ctx["mac_name"] = dep.name
    files[f"{spec.name}.v"] = render(core.verilog_template, "v", spec, **ctx)
    return files


def generate_core(spec: IPSpec, out: Path) -> GeneratedIP:
    """Render all views of one spec; returns its paths."""
    core = CORES[spec.core](spec)
    gen = GeneratedIP(spec, Path(out).resolve() / spec.name)
    ctx = _context(spec)
    for dep in getattr(core, "rtl_dependencies", list)():
        ctx["mac_name"] = dep.name
    for fname, text in render_verilog(spec).items():
        _write(gen.rtl_dir / fname, text)
    if core.is_hls:
        hdr = getattr(core, "hls_header_template", "")
        if hdr:
            _write(gen.hls_dir / f"{spec.name}.h", render(hdr, "c", spec, **ctx))
        _write(gen.hls_dir / f"{spec.name}.cpp", render(core.hls_top_template, "c", spec, **ctx))
        _write(gen.hls_dir / f"{spec.name}_csim.cpp", render(core.csim_template, "c", spec, **ctx))
        _write(gen.hls_dir / "csim_main.cpp", render("csim_main.cpp.j2", "c", spec, **ctx))
        _write(gen.hls_dir / AXIS_HEADER, render(f"{AXIS_HEADER}.j2", "c", spec, **ctx))
        _write(gen.hls_dir / "run_hls.tcl", render("hls_ip.tcl.j2", "tcl", spec, **ctx))
    info = core.describe()
    info["registers"] = as_dict()
    info["files"] = sorted(str(p.relative_to(gen.root)) for p in gen.root.rglob("*") if p.is_file() and p.suffix in (".v", ".cpp", ".h", ".tcl"))
    _write(gen.root / "ip.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
    return gen


def specs_for(bits_list: list[int], device: str = "xc7z020", cores: list[str] | None = None,
              lanes: int | None = None, tile: int | None = None) -> list[IPSpec]:
    """Every (core, bits) spec for a bit list; raises a user error if one does not fit."""
    names = cores or list(CORES)
    tiles: dict[str, Any] = {} if tile is None else {"tile_m": tile, "tile_n": tile, "tile_k": tile}
    widths = tuple(bits_list)  # engines of one overlay are planned together
    return [make_spec(core, bits, device, widths=widths, lanes=lanes, **tiles) for bits in bits_list for core in names]


def load_spec(ip_dir: Path) -> IPSpec:
    """Read the spec back from a generated ``ip.json``."""
    return IPSpec.from_dict(json.loads((Path(ip_dir) / "ip.json").read_text())["spec"])


def _manifest_entry(spec: IPSpec) -> dict[str, object]:
    return {"name": spec.name, "core": spec.core, "bits": spec.bits, "device": spec.device,
            "config_hash": f"0x{spec.config_hash:08x}", "dir": spec.name}


def earlier_cores(out: Path, gens: list[GeneratedIP]) -> list[dict[str, Any]]:
    """Core folders under ``out`` that this run did not generate (kept: an overlay may use them)."""
    now = {g.spec.name for g in gens}
    found = []
    for ip_json in sorted(Path(out).glob("*/ip.json")):
        if ip_json.parent.name in now:
            continue
        try:
            found.append(_manifest_entry(load_spec(ip_json.parent)))
        except (KeyError, ValueError, TypeError):  # not a core folder we wrote: name it, do not guess
            found.append({"name": ip_json.parent.name, "dir": ip_json.parent.name, "unreadable": True})
    return found


def write_manifest(out: Path, gens: list[GeneratedIP], regmap_files: dict[str, str], extra: dict | None = None) -> Path:
    """Write ``<out>/manifest.json`` listing every generated core."""
    manifest = {
        "version": MANIFEST_VERSION,
        "regmap": {k: str(Path(v).relative_to(out)) for k, v in regmap_files.items()},
        "cores": [_manifest_entry(g.spec) for g in gens],
    }
    manifest.update(extra or {})
    path = out / "manifest.json"
    _write(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path
