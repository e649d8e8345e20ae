"""Shared pytest configuration: test helpers on sys.path, tool-dependent markers skipped."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

# Marker -> (is the tool available?, reason shown when skipped)
_TOOLS = {
    "vivado": (lambda: shutil.which("vivado") is not None, "Vivado is not on PATH"),
    "vitis_hls": (lambda: shutil.which("vitis_hls") is not None, "vitis_hls is not on PATH"),
    "board": (lambda: os.environ.get("CODESIGN_BOARD") is not None, "no PYNQ board (set CODESIGN_BOARD)"),
    "tf": (lambda: importlib.util.find_spec("tensorflow") is not None, "TensorFlow is not installed"),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests whose tool marker names a tool this machine does not have."""
    cache: dict[str, bool] = {}
    for item in items:
        for marker, (available, reason) in _TOOLS.items():
            if item.get_closest_marker(marker) is not None:  # not keywords: folder names match too
                if marker not in cache:
                    cache[marker] = available()
                if not cache[marker]:
                    item.add_marker(pytest.mark.skip(reason=reason))
