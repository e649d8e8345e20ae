"""The `make ip` flow as functions: generate, C-simulate, (Vitis HLS), measure cycles.

The CLI (:mod:`codesign.ip`) and the tests call the same functions, so what CI checks is
what a user runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codesign.hw import csim
from codesign.hw.generator import GeneratedIP

CSIM_CASES = 4  # per core: plain and extreme values, twice


@dataclass(frozen=True)
class CsimResult:
    """Outcome of the C-sim of one core against the golden model."""

    name: str
    vectors: int
    passed: bool
    detail: str = ""


def csim_check(gen: GeneratedIP, seed: int = 1, n_vectors: int = 200) -> CsimResult:
    """Build the sanitized C-sim of ``gen`` and compare it with the golden model, bit for bit."""
    core = gen.core()
    exe = csim.build_executable(gen)
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(CSIM_CASES):
        case = core.make_case(rng, n_vectors, extremes=bool(i % 2))
        got = csim.run_case(exe, case)
        total += n_vectors
        if not np.array_equal(got, case.expected):
            bad = int(np.flatnonzero(got != case.expected)[0]) if got.shape == case.expected.shape else -1
            return CsimResult(gen.spec.name, total, False, f"case {i} (seed {seed}): first mismatch at {bad}")
    return CsimResult(gen.spec.name, total, True)


def vitis_hls_available() -> bool:
    """True when ``vitis_hls`` is on PATH."""
    return shutil.which("vitis_hls") is not None


def run_vitis_hls(gen: GeneratedIP, seed: int = 1, steps: str = "csim csynth cosim export") -> Path:
    """Run the generated TCL (csim, csynth, cosim, export_design) with Vitis HLS; returns the IP zip."""
    core = gen.core()
    case = core.make_case(np.random.default_rng(seed), 16)
    csim.write_case(gen.hls_dir / "case.bin", case)
    env = dict(os.environ, CODESIGN_HLS_STEPS=steps)
    log = gen.hls_dir / "vitis_hls.log"
    with open(log, "w") as fh:
        proc = subprocess.run(["vitis_hls", "-f", "run_hls.tcl"], cwd=gen.hls_dir, stdout=fh, stderr=subprocess.STDOUT,
                              env=env)
    if proc.returncode != 0:
        raise csim.CsimError(f"vitis_hls failed for {gen.spec.name}; see {log}")
    return gen.hls_dir / f"{gen.spec.name}_ip.zip"


def measure_cycles(gen: GeneratedIP, simulator: str = "verilator", seed: int = 1) -> dict[str, Any]:
    """Run the core's cocotb cycle-model test; returns ``{"measured", "expected", "workload"}``."""
    from codesign.hw import rtlsim

    results = rtlsim.build_dir_for(gen, simulator) / f"cycles_{os.getpid()}.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.unlink(missing_ok=True)
    env = {"CODESIGN_CYCLES": "1", "CODESIGN_RESULTS": str(results)}
    rtlsim.run_test(gen, simulator, f"tb_{gen.spec.core}", testcase="cycle_model", seed=seed, extra_env=env,
                    tag="cycles")
    data = json.loads(results.read_text())["cycles"]
    results.unlink(missing_ok=True)
    return data
