"""The OQA overlay: one GEMM engine per candidate bit-width, shared post-process, counters.

``OverlaySpec`` is plain data built from the IP generator's per-core ``IPSpec`` s (read back
from ``build/ip/<core>_w<bits>/ip.json``, so the overlay instantiates exactly the generated
cores). :func:`generate_overlay` renders the top-level Verilog
(``hls_templates/overlay/overlay_top.v.j2``) next to the core Verilog (rendered from the
cores' ``ip.json`` specs with the current templates, exactly what ``make ip`` writes) and writes
``overlay.json``, the manifest the simulator build, the driver and the Vivado TCL check
against. The spec's ``rtl_sha256`` hashes those templates, so ``CONFIG_HASH`` changes with them.

Job model (what one ``ap_start`` computes; see ``docs/board.md``): the host streams one
N-tile of weights (``G`` lane groups x ``KB`` k-beats x ``LANES`` words, 64-bit each), then
``M`` im2col rows of ``KB`` activation words. The overlay keeps the weight tile in a weight
bank and double-buffers the activation rows, so row ``m+1`` is received while row ``m`` runs
through the ``G`` lane groups of the selected engine. Accumulators go to the shared
post-process ``POST_LANES`` channels per cycle, and the codes are packed at ``out_bits`` into
64-bit words (element 0 in the LSBs, :mod:`codesign.hw.packing`) on the output stream.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from codesign.errors import CodesignError
from codesign.hw.budget import IFM_DEPTH, ROW_DEPTH, WBANK_DEPTH
from codesign.hw.cores.base import clog2
from codesign.hw.cores.cycle_counter import INC_BITS
from codesign.hw.cores.postproc import MAX_CHANNELS
from codesign.hw.generator import generate_core, load_spec, render_verilog
from codesign.hw.paths import BUILD_DIR, HLS_TEMPLATES
from codesign.hw.regmap import ADDR_WIDTH, REGMAP, as_dict
from codesign.hw.render import render
from codesign.hw.spec import IPSpec, make_spec

OVERLAY_VERSION = 2
OVERLAY_TEMPLATE = "overlay/overlay_top.v.j2"
DEFAULT_IP_DIR = BUILD_DIR / "ip"
# Memory depths (weight bank per lane, row buffer half, IFM buffer): codesign.hw.budget.
WORD_BITS = 64
# Accumulator and code FIFOs between the engines, the post-process and the packer: entries
# (credits) for the dot products / post-process beats in flight. 32 covers the post-process
# latency (22) and the deepest engine's latency, so credits never throttle a full-rate job.
FIFO_DEPTH = 32


def axil_range(addr_width: int = ADDR_WIDTH) -> str:
    """The register file's AXI-lite segment: ``2**addr_width`` bytes, at least Vivado's 4K."""
    size = max(4096, 1 << addr_width)
    return f"{size >> 20}M" if size % (1 << 20) == 0 else f"{size >> 10}K"


# AXI-lite address plan of the block designs (vivado_scripts/overlay/bd_*.tcl): PS7 GP0 maps
# the PL at 0x4000_0000-0x7FFF_FFFF; ZynqMP HPM0_LPD at 0x8000_0000. The overlay's segment is
# its register file's size; the DMA's is AXI DMA 7.1's register space.
ADDRESS_MAPS: dict[str, dict[str, dict[str, str]]] = {
    "xc7z020": {
        "overlay_0/s_axi_control": {"base": "0x43C00000", "range": axil_range()},
        "axi_dma_0/S_AXI_LITE": {"base": "0x40400000", "range": "64K"},
    },
    "zcu104": {
        "overlay_0/s_axi_control": {"base": "0x80000000", "range": axil_range()},
        "axi_dma_0/S_AXI_LITE": {"base": "0x80010000", "range": "64K"},
    },
}
# The views of the cores a bitstream can be built from (make bitstream IMPL=...): the Verilog
# twins, or the RTL Vitis HLS exports behind wrappers with the twins' ports.
IMPLS = ("rtl", "hls")
BOARD_DEVICE = {"pynq_z2": "xc7z020", "zcu104": "zcu104"}
# The cores an overlay instantiates besides the engines and the post-process (one each, 64-bit words).
PART_CORES = ("img2col", "bram_bank", "cycle_counter")
# The RW registers the overlay logic reads (descriptor and post-process window): one flop bank
# each in the register file (overlay/regs.v.j2), wired to the top as r_<name>.
DESC_REGS = ("DESC_M", "DESC_N", "DESC_K", "DESC_IN_HW", "DESC_IN_C", "DESC_KERNEL", "DESC_BITS", "DESC_ACT",
             "DESC_ACT_SIX", "DESC_ACT_THREE", "DESC_HS_MULT", "DESC_HS_SHIFT", "DESC_OUT_HW", "DESC_KB", "DESC_G",
             "DESC_WWORDS", "DESC_CODES", "DESC_CW", "DESC_IFM_WORDS", "DESC_ROW_PITCH", "DESC_X_STEP",
             "DESC_Y_STEP", "DESC_I2C_ADDR0", "DESC_I2C_FLOOR0", "PP_ADDR", "PP_BIAS", "PP_MULT")


class MissingIPError(CodesignError):
    """A requested bit-width has no generated IP core."""


@dataclass(frozen=True)
class EngineSpec:
    """One GEMM engine of the overlay (a generated ``mac_tree_w<bits>`` core)."""

    bits: int
    lanes: int
    tree: int
    module: str
    config_hash: int

    @property
    def peak_macs_per_cycle(self) -> int:
        """Multipliers of the engine: ``lanes * tree``."""
        return self.lanes * self.tree


@dataclass(frozen=True)
class OverlaySpec:
    """Everything that defines one overlay build (its hash is the CONFIG_HASH register)."""

    bits: tuple[int, ...]
    device: str
    engines: tuple[EngineSpec, ...]
    post_module: str
    post_lanes: int
    post_hash: int
    # the generated img2col, bram_bank and cycle_counter cores the top instantiates (of the
    # widest engine's width: they move 64-bit words, so one of each serves every engine)
    img2col_module: str = ""
    bank_module: str = ""
    counter_module: str = ""
    wbank_depth: int = WBANK_DEPTH
    row_depth: int = ROW_DEPTH
    ifm_depth: int = IFM_DEPTH
    version: int = OVERLAY_VERSION
    # sha256 of the overlay's RTL sources (:func:`rtl_digest`): hashed with the rest, so a
    # bitstream built from other templates has another CONFIG_HASH and the driver refuses it.
    rtl_sha256: str = ""
    ip_dir: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        """Module / directory name, e.g. ``overlay_w4_8``."""
        return "overlay_w" + "_".join(str(b) for b in self.bits)

    @property
    def bank_lanes(self) -> int:
        """Lanes of the shared weight bank (the widest engine)."""
        return max(e.lanes for e in self.engines)

    def engine(self, bits: int) -> EngineSpec:
        """The engine for ``bits``; raises MissingIPError when the overlay has none."""
        for e in self.engines:
            if e.bits == bits:
                return e
        raise MissingIPError(
            f"the overlay {self.name} has no {bits}-bit engine (it has {', '.join(map(str, self.bits))}); "
            f"generate it with `make ip BITS={','.join(str(b) for b in sorted({*self.bits, bits}))}`."
        )

    def to_dict(self) -> dict[str, object]:
        """Canonical plain-data view (the hashed part; ``ip_dir`` is not part of it)."""
        d = asdict(self)
        d.pop("ip_dir")
        return d

    def canonical_json(self) -> str:
        """The exact text hashed by :attr:`config_hash`."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def config_hash(self) -> int:
        """32-bit hash of the spec and its RTL sources: the value of the CONFIG_HASH register."""
        return int(hashlib.sha256(self.canonical_json().encode()).hexdigest()[:8], 16)

    @property
    def bits_mask(self) -> int:
        """Value of the BITS_SUPPORTED register."""
        m = 0
        for b in self.bits:
            m |= 1 << b
        return m


def _find_ip(ip_dir: Path, core: str, bits: int, want: list[int]) -> IPSpec:
    root = ip_dir / f"{core}_w{bits}"
    if not (root / "ip.json").is_file() or not (root / "rtl" / f"{core}_w{bits}.v").is_file():
        raise MissingIPError(
            f"no generated {bits}-bit IP ({core}_w{bits}) under {ip_dir}; "
            f"generate it with `make ip BITS={','.join(map(str, want))}` "
            f"(python -m codesign.ip --bits {','.join(map(str, want))} --out {ip_dir})."
        )
    return load_spec(root)


def overlay_spec(bits: list[int], ip_dir: Path | str | None = None) -> OverlaySpec:
    """Build the overlay spec from the generated cores of ``bits`` under ``ip_dir``."""
    from codesign.quant.dyadic import check_bits

    want = sorted({check_bits(b) for b in bits})
    if not want:
        raise MissingIPError("no bit-widths requested; pass e.g. --bits 4,8.")
    root = Path(ip_dir) if ip_dir is not None else DEFAULT_IP_DIR
    engines = []
    for b in want:
        s = _find_ip(root, "mac_tree", b, want)
        engines.append(EngineSpec(b, s.lanes, s.tree, s.name, s.config_hash))
    post = _find_ip(root, "postproc", max(want), want)
    parts = {core: _find_ip(root, core, max(want), want) for core in PART_CORES}
    devices = {load_spec(root / f"mac_tree_w{b}").device for b in want}
    if len(devices) != 1:
        raise MissingIPError(f"the generated cores under {root} target different devices ({sorted(devices)}); "
                             f"regenerate them with one `make ip BITS=... DEVICE=...`.")
    lanes = {e.lanes for e in engines}
    if any(ln % post.post_lanes for ln in lanes):
        raise MissingIPError(f"engine lanes {sorted(lanes)} are not multiples of {post.post_lanes} post-process lanes.")
    too_wide = [e.module for e in engines if e.peak_macs_per_cycle >= 2**INC_BITS]
    if too_wide:
        raise MissingIPError(f"engines {too_wide} issue 2**{INC_BITS} or more multiplies per cycle, beyond the "
                             f"activity counters' increment; plan fewer lanes.")
    core_specs = [load_spec(root / e.module) for e in engines] + [post, *parts.values()]
    planned = {cs.widths for cs in core_specs}
    # one plan for every engine, made for these widths or a superset (a subset of the planned
    # engines uses less of the device, so it fits too)
    if len(planned) != 1 or not set(want) <= set(next(iter(planned))):
        raise MissingIPError(
            f"the cores under {root} were sized for the width set(s) {sorted(planned)}, not {tuple(want)}: "
            f"the engines of one overlay share the device and are planned together. Regenerate them with "
            f"`make ip BITS={','.join(map(str, want))}`."
        )
    return OverlaySpec(
        bits=tuple(want), device=devices.pop(), engines=tuple(engines), post_module=post.name,
        post_lanes=post.post_lanes, post_hash=post.config_hash, img2col_module=parts["img2col"].name,
        bank_module=parts["bram_bank"].name, counter_module=parts["cycle_counter"].name,
        rtl_sha256=rtl_digest(core_specs),
        ip_dir=str(root.resolve()),
    )


def generate_overlay_cores(bits: list[int] | tuple[int, ...], ip_dir: Path | str, device: str = "xc7z020") -> None:
    """Generate the cores an overlay of ``bits`` instantiates, planned together (what ``make ip``
    writes for them): an engine per width, the post-process and the parts at the widest width."""
    widths = tuple(sorted(set(bits)))
    for b in widths:
        generate_core(make_spec("mac_tree", b, device, widths=widths), Path(ip_dir))
    for core in ("postproc", *PART_CORES):
        generate_core(make_spec(core, widths[-1], device, widths=widths), Path(ip_dir))


def template_digest() -> str:
    """sha256 of the overlay templates (the top and the small modules it includes): part of
    the simulator cache key and of :func:`rtl_digest`."""
    h = hashlib.sha256()
    for path in sorted((HLS_TEMPLATES / "overlay").glob("*.v.j2")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def core_verilog(spec: OverlaySpec) -> dict[str, str]:
    """The Verilog of the overlay's cores, rendered from their ``ip.json`` specs with the
    current templates (what ``make ip`` writes to ``rtl/``): ``{file name: text}``."""
    src = Path(spec.ip_dir)
    files: dict[str, str] = {}
    for module in core_modules(spec):
        files.update(render_verilog(load_spec(src / module)))
    return files


def core_modules(spec: OverlaySpec) -> list[str]:
    """Every generated core module the overlay top instantiates."""
    return [e.module for e in spec.engines] + [spec.post_module, spec.img2col_module, spec.bank_module,
                                               spec.counter_module]


def rtl_digest(core_specs: list[IPSpec]) -> str:
    """sha256 of everything the overlay RTL is made of besides the spec: the overlay template,
    the register map and the core Verilog rendered from the current templates.

    Part of :class:`OverlaySpec` and so of ``CONFIG_HASH``: editing any template used by the
    overlay (``overlay_top.v.j2``, ``mac_tree.v.j2``, ``postproc.v.j2``) or the register map
    changes the hash, and the driver refuses a bitstream built before the edit.
    """
    h = hashlib.sha256(template_digest().encode())
    h.update(json.dumps(as_dict(), sort_keys=True).encode())
    for cs in core_specs:
        for fname, text in sorted(render_verilog(cs).items()):
            h.update(fname.encode() + b"\0" + text.encode())
    return h.hexdigest()


def render_overlay(spec: OverlaySpec) -> str:
    """The overlay top-level Verilog."""
    regs = {r.name: r for r in REGMAP}
    return render(
        OVERLAY_TEMPLATE, "v", None, s=spec, regs=regs, regmap=REGMAP, addr_width=ADDR_WIDTH,
        word_bits=WORD_BITS, config_hash=spec.config_hash, fifo_depth=FIFO_DEPTH,
        pp_ch_w=clog2(MAX_CHANNELS), inc_bits=INC_BITS, N_CNT=sum(1 for r in REGMAP if r.width == 64),
        desc_regs=DESC_REGS,
    )


@dataclass(frozen=True)
class GeneratedOverlay:
    """Paths of a rendered overlay."""

    spec: OverlaySpec
    root: Path

    @property
    def top(self) -> Path:
        """The overlay top Verilog."""
        return self.root / "rtl" / f"{self.spec.name}.v"

    @property
    def sources(self) -> list[Path]:
        """Every Verilog file of the overlay, top last."""
        return sorted((self.root / "rtl").glob("*.v"), key=lambda p: (p == self.top, p.name))

    @property
    def manifest(self) -> Path:
        """overlay.json."""
        return self.root / "overlay.json"


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (keeps timestamps for the build caches)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def manifest_dict(spec: OverlaySpec, impl: str = "rtl") -> dict[str, object]:
    """What overlay.json records: spec, hash, view of the cores, ports, AXI address plan, registers."""
    return {
        "name": spec.name,
        "impl": impl,
        "version": spec.version,
        "config_hash": f"0x{spec.config_hash:08x}",
        "spec": spec.to_dict(),
        "top": spec.name,
        "cores": core_modules(spec),
        "ports": {
            "clock": "ap_clk", "reset": "ap_rst_n", "interrupt": "interrupt",
            "s_axi_control": {"protocol": "AXI4LITE", "addr_width": ADDR_WIDTH, "data_width": 32},
            "s_axis": {"protocol": "AXI4STREAM", "data_width": WORD_BITS},
            "m_axis": {"protocol": "AXI4STREAM", "data_width": WORD_BITS},
        },
        # The block design's address plan (PS7 GP0 view); the driver finds the IP by name.
        "address_map": ADDRESS_MAPS.get(spec.device, ADDRESS_MAPS["xc7z020"]),
        "registers": as_dict(),
    }


def generate_overlay(spec: OverlaySpec, out: Path | str | None = None, impl: str = "rtl") -> GeneratedOverlay:
    """Render the overlay top and its cores' Verilog and write overlay.json (naming ``impl``) under ``out``."""
    root = Path(out) if out is not None else Path(spec.ip_dir) / spec.name
    gen = GeneratedOverlay(spec, root)
    for fname, text in core_verilog(spec).items():
        write_if_changed(root / "rtl" / fname, text)
    write_if_changed(gen.top, render_overlay(spec))
    write_if_changed(gen.manifest, json.dumps(manifest_dict(spec, impl), indent=2, sort_keys=True) + "\n")
    return gen


def sim_cache_key(spec: OverlaySpec, harness_digest: str) -> str:
    """Key of a simulator build: spec (its ``rtl_sha256`` covers the core Verilog and the
    templates) + overlay template + harness sources."""
    h = hashlib.sha256(spec.canonical_json().encode())
    h.update(template_digest().encode())
    h.update(harness_digest.encode())
    return h.hexdigest()[:16]


def copy_sources(gen: GeneratedOverlay, dst: Path) -> list[Path]:
    """Copy the overlay's Verilog into ``dst`` (for a simulator or Vivado project)."""
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for p in gen.sources:
        shutil.copy2(p, dst / p.name)
        out.append(dst / p.name)
    return out


__all__ = [
    "DESC_REGS", "IMPLS", "PART_CORES", "EngineSpec", "GeneratedOverlay", "MissingIPError", "OverlaySpec", "axil_range",
    "core_modules", "core_verilog", "generate_overlay", "generate_overlay_cores", "manifest_dict", "overlay_spec", "render_overlay",
    "rtl_digest", "sim_cache_key",
]


if __name__ == "__main__":
    import sys

    from codesign.errors import run_cli
    from codesign.hw.overlay_build import main

    sys.exit(run_cli(main))
