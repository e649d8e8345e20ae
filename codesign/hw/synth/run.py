"""Synthesize one top with Yosys ``synth_xilinx`` into ``<out>/<top>/``, cached, and read it back.

Folder of a top: ``filelist.f`` (``# top: NAME`` then the Verilog files), ``src/`` (the copies
Yosys reads: the WebAssembly Yosys sees only its working folder), ``synth.ys``, ``yosys.log``,
``stat.txt`` (``stat -tech xilinx``), ``memories.json`` (the ``$mem_v2`` cells before memory
mapping), ``netlist.json.gz`` (the mapped top), ``cache_key`` and ``meta.json``; then the
analysis writes ``utilization.json``, ``timing.json`` and ``report.md``.

The cache key is the sha256 of the sources (names and text), the script and the Yosys version.
A folder whose ``cache_key`` matches is reused; the key is written last, so an interrupted run
never matches. The analysis always reruns (it is cheap), so a change of the timing constants
needs no new synthesis.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from codesign.hw.device import get_capacity
from codesign.hw.filelock import locked
from codesign.hw.synth.memories import Memory, misplaced, read_memories
from codesign.hw.synth.netlist import load_netlist
from codesign.hw.synth.timing import TimingReport, estimate_timing
from codesign.hw.synth.utilization import (
    DMA_ALLOWANCE,
    Allowance,
    Overrun,
    Utilization,
    check_fit,
    count_utilization,
)
from codesign.hw.synth.yosys import Yosys

NETLIST = "netlist.json.gz"
TIMING_FAMILIES = ("xc7",)  # the delay model is a 7-series one


@dataclass(frozen=True)
class SynthTop:
    """A top module and the Verilog files it is made of (instantiated modules first)."""

    name: str
    sources: tuple[Path, ...]
    kind: str = "core"  # "core" | "overlay" | "test"


def synth_options(family: str, top: str, abc9: bool = True) -> str:
    """The ``synth_xilinx`` options every run uses."""
    return f"-family {family} -flatten -noiopad{' -abc9' if abc9 else ''} -top {top}"


def script_text(top: SynthTop, family: str, abc9: bool = True) -> str:
    """The Yosys script: synthesize in two halves to capture the memories before they are mapped."""
    opts = synth_options(family, top.name, abc9)
    files = " ".join(f"src/{p.name}" for p in top.sources)
    return "\n".join([
        f"# codesign.synth: {top.name} (synth_xilinx {opts})",
        f"read_verilog -defer {files}",
        f"synth_xilinx {opts} -run :map_memory",
        "select t:$mem_v2",
        "write_json -selected memories.json",
        "select -clear",
        f"synth_xilinx {opts} -run map_memory:",
        "tee -q -o stat.txt stat -tech xilinx",
        f"select {top.name}",
        "write_json -selected netlist.json",
        "",
    ])


def cache_key(top: SynthTop, script: str, yosys_version: str) -> str:
    """sha256 of the sources, the script and the Yosys version."""
    h = hashlib.sha256()
    for p in top.sources:
        h.update(p.name.encode() + b"\0" + Path(p).read_bytes() + b"\0")
    h.update(script.encode() + b"\0" + yosys_version.encode())
    return h.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def synthesize(top: SynthTop, family: str, out: Path, yosys: Yosys, force: bool = False,
               abc9: bool = True) -> tuple[Path, bool]:
    """Synthesize ``top`` into ``out/<top>/`` unless the cache matches; returns (folder, cached)."""
    folder = Path(out) / top.name
    script = script_text(top, family, abc9)
    key = cache_key(top, script, yosys.version)
    with locked(Path(out) / f".{top.name}.lock"):
        key_file = folder / "cache_key"
        if not force and key_file.is_file() and key_file.read_text().strip() == key and (folder / NETLIST).is_file():
            return folder, True
        key_file.unlink(missing_ok=True)
        shutil.rmtree(folder / "src", ignore_errors=True)
        (folder / "src").mkdir(parents=True)
        for p in top.sources:
            shutil.copy2(p, folder / "src" / p.name)
        _write_atomic(folder / "filelist.f",
                      "\n".join([f"# top: {top.name}", *(str(Path(p).resolve()) for p in top.sources)]) + "\n")
        (folder / "synth.ys").write_text(script)
        start = time.monotonic()
        yosys.run("synth.ys", cwd=folder)
        seconds = time.monotonic() - start
        with open(folder / "netlist.json", "rb") as src, gzip.open(folder / f".{NETLIST}.tmp", "wb", 6) as dst:
            shutil.copyfileobj(src, dst)
        (folder / f".{NETLIST}.tmp").replace(folder / NETLIST)
        (folder / "netlist.json").unlink()
        meta = {"top": top.name, "yosys": yosys.version, "synth_seconds": round(seconds, 1),
                "script": script, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
        _write_atomic(folder / "meta.json", json.dumps(meta, indent=2) + "\n")
        _write_atomic(key_file, key + "\n")
    return folder, False


@dataclass(frozen=True)
class SynthResult:
    """What one synthesized top measures: resources, memories and the timing estimate."""

    top: str
    device: str
    folder: Path
    yosys_version: str
    synth_seconds: float
    cached: bool
    utilization: Utilization
    memories: tuple[Memory, ...]
    timing: TimingReport | None  # None where the delay model does not cover the family

    def lutram_memories(self) -> list[Memory]:
        """Memories meant to be block RAM that became LUTRAM or flip-flops."""
        return misplaced(list(self.memories))

    def overruns(self, allowance: Allowance = DMA_ALLOWANCE) -> list[Overrun]:
        """Resources over the device capacity minus ``allowance``."""
        return check_fit(self.utilization, self.device, allowance)


def analyse(folder: Path, top: str, device: str, cached: bool, net_ns: float, worst: int = 5) -> SynthResult:
    """Read a synthesized folder back into a :class:`SynthResult`."""
    meta = json.loads((folder / "meta.json").read_text())
    netlist = load_netlist(folder / NETLIST, top)
    util = count_utilization(netlist.cell_counts(), top, device)
    log = (folder / "yosys.log").read_text(errors="replace")
    memories = read_memories(folder / "memories.json", log)
    timing = estimate_timing(netlist, net_ns=net_ns, worst=worst) \
        if get_capacity(device).yosys_family in TIMING_FAMILIES else None
    return SynthResult(top=top, device=device, folder=folder, yosys_version=meta["yosys"],
                       synth_seconds=float(meta["synth_seconds"]), cached=cached, utilization=util,
                       memories=tuple(memories), timing=timing)


def synth_and_analyse(top: SynthTop, device: str, out: Path, yosys: Yosys, net_ns: float,
                      force: bool = False, abc9: bool = True) -> SynthResult:
    """:func:`synthesize` then :func:`analyse` (the one call tests and the CLI make)."""
    folder, cached = synthesize(top, get_capacity(device).yosys_family, out, yosys, force=force, abc9=abc9)
    return analyse(folder, top.name, device, cached, net_ns)


__all__ = ["SynthResult", "SynthTop", "analyse", "cache_key", "script_text", "synth_and_analyse", "synth_spec", "synthesize"]


def synth_spec(spec: object, root: Path, yosys: Yosys, net_ns: float) -> SynthResult:
    """Render one core spec's Verilog under ``root/src`` and synthesize it (cached under ``root``):
    the shared step of the resource calibration, its bench and its test."""
    from codesign.hw.generator import render_verilog

    name = f"{spec.name}_l{spec.lanes}_{spec.mult}"  # type: ignore[attr-defined]
    src = root / "src" / name
    src.mkdir(parents=True, exist_ok=True)
    files = []
    for fname, text in render_verilog(spec).items():  # type: ignore[arg-type]
        (src / fname).write_text(text)
        files.append(src / fname)
    files.sort(key=lambda p: p.stem == spec.name)  # type: ignore[attr-defined]  # instantiated modules first
    return synth_and_analyse(SynthTop(spec.name, tuple(files)), spec.device, root / name, yosys, net_ns)  # type: ignore[attr-defined]
