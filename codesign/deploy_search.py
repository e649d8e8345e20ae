"""The search's last stage: deploy the chosen config and uniform INT8 on the overlay, report both.

Each config is quantized exactly as the search evaluated it (same calibration images and PTQ),
run image by image on the board (:func:`codesign.deploy.deploy`, bit-exact per layer), and
written to ``<run>/deployed/<config>/``. The run's ``quantized/`` always holds the chosen
config's integer model, so that ``python -m codesign.deploy --run <run>`` deploys the same model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from codesign.errors import CodesignError
from codesign.hwtable import HwTable
from codesign.quant.bitconfig import BitConfig

if TYPE_CHECKING:
    from codesign.quant.qgraph import QuantOptions

DEFAULT_IMAGES = 8  # --deploy-images default: seconds on the sim board for the small models


def deploy_images(val: tuple[np.ndarray, np.ndarray] | None, holdout: np.ndarray, calib: np.ndarray,
                  n: int) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The images to deploy on: labelled validation images, else distilled hold-out, else calibration ones."""
    if val is not None:
        return val[0][:n], val[1][:n], "the first validation images (--val-data)"
    if len(holdout):
        return holdout[:n], None, "distilled hold-out images (no labels: pass --val-data for top-1)"
    return calib[:n], None, "distilled calibration images (no labels: pass --val-data for top-1)"


def deploy_configs(run: Path, graph: Any, table: HwTable, configs: dict[str, BitConfig], calib: np.ndarray,
                   x: np.ndarray, y: np.ndarray | None, source: str, board_kind: str, bits: list[int],
                   ip_dir: str | None, dma_bw: float, dma_latency: int, qkw: QuantOptions,
                   progress: bool = False) -> dict[str, dict[str, Any]]:
    """Deploy every config on one board; returns deploy.json data per config name."""
    from codesign import oqa
    from codesign.deploy import deploy
    from codesign.quant.qgraph import quantize_model

    board = oqa.open_board(board_kind, bits, Path(ip_dir) if ip_dir else None, dma_bw, dma_latency)
    out: dict[str, dict[str, Any]] = {}
    try:
        for i, (name, bc) in enumerate(configs.items()):
            qg = quantize_model(graph, bc, calib, **qkw)
            slug = "ohq" if i == 0 else name.split()[-1].lower()
            res = deploy(qg, board, board.spec, x, y, run / "deployed" / slug, table, source,
                         progress=progress)
            out[name] = res.data
    finally:
        board.close()
    return out


def save_chosen(run: Path, graph: Any, bc: BitConfig, calib: np.ndarray, qkw: QuantOptions) -> Path:
    """``<run>/quantized/``: the chosen config's integer model (what ``codesign.deploy --run`` deploys)."""
    from codesign.quant.qgraph import quantize_model
    from codesign.quant.qserialize import save_qgraph

    return save_qgraph(quantize_model(graph, bc, calib, **qkw), run / "quantized")


def section(deployed: dict[str, dict[str, Any]], ohq: str, ref: str) -> list[str]:
    """Report lines (codesign.deploy_report.search_section)."""
    from codesign.deploy_report import search_section

    return search_section(deployed, ohq, ref)


def skipped(reason: str) -> list[str]:
    """Report lines when the deployment could not run."""
    return ["## Deployed", "", f"Deployment skipped: {reason}", ""]


def board_problem(board_kind: str, bits: list[int], ip_dir: str | None) -> str | None:
    """Why the board cannot be opened (None when it can)."""
    from codesign import validate

    try:
        validate.board_available(board_kind, bits, ip_dir)
    except CodesignError as err:
        return str(err)
    except ImportError as err:  # e.g. the sim overlay needs Jinja2 to render, which a board image may lack
        return f"the {board_kind} board needs a package this machine lacks ({err})"
    return None


__all__ = ["DEFAULT_IMAGES", "board_problem", "deploy_configs", "deploy_images", "save_chosen", "section", "skipped"]
