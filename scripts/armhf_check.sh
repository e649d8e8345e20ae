#!/usr/bin/env bash
# The armhf proof (issue 16): the search's on-board stages in a Debian bookworm armhf root,
# run under qemu-user emulation on this (x86_64) machine.
#
# What it does:
#   1. installs debootstrap, qemu-user-static and binfmt-support when missing (apt-get) and
#      makes sure the kernel runs armhf ELF files through qemu-arm (binfmt_misc);
#   2. builds a bookworm armhf root under build/armhf-root (debootstrap --foreign, then the
#      second stage inside it through qemu-arm), with Debian's python3, python3-numpy,
#      coinor-cbc (a system `cbc`) and GNU time; PuLP is the PyPI wheel pinned by the `board`
#      extra (what `pip install codesign[board]` brings to a PYNQ image), so its bundled CBC
#      (x86/aarch64 only) is present but cannot run. The root is cached: a complete one is
#      reused, a partial one rebuilt;
#   3. needs an OQA hardware table of resnet_s, measured on the host (the Verilator-simulated
#      board does not run in the root); it is made with codesign.oqa when missing;
#   4. copies the package (codesign/, no build outputs) into the root and runs
#      `codesign.search --model resnet_s --hw-table ... --no-export` there, with no TensorFlow:
#      distillation, MQE and the ILP with the fallback solver (--solver auto), then the ILP
#      again with --solver builtin on the same run folder (earlier stages cached);
#   5. writes build/armhf/report.md: guest versions, solver probes, peak RSS and wall time
#      (GNU time inside the root; under qemu-user these are the emulator process's figures).
#
# Usage (root: debootstrap and chroot need it):
#   bash scripts/armhf_check.sh        # or: make armhf-check
# Environment: PY (host Python with codesign's dev deps, default .venv/bin/python),
#   IP_DIR (generated IP for the host OQA run, default build/ip), HW_TABLE (an existing
#   table to use instead), DISTILL_ITERS (default: the search's), MIRROR (Debian mirror).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PY=${PY:-.venv/bin/python}
ROOT=${ARMHF_ROOT:-build/armhf-root}
OUT=build/armhf
SUITE=bookworm
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-numpy,libopenblas0,coinor-cbc,time  # OpenBLAS: the BLAS a board image would use
IP_DIR=${IP_DIR:-build/ip}
HW_TABLE=${HW_TABLE:-$OUT/resnet_s.csv}
DISTILL_ITERS=${DISTILL_ITERS:-}
STAMP=$ROOT/.codesign-armhf-root  # written last: its presence (with the same package list) means complete
GUEST_WORK=/root/codesign-check   # inside the root

log() { echo "armhf-check: $*" >&2; }
die() { echo "armhf-check: $*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap and chroot); run it as root or with sudo."
[ -x "$PY" ] || die "host Python $PY not found; run \`make setup\` or set PY=/path/to/python."

# ---- 1. tools and binfmt ----------------------------------------------------------------------
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -x /usr/bin/qemu-arm-static ] || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get to install them."
  log "installing ${need[*]}"
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
BINFMT=/proc/sys/fs/binfmt_misc
[ -e $BINFMT/register ] || mount -t binfmt_misc binfmt_misc $BINFMT \
  || die "cannot mount binfmt_misc (a container without the privilege?): armhf programs cannot run here."
grep -qx enabled $BINFMT/qemu-arm 2>/dev/null || update-binfmts --enable qemu-arm \
  || die "cannot register qemu-arm with binfmt_misc."

# ---- 2. the armhf root ----------------------------------------------------------------------
PULP_SPEC=$("$PY" - <<'EOF'
import tomllib
board = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["board"]
print(next(d for d in board if d.startswith("pulp")))
EOF
)
WANT="$SUITE armhf $PACKAGES $PULP_SPEC"
mkdir -p "$OUT"
umount_proc() { mountpoint -q "$ROOT/proc" && umount "$ROOT/proc" || true; }
trap umount_proc EXIT

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  log "reusing the armhf root in $ROOT"
else
  umount_proc
  [ -e "$ROOT" ] && { log "removing the incomplete or outdated root $ROOT"; rm -rf --one-file-system "$ROOT"; }
  mkdir -p "$ROOT"
  t0=$SECONDS
  log "debootstrap (first stage, host): $SUITE armhf with $PACKAGES"
  debootstrap --arch=armhf --foreign --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 \
    || die "debootstrap first stage failed; see $OUT/debootstrap.log"
  # binfmt's F flag already pins the interpreter; the copy serves kernels registered without it.
  cp /usr/bin/qemu-arm-static "$ROOT/usr/bin/"
  log "debootstrap (second stage, emulated)"
  chroot "$ROOT" /debootstrap/debootstrap --second-stage >>"$OUT/debootstrap.log" 2>&1 \
    || die "debootstrap second stage failed; see $OUT/debootstrap.log"
  PYVER=$(chroot "$ROOT" python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  # A pure-Python wheel: the host's pip installs it for the guest (no pip or network in the root).
  log "PuLP from PyPI for the guest: $PULP_SPEC"
  "$PY" -m pip install -q --no-deps --only-binary=:all: --platform linux_armv7l --python-version "$PYVER" \
    --implementation py --target "$ROOT/usr/local/lib/python$PYVER/dist-packages" "$PULP_SPEC"
  chroot "$ROOT" apt-get clean
  echo "$WANT" >"$STAMP"
  log "root built in $((SECONDS - t0)) s ($(du -sh --one-file-system "$ROOT" | cut -f1))"
fi

# ---- 3. the hardware table (host) -------------------------------------------------------------
if [ ! -f "$HW_TABLE" ]; then
  [ -f "$IP_DIR/manifest.json" ] || die "no hardware table at $HW_TABLE and no generated IP in $IP_DIR to measure one: run \`make ip\` (or set IP_DIR / HW_TABLE)."
  log "measuring the resnet_s hardware table on the host's simulated board"
  "$PY" -m codesign.oqa --model resnet_s --bits 4,8 --board sim --ip-dir "$IP_DIR" --out "$HW_TABLE" --quiet
fi

# ---- 4. the runtime, and the runs -------------------------------------------------------------
rm -rf "$ROOT/opt/codesign" "$ROOT$GUEST_WORK"
mkdir -p "$ROOT/opt/codesign" "$ROOT$GUEST_WORK"
tar -cf - --exclude=__pycache__ --exclude='*.pyc' --exclude=codesign/_data codesign | tar -C "$ROOT/opt/codesign" -xf -
cp "$HW_TABLE" "$ROOT$GUEST_WORK/resnet_s.csv"
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"

guest() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root PYTHONPATH=/opt/codesign \
  PYTHONDONTWRITEBYTECODE=1 /bin/sh -c "cd $GUEST_WORK && $1"; }

log "guest: $(guest 'uname -m; python3 --version' | tr '\n' ' ')"
guest 'python3 - ' >"$OUT/guest.txt" <<'EOF'
import platform, sys
import numpy, pulp
from codesign import solvers
try:
    import tensorflow  # noqa: F401
    tf = "importable (unexpected)"
except ImportError:
    tf = "absent"
print(f"machine: {platform.machine()} ({platform.architecture()[0]})")
print(f"python: {sys.version.split()[0]}")
print(f"numpy: {numpy.__version__}")
print(f"pulp: {pulp.__version__}")
print(f"tensorflow: {tf}")
for b in ("cbc", "coin"):
    path, why = solvers.probe(b)
    print(f"solver {b}: {'runs: ' + path if path else 'not usable: ' + why}")
print(f"solver auto -> {solvers.resolve('auto')}")
EOF
cat "$OUT/guest.txt" >&2

ITERS=${DISTILL_ITERS:+--distill-iters $DISTILL_ITERS}
SEARCH="python3 -m codesign.search --model resnet_s --hw-table resnet_s.csv --bits 4,8 --ratio 0.5 --no-export --quiet $ITERS"
log "search, --solver auto (emulated; slow)"
guest "/usr/bin/time -v -o time_auto.txt $SEARCH --solver auto --out runs/auto" >"$OUT/search_auto.log" 2>&1 \
  || { cat "$OUT/search_auto.log" >&2; die "the search failed in the armhf root; log in $OUT/search_auto.log"; }
log "search, --solver builtin (earlier stages reused from the auto run's folder)"
guest "cp -a runs/auto runs/builtin && /usr/bin/time -v -o time_builtin.txt $SEARCH --solver builtin --out runs/builtin" \
  >"$OUT/search_builtin.log" 2>&1 \
  || { cat "$OUT/search_builtin.log" >&2; die "the builtin-solver search failed; log in $OUT/search_builtin.log"; }
rm -rf "$OUT/runs" && cp -a "$ROOT$GUEST_WORK/runs" "$ROOT$GUEST_WORK"/time_*.txt "$OUT/"

# ---- 5. report -------------------------------------------------------------------------------
"$PY" - "$OUT" "$SEARCH" <<'EOF'
import json, platform, sys
from pathlib import Path

out, search = Path(sys.argv[1]), sys.argv[2]

def gnu_time(path):
    fields = dict(line.strip().rsplit(": ", 1) for line in path.read_text().splitlines() if ": " in line)
    cpu = float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])
    return (int(fields["Maximum resident set size (kbytes)"]) / 1024,
            f"{fields['Elapsed (wall clock) time (h:mm:ss or m:ss)']} (CPU {cpu:.1f} s, {fields['Percent of CPU this job got']})")

lines = ["# armhf check (issue 16) -- EMULATION: qemu-user (qemu-arm) on " + platform.machine()
         + ", not a Cortex-A9", "", "Guest:", ""]
lines += [f"- {line}" for line in (out / "guest.txt").read_text().splitlines()]
for name in ("auto", "builtin"):
    run = out / "runs" / name
    rss, wall = gnu_time(out / f"time_{name}.txt")
    stages = json.loads((run / "stages.json").read_text())
    sol = json.loads((run / "ilp_solution.json").read_text())
    lines += ["", f"## `{search} --solver {name} --out runs/{name}`", "",
              f"- peak RSS of the emulated process (GNU time, maxrss; includes qemu's own memory): {rss:.0f} MiB",
              f"- wall time (emulated; the machine is shared): {wall}",
              f"- ILP solver that ran: {sol['solver']}; status {sol['status']}; objective {sol['objective']:.6g}; "
              f"size {sol['size_mbit']:.4f} Mbit",
              "- stages (seconds, emulated; a cached stage shows the seconds of the run that made it): "
              + ", ".join(f"{k} {v.get('seconds', 0):.1f}" for k, v in stages.items())]
a, b = (json.loads((out / "runs" / n / "ilp_solution.json").read_text()) for n in ("auto", "builtin"))
lines += ["", f"Same widths from both solvers: {a['bits'] == b['bits']} (objectives {a['objective']:.9g} vs "
          f"{b['objective']:.9g})."]
(out / "report.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
