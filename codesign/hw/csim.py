"""g++ C-simulation of generated HLS C++ (hls4ml style: plain g++ + the bundled ap_types).

Two builds per core, both cached by a hash of their sources and flags:

* ``csim_<name>``: a stand-alone executable built with ``-Wall -Werror
  -fsanitize=address,undefined``; :func:`run_case` feeds it one case through a binary file.
* ``lib<name>.so``: the same C++ as a shared library without sanitizers (ASan cannot be
  dlopen'ed into a non-ASan host such as a simulator), loaded with ctypes by
  :class:`CsimLibrary` -- the cocotb testbenches use it as their second reference.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from codesign.errors import CodesignError
from codesign.hw.cores.base import CsimCase
from codesign.hw.filelock import locked
from codesign.hw.generator import GeneratedIP
from codesign.hw.paths import BUILD_DIR, ap_types_dir

CXX = "g++"
# -Wno-(maybe-)uninitialized: ap_private's default constructor masks the unused bits of a not yet
# initialised word; g++ 12 flags that inside the (third-party) headers once inlined. ASan/UBSan
# still check the running code. HLS pragmas and loop labels (named in synthesis reports) are
# meaningful to Vitis HLS only, hence -Wno-unknown-pragmas / -Wno-unused-label. C++20 because
# ap_private left-shifts negative values, which is undefined before C++20 (UBSan flags it).
# AP_INT_MAX_W: a MAC-tree beat is one AXI4-Stream TDATA word of up to ~2,100 bits; the core
# headers set the same limit (codesign_axis.h) for Vitis HLS.
COMMON_FLAGS = [
    "-std=c++20", "-DAP_INT_MAX_W=4096", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-Wno-maybe-uninitialized", "-Wno-uninitialized",
    "-Wno-unknown-pragmas", "-Wno-unused-label",
]
SANITIZE_FLAGS = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
LIB_FLAGS = ["-O2", "-fPIC", "-shared"]


class CsimError(CodesignError):
    """g++ failed to build a generated core, or its C-sim run failed."""


PCH_HEADERS = ("ap_int.h", "hls_stream.h")


def _precompiled_header(flags: list[str]) -> Path:
    """A precompiled header of the ap_types (the bulk of every compile), one per flag set.

    Every core is compiled as one translation unit that ``-include``s it; g++ picks up the
    ``.gch`` next to it when the flags match exactly.
    """
    from codesign.hw.paths import BUILD_DIR

    key = hashlib.sha256(" ".join([*COMMON_FLAGS, *flags, str(ap_types_dir())]).encode()).hexdigest()[:16]
    pch_dir = BUILD_DIR / "csim_pch" / key
    header = pch_dir / "codesign_ap.h"
    gch = pch_dir / "codesign_ap.h.gch"
    if gch.exists():
        return header
    pch_dir.mkdir(parents=True, exist_ok=True)
    text = "".join(f"#include <{h}>\n" for h in PCH_HEADERS)
    tmp_h = pch_dir / f".codesign_ap.{os.getpid()}.h"
    tmp_h.write_text(text)
    cmd = [CXX, *COMMON_FLAGS, *[f for f in flags if f != "-shared"], "-isystem", str(ap_types_dir()),
           "-x", "c++-header", str(tmp_h), "-o", str(tmp_h) + ".gch"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CsimError(f"g++ failed to precompile the ap_types headers:\n{proc.stderr[-4000:]}")
    if not header.exists():
        header.write_text(text)
    Path(str(tmp_h) + ".gch").replace(gch)
    tmp_h.unlink()
    return header


def _unity_source(gen: GeneratedIP, with_main: bool, out_dir: Path, src_dir: Path) -> Path:
    """One translation unit for the core and its C-sim wrapper (the headers are parsed once)."""
    name = gen.spec.name
    files = [src_dir / f"{name}.cpp", src_dir / f"{name}_csim.cpp"]
    if with_main:
        files.append(src_dir / "csim_main.cpp")
    unity = out_dir / f"unity_{name}{'_main' if with_main else ''}.cpp"
    text = "// Build glue only: the generated core and its C-sim wrapper as one translation unit.\n"
    text += "".join(f'#include "{f}"\n' for f in files)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not unity.exists() or unity.read_text() != text:
        unity.write_text(text)
    return unity


def _compile(gen: GeneratedIP, name: str, flags: list[str], with_main: bool) -> Path:
    """Compile unless a build of identical sources and flags exists (content-addressed cache).

    The cache lives under ``build/csim_cache/<hash>/`` so that `make ip`, the tests and every
    pytest worker share one build per (core, bits, flags).
    """


    if shutil.which(CXX) is None:
        raise CsimError(f"{CXX} is not on PATH; it is needed for the C-sim.")
    sources = sorted(gen.hls_dir.glob("*.cpp")) + sorted(gen.hls_dir.glob("*.h"))
    base = [CXX, *COMMON_FLAGS, *flags, "-isystem", str(ap_types_dir())]
    digest = hashlib.sha256(" ".join([*base, name, str(with_main)]).encode())
    for f in sources:
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    out_dir = BUILD_DIR / "csim_cache" / digest.hexdigest()[:20]
    output = out_dir / name
    if output.exists():
        return output
    out_dir.mkdir(parents=True, exist_ok=True)
    with locked(out_dir / ".lock"):  # parallel workers: one compiles, the others wait and reuse
        if not output.exists():
            _compile_into(gen, out_dir, output, base, flags, with_main)
    return output


def _compile_into(gen: GeneratedIP, out_dir: Path, output: Path, base: list[str], flags: list[str],
                  with_main: bool) -> None:
    """Copy the sources into the cache entry and compile them there."""
    sources = sorted(gen.hls_dir.glob("*.cpp")) + sorted(gen.hls_dir.glob("*.h"))
    # Copy the sources next to the build so that the cached artefact never depends on `out`.
    src_dir = out_dir / "src"
    src_dir.mkdir(parents=True, exist_ok=True)
    for f in sources:
        shutil.copy2(f, src_dir / f.name)
    stub = GeneratedIP(gen.spec, out_dir)
    unity = _unity_source(stub, with_main, out_dir, src_dir)
    pch = _precompiled_header(flags)
    tmp = output.with_name(f"{output.name}.{os.getpid()}.tmp")
    cmd = [*base, f"-I{src_dir}", "-include", str(pch), str(unity), "-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CsimError(f"g++ failed for {gen.spec.name}:\n{proc.stderr[-4000:]}")
    tmp.replace(output)  # atomic: parallel test workers never see a half-written file


def build_executable(gen: GeneratedIP) -> Path:
    """The sanitized stand-alone C-sim executable of ``gen``."""
    return _compile(gen, f"csim_{gen.spec.name}", SANITIZE_FLAGS, with_main=True)


def build_library(gen: GeneratedIP) -> Path:
    """The ctypes-loadable shared library of ``gen``."""
    return _compile(gen, f"lib{gen.spec.name}.so", LIB_FLAGS, with_main=False)


def write_case(path: Path, case: CsimCase) -> None:
    """Binary case file read by ``csim_main.cpp``."""
    hdr = np.array([len(case.cfg), len(case.inputs), len(case.expected)], dtype=np.int64)
    Path(path).write_bytes(hdr.tobytes() + case.cfg.astype(np.int64).tobytes() + case.inputs.astype(np.int64).tobytes())


def run_case(exe: Path, case: CsimCase) -> np.ndarray:
    """Run the sanitized C-sim executable on one case; returns its outputs."""
    with tempfile.TemporaryDirectory() as tmp:
        cin, cout = Path(tmp) / "case.bin", Path(tmp) / "out.bin"
        write_case(cin, case)
        proc = subprocess.run([str(exe), str(cin), str(cout)], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise CsimError(f"C-sim {exe.name} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        return np.frombuffer(cout.read_bytes(), dtype=np.int64).copy()


class CsimLibrary:
    """A generated core's C-sim loaded through ctypes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lib = ctypes.CDLL(str(self.path))
        ll_p = ctypes.POINTER(ctypes.c_longlong)
        self._lib.csim_run.argtypes = [ll_p, ctypes.c_longlong, ll_p, ctypes.c_longlong, ll_p, ctypes.c_longlong]
        self._lib.csim_run.restype = ctypes.c_longlong

    def run(self, cfg: np.ndarray, inputs: np.ndarray, n_out: int) -> np.ndarray:
        """Call ``csim_run``; returns ``n_out`` int64 outputs."""
        c = np.ascontiguousarray(cfg, dtype=np.int64)
        i = np.ascontiguousarray(inputs, dtype=np.int64)
        o = np.zeros(n_out, dtype=np.int64)
        ll_p = ctypes.POINTER(ctypes.c_longlong)
        n = self._lib.csim_run(c.ctypes.data_as(ll_p), len(c), i.ctypes.data_as(ll_p), len(i), o.ctypes.data_as(ll_p), n_out)
        if n != n_out:
            raise CsimError(f"{self.path.name}: csim_run returned {n}, expected {n_out} outputs")
        return o
