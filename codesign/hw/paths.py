"""Where templates, scripts and third-party headers live (no environment variables needed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HLS_TEMPLATES = REPO_ROOT / "hls_templates"
VIVADO_SCRIPTS = REPO_ROOT / "vivado_scripts"
SIM_DIR = REPO_ROOT / "sim"
BUILD_DIR = REPO_ROOT / "build"


def ap_types_dir() -> Path:
    """The Apache-2.0 ``ap_types`` headers shipped by the installed hls4ml (not imported)."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("hls4ml is not installed; its ap_types headers are needed for the C-sim")
    path = Path(next(iter(spec.submodule_search_locations))) / "templates" / "vivado" / "ap_types"
    if not (path / "ap_int.h").is_file():
        raise FileNotFoundError(f"ap_types headers not found under {path}")
    return path
