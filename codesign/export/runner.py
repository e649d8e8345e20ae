"""Run the requested export formats into a run folder; a failing format is a warning, never a lost run.

Each format is one entry of :data:`EXPORTERS` (a registry, not an if-chain). It writes its
files atomically (a folder appears whole or not at all), checks what it wrote against the
integer golden model on the run's images, and returns an :class:`ExportResult`. Any
exception inside a format becomes that result's warning: which format, which layer (when
the exporter can name it) and why. The formats that follow still run.

Imports stay NumPy-only at module level: :func:`run_exports` is called by the search on
every platform, and the exporters import TensorFlow/hls4ml only when they run.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codesign import atomic
from codesign.errors import CodesignError
from codesign.quant.qgraph import QGraph
from codesign.tf_quiet import silenced

FORMATS = ("qkeras", "hls4ml")
DEFAULT_FORMATS = "qkeras,hls4ml"
QUANTIZED_DIR = "quantized"
QKERAS_FILE = "qkeras_model.h5"
HLS4ML_DIR = "hls4ml_prj"
SUMMARY_FILE = "exports.json"
# everything the export stage owns: removed before a new export so no stale format survives
EXPORT_OUTPUTS = (QUANTIZED_DIR, QKERAS_FILE, HLS4ML_DIR, SUMMARY_FILE)
CSIM_MAX_MACS = 60_000_000  # io_parallel C-sim builds above this take many minutes and GBs of RAM in g++
CHECK_IMAGES = 64


class ExportArgumentError(CodesignError):
    """``--export`` names a format that does not exist."""


@dataclass
class ExportResult:
    """What one format produced and how close it is to the golden model."""

    format: str
    files: list[str] = field(default_factory=list)
    fidelity: str = ""
    warning: str = ""  # empty when the format exported
    layer: str = ""  # the layer a failure is about, when known
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the format was written."""
        return not self.warning

    def line(self) -> str:
        """One line for the terminal and report.md."""
        if self.ok:
            return f"{self.format}: {', '.join(self.files)}; {self.fidelity}"
        where = f" at layer {self.layer!r}" if self.layer else ""
        return f"{self.format} export failed{where}: {self.warning}"


def parse_formats(text: str | None) -> list[str]:
    """``'qkeras,hls4ml'`` / ``'hls4ml'`` / ``'none'`` -> the formats, in a fixed order."""
    if text is None:
        text = DEFAULT_FORMATS
    names = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    if names == ["none"]:
        return []
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        raise ExportArgumentError(
            f"--export takes a comma-separated list of {', '.join(FORMATS)}, or none; got {text!r}."
        )
    return [f for f in FORMATS if f in names]


def clear_exports(run_dir: Path) -> list[str]:
    """Remove every export output of a previous run; returns what was removed."""
    return [name for name in EXPORT_OUTPUTS if atomic.remove(run_dir / name)]


def _layer_of(err: BaseException) -> str:
    """The layer an exporter error is about: an exporter note, else the first quoted node name."""
    for note in getattr(err, "__notes__", []):
        m = re.match(r"while exporting node '([^']+)'", note)
        if m:
            return m.group(1)
    m = re.search(r"(?:node|layer) '([^']+)'", str(err))
    return m.group(1) if m else ""


def _why(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if isinstance(err, CodesignError) else f"{type(err).__name__}: {text}"


# ------------------------------------------------------------------------------------------
# formats
# ------------------------------------------------------------------------------------------


def export_qkeras_file(run_dir: Path, qg: QGraph, x: np.ndarray, csim: bool) -> ExportResult:
    """``qkeras_model.h5`` (float in, probabilities out), with its output error against the golden model."""
    from codesign.export.fidelity import qkeras_error
    from codesign.export.qkeras import load_qkeras, to_qkeras

    with atomic.atomic_path(run_dir / QKERAS_FILE) as tmp:
        to_qkeras(qg).save(tmp)
        err = qkeras_error(qg, load_qkeras(tmp), x)  # the file as written, not the object in memory
    return ExportResult("qkeras", [QKERAS_FILE], f"QKeras vs golden: {err.text()}", details={"lsb": asdict(err)})


def export_hls4ml_project(run_dir: Path, qg: QGraph, x: np.ndarray, csim: bool) -> ExportResult:
    """``hls4ml_prj/`` with per-layer precision; C-simulated against the golden model when g++ can build it."""
    from codesign.export.hls4ml import check_supported, to_hls4ml
    from codesign.export.qkeras import export_qkeras
    from codesign.export.readme import hls4ml_readme

    check_supported(qg)
    skip = _csim_skip_reason(qg) if csim else "C-sim not requested"
    codes = qg.quantize_input(x)
    with atomic.atomic_dir(run_dir / HLS4ML_DIR) as tmp:
        hls_model = to_hls4ml(qg, tmp, trace=not skip)
        err = nodes = None
        if not skip:
            from codesign.export.fidelity import hls4ml_csim

            err, nodes, y = hls4ml_csim(qg, hls_model, codes)
            np.savez_compressed(tmp / "csim_check.npz", input_codes=codes, csim_codes=y)
            _remove_build_products(tmp)  # they point at this temporary folder; build_lib.sh rebuilds them
        info = export_qkeras(qg, io="codes", fold_requant=False, hls=True)
        atomic.write_text(tmp / "README.md", hls4ml_readme(qg, info, err, nodes, skip))
    if err is None:
        fidelity = f"hls4ml C-sim not run ({skip})"
    else:
        fidelity = f"hls4ml C-sim vs golden: {err.text()}"
    details = {"csim": asdict(err) if err else None, "csim_skipped": skip,
               "node_max_lsb": nodes or {}}
    return ExportResult("hls4ml", [f"{HLS4ML_DIR}/"], fidelity, details=details)


EXPORTERS: dict[str, Callable[[Path, QGraph, np.ndarray, bool], ExportResult]] = {
    "qkeras": export_qkeras_file,
    "hls4ml": export_hls4ml_project,
}


def tensorflow_available() -> bool:
    """True off-board, where the TF-based formats can run."""
    return importlib.util.find_spec("tensorflow") is not None


def _csim_skip_reason(qg: QGraph) -> str:
    """Why the C-sim check cannot run here ('' when it can)."""
    if shutil.which("g++") is None:
        return "g++ is not on PATH"
    macs = sum(_macs(qg, n) for n in qg.gemm_nodes())
    if macs > CSIM_MAX_MACS:
        return (f"{macs / 1e6:.0f} M MACs exceed the {CSIM_MAX_MACS / 1e6:.0f} M an io_parallel g++ build "
                "handles in reasonable time and memory; build it with the project's build_lib.sh")
    return ""


def _macs(qg: QGraph, n: Any) -> int:
    w = n.params["weight"]
    out = qg.tensors[n.output].shape
    per_output = int(np.prod(w.shape[:-1]))
    return per_output * int(np.prod(out))


def _remove_build_products(prj: Path) -> None:
    for pattern in ("*.o", "firmware/*.so", "*.so"):
        for f in prj.glob(pattern):
            f.unlink()


# ------------------------------------------------------------------------------------------
# the export stage
# ------------------------------------------------------------------------------------------


def run_exports(run_dir: Path, qg: QGraph, formats: list[str], x: np.ndarray, csim: bool = True,
                progress: Callable[[str], None] | None = None) -> list[ExportResult]:
    """Write ``quantized/`` and every requested format; failures become warnings in the results.

    ``x``: float images the exports are checked on (the first :data:`CHECK_IMAGES`).
    Without TensorFlow (on the board) the TF formats are skipped with a note, not a warning.
    """
    from codesign.quant.qserialize import save_qgraph

    clear_exports(run_dir)
    if not formats:
        return []
    with atomic.atomic_dir(run_dir / QUANTIZED_DIR) as tmp:
        save_qgraph(qg, tmp)
    results: list[ExportResult] = []
    x = np.asarray(x[:CHECK_IMAGES])
    tf_missing = not tensorflow_available()
    for fmt in formats:
        if progress:
            progress(fmt)
        t0 = time.perf_counter()
        if tf_missing:
            res = ExportResult(fmt, fidelity="skipped: TensorFlow is not installed (expected on the board); "
                               "rerun the search off-board with the same --out to export")
        else:
            try:
                with silenced(hls4ml_prints=True):  # Keras' .h5 and hls4ml's progress chatter, not our warnings
                    res = EXPORTERS[fmt](run_dir, qg, x, csim)
            except Exception as err:
                res = ExportResult(fmt, warning=_why(err), layer=_layer_of(err))
        res.seconds = time.perf_counter() - t0
        results.append(res)
    summary = {"formats": formats, "results": [asdict(r) for r in results]}
    atomic.write_text(run_dir / SUMMARY_FILE, json.dumps(summary, indent=2, default=str))
    return results


def load_results(run_dir: Path) -> list[ExportResult]:
    """The results recorded by :func:`run_exports` in ``exports.json`` (for a cached stage)."""
    data = json.loads((run_dir / SUMMARY_FILE).read_text())
    return [ExportResult(**r) for r in data["results"]]


__all__ = ["DEFAULT_FORMATS", "EXPORTERS", "EXPORT_OUTPUTS", "FORMATS", "ExportArgumentError", "ExportResult",
           "clear_exports", "load_results", "parse_formats", "run_exports"]
