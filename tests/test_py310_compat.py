"""The package must run on a PYNQ image's Python 3.10 (``requires-python = ">=3.10"``).

No CPython 3.10 can be installed here from the package registries (Debian 12 has 3.11 only),
so two static checks stand in: the 3.10 grammar (``ast.parse(feature_version=(3, 10))``:
no ``except*``, no PEP 695 generics) and vermin's map of standard-library names to the Python
version that added them (no ``typing.Self``, ``StrEnum``, ``tomllib``, ``datetime.UTC``...).
Ruff's ``target-version = "py310"`` covers the rest of the syntax rules.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for d in ("codesign", "bench", "sim", "tests", "scripts") for p in sorted((ROOT / d).rglob("*.py"))
           if "build" not in p.parts]


def test_every_module_parses_with_the_310_grammar() -> None:
    bad = []
    for p in SOURCES:
        try:
            ast.parse(p.read_text(), filename=str(p), feature_version=(3, 10))
        except SyntaxError as err:
            bad.append(f"{p.relative_to(ROOT)}:{err.lineno}: {err.msg}")
    assert not bad, bad
    assert len(SOURCES) > 50


@pytest.mark.skipif(importlib.util.find_spec("vermin") is None, reason="vermin is not installed (dev extra)")
def test_stdlib_calls_exist_in_310() -> None:
    proc = subprocess.run([sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())", "--target=3.10-", "--no-tips", "--violations",
                           "--eval-annotations", *map(str, SOURCES)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
