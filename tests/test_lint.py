"""Static checks that `make test` runs: ruff (style, imports, bug patterns) and mypy (types).

They run as tests so that CI stays one command (`make test`). Their configuration, with the
reasons for every exception, is in pyproject.toml ([tool.ruff], [tool.mypy]).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed (dev extra)")
def test_ruff_is_clean() -> None:
    proc = _run("ruff", "check", "--no-cache", "codesign", "tests", "bench", "sim")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed (dev extra)")
def test_mypy_is_clean() -> None:
    proc = _run("mypy")  # files, target version and per-module settings: pyproject.toml [tool.mypy]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success" in proc.stdout
