"""The export stage of the search without TensorFlow: failures are warnings, run folders stay consistent.

The exporters are replaced here (monkeypatched registry entries), so these tests check the
search's handling of exports: report.md whatever happens, the documented exit code, stale
exports removed when the folder is reused for another model, cached stages marked as such.
The real exporters are checked against the golden model in ``test_search_export_e2e.py``.
"""

from __future__ import annotations

import json
import re

import pytest
from ir_models import tiny_mobilenet, tiny_resnet
from test_search_cli import fixture_table

from codesign import search
from codesign.errors import EXIT_USER_ERROR, run_cli
from codesign.export import runner
from codesign.graph.serialize import save_graph

pytestmark = pytest.mark.unit


def _boom(run_dir, qg, x, csim):
    err = RuntimeError("injected converter crash")
    err.add_note("while exporting node 'b2c2'")
    raise err


def _fake_qkeras(run_dir, qg, x, csim):
    (run_dir / runner.QKERAS_FILE).write_text(qg.name)
    return runner.ExportResult("qkeras", [runner.QKERAS_FILE], "fake")


@pytest.fixture()
def models(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "tensorflow_available", lambda: True)
    monkeypatch.setitem(runner.EXPORTERS, "qkeras", _fake_qkeras)
    for name, g in (("a", tiny_resnet()), ("b", tiny_mobilenet())):
        save_graph(g, tmp_path / name)
        fixture_table(g).save(tmp_path / f"{name}.csv")
    return tmp_path


def _run(d, model: str, *extra: str) -> int:
    return run_cli(search.main, ["--quiet", "--model", str(d / model), "--hw-table", str(d / f"{model}.csv"),
                                 "--images", "4", "--distill-iters", "5", "--out", str(d / "run"), *extra])


def test_failing_exporter_is_a_warning_with_its_exit_code(models, monkeypatch, capsys) -> None:
    monkeypatch.setitem(runner.EXPORTERS, "hls4ml", _boom)
    code = _run(models, "a")
    assert code == search.EXIT_EXPORT_WARNINGS == 3
    report = (models / "run" / "report.md").read_text()
    assert "| OHQ (ours) |" in report  # the search result is there
    line = next(ln for ln in report.splitlines() if "hls4ml export failed" in ln)
    assert line.startswith("- WARNING:") and "'b2c2'" in line and "injected converter crash" in line
    assert "qkeras: qkeras_model.h5" in report  # the format after/before a failure still ran
    assert (models / "run" / runner.QKERAS_FILE).is_file()
    assert not (models / "run" / runner.HLS4ML_DIR).exists()
    err = capsys.readouterr().err
    assert "warning: hls4ml export failed at layer 'b2c2'" in " ".join(err.split())


def test_export_formats_argument(models) -> None:
    assert runner.parse_formats("hls4ml, qkeras") == ["qkeras", "hls4ml"]
    assert runner.parse_formats("none") == [] and runner.parse_formats(None) == ["qkeras", "hls4ml"]
    assert _run(models, "a", "--export", "onnx") == EXIT_USER_ERROR
    assert not (models / "run").exists()  # refused before any work
    assert _run(models, "a", "--export", "qkeras", "--no-export") == EXIT_USER_ERROR


def test_reused_folder_drops_the_previous_models_exports(models) -> None:
    run = models / "run"
    assert _run(models, "a", "--export", "qkeras") == 0
    assert (run / runner.QKERAS_FILE).read_text() == "tiny_resnet"
    assert (run / runner.QUANTIZED_DIR / "qgraph.json").is_file()
    # another model, no export: nothing of model a's exports may survive
    assert _run(models, "b", "--export", "none") == 0
    for name in runner.EXPORT_OUTPUTS:
        if name == runner.QUANTIZED_DIR and (run / name).exists():
            # the deploy step writes the chosen config's integer model on every run: model b's
            qg = json.loads((run / name / "qgraph.json").read_text())
            assert "tiny_mobilenet" in json.dumps(qg)[:2000] and "tiny_resnet" not in json.dumps(qg)[:2000]
            continue
        assert not (run / name).exists(), name
    assert "None requested" in (run / "report.md").read_text()
    # exports requested again: written for the model the folder now holds
    assert _run(models, "b", "--export", "qkeras") == 0
    assert (run / runner.QKERAS_FILE).read_text() == "tiny_mobilenet"


def test_report_marks_cached_stages_with_their_original_time(models) -> None:
    assert _run(models, "a", "--export", "qkeras") == 0
    first = (models / "run" / "report.md").read_text()
    assert re.search(r"\| distill \| [\d.]+ \| computed \|", first)
    assert _run(models, "a", "--export", "qkeras") == 0
    second = (models / "run" / "report.md").read_text()
    import json

    stages = json.loads((models / "run" / "stages.json").read_text())
    for st in ("distill", "mqe", "export"):
        want = f"| {st} | {stages[st]['seconds']:.2f} | cached (computed {stages[st]['finished']}) |"
        assert want in second, (st, second)
    assert "| ilp |" in second and "given (--hw-table" in second
