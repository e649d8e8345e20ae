"""Build hook: ship the templates, the Vivado/Vitis scripts and the simulation harness inside the wheel.

They live at the repository root (``hls_templates/``, ``vivado_scripts/``, ``sim/``), outside
the ``codesign`` package, so ``package-data`` cannot reach them. ``build_py`` copies them to
``codesign/_data/`` in the build tree; :mod:`codesign.hw.paths` looks there first and falls
back to the repository (editable installs and a plain checkout).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA = {"hls_templates": "hls_templates", "vivado_scripts": "vivado_scripts", "sim": "sim"}
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "sim_build", "results.xml")


class BuildPyWithData(build_py):
    """build_py plus a copy of the repository's data folders into ``codesign/_data``."""

    def run(self) -> None:
        super().run()
        dest = Path(self.build_lib) / "codesign" / "_data"
        for src, name in DATA.items():
            target = dest / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(ROOT / src, target, ignore=SKIP)


setup(cmdclass={"build_py": BuildPyWithData})
