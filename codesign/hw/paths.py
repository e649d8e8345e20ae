"""Where templates, scripts and third-party headers live (no environment variables needed).

An installed wheel carries ``hls_templates/``, ``vivado_scripts/`` and ``sim/`` (the Verilator
harness and the cocotb testbenches) inside the package, under ``codesign/_data/`` (copied by
the build hook in ``setup.py``); a checkout or an editable install uses the repository's
folders. :func:`data_dir` looks in the package first, then in the repository. Build outputs
go to the repository's ``build/`` in a checkout, else to ``./build`` under the working
directory (an installed package must not write into site-packages).
"""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = PACKAGE_DIR.parent
IN_REPO = (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "hls_templates").is_dir()


def data_dir(name: str) -> Path:
    """The data folder ``name`` ('hls_templates', 'vivado_scripts', 'sim'): the packaged copy, else the repository's."""
    packaged = Path(str(resources.files("codesign").joinpath("_data").joinpath(name)))
    if packaged.is_dir():
        return packaged
    return REPO_ROOT / name  # a checkout (if it is missing too, reading a template names the path)


HLS_TEMPLATES = data_dir("hls_templates")
VIVADO_SCRIPTS = data_dir("vivado_scripts")
SIM_DIR = data_dir("sim")
BUILD_DIR = REPO_ROOT / "build" if IN_REPO else Path.cwd() / "build"


def ap_types_dir() -> Path:
    """The Apache-2.0 ``ap_types`` headers shipped by the installed hls4ml (not imported)."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("hls4ml is not installed; its ap_types headers are needed for the C-sim")
    path = Path(next(iter(spec.submodule_search_locations))) / "templates" / "vivado" / "ap_types"
    if not (path / "ap_int.h").is_file():
        raise FileNotFoundError(f"ap_types headers not found under {path}")
    return path
