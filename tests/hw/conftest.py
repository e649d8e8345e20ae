"""Fixtures of the hardware tests: generated IP shared by every test and worker of a session.

Generation is deterministic and writes a file only when its content changes, and the g++ and
simulator builds are cached by content hash under ``build/`` (file-locked), so each
(core, bits, simulator) is built once and reused by every test, worker and later session.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from codesign.hw import flow
from codesign.hw.generator import GeneratedIP, generate_core
from codesign.hw.paths import BUILD_DIR
from codesign.hw.spec import make_spec

TEST_IP_ROOT = BUILD_DIR / "test_ip"


@pytest.fixture(scope="session")
def generated() -> Callable[[str, int], GeneratedIP]:
    """Factory: the generated IP of (core, bits) on the default device."""
    cache: dict[tuple[str, int], GeneratedIP] = {}

    def get(core: str, bits: int) -> GeneratedIP:
        key = (core, bits)
        if key not in cache:
            cache[key] = generate_core(make_spec(core, bits), TEST_IP_ROOT)
        return cache[key]

    return get


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked vitis_hls when the tool is not on PATH."""
    if flow.vitis_hls_available():
        return
    skip = pytest.mark.skip(reason="vitis_hls not on PATH")
    for item in items:
        if "vitis_hls" in item.keywords:
            item.add_marker(skip)
