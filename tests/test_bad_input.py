"""Issue 14's bad-input table: every row is refused in one paragraph, exit 2, before any work.

The CLIs run in-process through ``run_cli`` (what ``python -m ...`` runs): a non-user error
would propagate out of ``run_cli`` and fail the test, so "no traceback" is checked by the
call returning at all. "Before any work" is checked by what is (not) on disk afterwards:
no ``distill/`` folder, an untouched sentinel file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ir_models import fixture_table, saved_tiny_resnet, tiny_resnet

from codesign import ip, oqa, search
from codesign.errors import EXIT_USER_ERROR, run_cli
from codesign.graph.serialize import save_graph

pytestmark = pytest.mark.unit
UNWRITABLE = "/proc/codesign_no_such_dir/out"  # /proc refuses new entries, even for root
SENTINEL = "previous run's file\n"


def refused(main, argv: list[str], capsys, *needles: str) -> str:
    """Run a CLI main; it must exit 2 with one 'error:' paragraph containing every needle."""
    code = run_cli(main, argv)
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USER_ERROR, err
    assert err.startswith("error:") and "\n\n" not in err and "Traceback" not in err, err
    flat = " ".join(err.split())
    for n in needles:
        assert n in flat, flat
    return flat


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    return saved_tiny_resnet(d), d


def _run_folder(d: Path, name: str) -> Path:
    """A run folder holding a previous run's bitconfig.json (must survive a refused run)."""
    out = d / name
    out.mkdir(exist_ok=True)
    (out / "bitconfig.json").write_text(SENTINEL)
    return out


def _untouched(out: Path) -> None:
    assert (out / "bitconfig.json").read_text() == SENTINEL
    assert not (out / "distill").exists() and not (out / "stages.json").exists()


def _search_argv(d: Path, out: Path, *extra: str) -> list[str]:
    return ["--model", str(d / "ir"), "--hw-table", str(d / "hw.csv"), "--quiet", "--no-export",
            "--images", "4", "--distill-iters", "3", "--out", str(out), *extra]


# ---- --out -----------------------------------------------------------------------------------


def test_out_existing_file(tiny, capsys) -> None:
    _g, d = tiny
    f = d / "a_file"
    f.write_text(SENTINEL)
    refused(search.main, _search_argv(d, f), capsys, "a_file", "existing file")
    refused(ip.main, ["--bits", "8", "--out", str(f), "--no-csim", "--no-rtl"], capsys, "existing file")
    assert f.read_text() == SENTINEL


def test_out_directory_where_a_file_is_expected(tiny, capsys) -> None:
    _g, d = tiny
    refused(oqa.main, ["--model", str(d / "ir"), "--out", str(d)], capsys, "is a directory")
    # the side files <out>.detail.csv / <out>.ps.csv are checked too
    (d / "t.detail.csv").mkdir()
    refused(oqa.main, ["--model", str(d / "ir"), "--out", str(d / "t.csv")], capsys, "t.detail.csv", "is a directory")


def test_out_unwritable(tiny, capsys) -> None:
    _g, d = tiny
    refused(search.main, _search_argv(d, Path(UNWRITABLE)), capsys, "not writable")
    refused(oqa.main, ["--model", str(d / "ir"), "--out", UNWRITABLE + ".csv"], capsys, "not writable")
    refused(ip.main, ["--bits", "8", "--out", UNWRITABLE], capsys, "not writable")


# ---- search arguments --------------------------------------------------------------------------


def test_pin_outside_candidates_writes_nothing(tiny, capsys) -> None:
    _g, d = tiny
    out = _run_folder(d, "r_pin")
    refused(search.main, _search_argv(d, out, "--pin-first-last", "6", "--bits", "4,8"), capsys,
            "--pin-first-last 6", "4,8")
    _untouched(out)


@pytest.mark.parametrize("flag,value,needle", [
    ("--ratio", "1.5", "--ratio"), ("--ratio", "-0.1", "--ratio"), ("--ratio", "nan", "--ratio"),
    ("--size-limit", "0", "--size-limit"), ("--latency-limit", "-5", "--latency-limit"),
    ("--dma-bw", "0", "--dma-bw"), ("--input-shape", "32,32", "--input-shape"),
])
def test_bad_numbers_before_distillation(tiny, capsys, flag, value, needle) -> None:
    _g, d = tiny
    out = _run_folder(d, "r_num")
    refused(search.main, _search_argv(d, out, flag, value), capsys, needle)
    _untouched(out)


def test_nan_weight(tiny, capsys, tmp_path) -> None:
    g = tiny_resnet()
    conv = g.quantizable()[1]
    conv.params["kernel"][0, 0, 0, 0] = np.nan
    g.quantizable()[2].params["kernel"][0, 0, 0, 0] = np.inf
    save_graph(g, tmp_path / "ir")
    fixture_table(g).save(tmp_path / "hw.csv")
    out = _run_folder(tmp_path, "run")
    refused(search.main, _search_argv(tmp_path, out), capsys, "NaN or infinite", f"{conv.name}.kernel")
    _untouched(out)
    refused(oqa.main, ["--model", str(tmp_path / "ir"), "--out", str(tmp_path / "hw2.csv")], capsys, "NaN")


def _labelled(d: Path, name: str, y: np.ndarray) -> Path:
    x = np.random.default_rng(0).uniform(0, 1, (len(y), *tiny_resnet().input_shape)).astype(np.float32)
    p = d / name
    np.savez(p, x=x, y=y)
    return p


def test_val_labels_outside_classes(tiny, capsys) -> None:
    g, d = tiny
    classes = g[g.outputs[0]].output_shape[-1]
    out = _run_folder(d, "r_val")
    bad = _labelled(d, "bad_val.npz", np.array([0, 1, classes, classes + 3]))
    refused(search.main, _search_argv(d, out, "--val-data", str(bad)), capsys,
            f"outside the model's {classes} classes", str(classes), str(classes + 3))
    _untouched(out)


def test_missing_ip_refused_before_distillation(tiny, capsys) -> None:
    _g, d = tiny
    out = _run_folder(d, "r_ip")
    argv = [a for a in _search_argv(d, out) if a not in ("--hw-table", str(d / "hw.csv"))]
    empty = d / "no_ip"
    empty.mkdir(exist_ok=True)
    refused(search.main, [*argv, "--ip-dir", str(empty)], capsys, "no_ip")
    _untouched(out)


# ---- hardware tables ---------------------------------------------------------------------------


def _edited_table(d: Path, name: str, edit) -> Path:
    lines = (d / "hw.csv").read_text().splitlines()
    p = d / name
    p.write_text("\n".join(edit(lines)) + "\n")
    return p


def _data_line(lines: list[str]) -> int:
    """Index of the first data row (after comments and the header)."""
    return next(i for i, ln in enumerate(lines) if ln and not ln.startswith("#")) + 1


def _set_field(line: str, column: int, value: str) -> str:
    parts = line.split(",")
    parts[column] = value
    return ",".join(parts)


COLS = ["layer", "bits", "cycles_transfer_in", "cycles_compute", "cycles_postproc", "cycles_writeback",
        "cycles_total"]


@pytest.mark.parametrize("value", ["-100", "0"])
def test_hw_table_nonpositive_cycles(tiny, capsys, value) -> None:
    _g, d = tiny

    def edit(lines):
        i = _data_line(lines) + 2
        lines[i] = _set_field(lines[i], COLS.index("cycles_total"), value)
        return lines

    t = _edited_table(d, f"neg{value}.csv", edit)
    line_no = _data_line((d / "hw.csv").read_text().splitlines()) + 3  # 1-based
    out = _run_folder(d, "r_neg")
    refused(search.main, [*_search_argv(d, out)[:-2], "--hw-table", str(t), "--out", str(out)], capsys,
            f"line {line_no}", "cycles_total")
    _untouched(out)


def test_hw_table_duplicate_row(tiny, capsys) -> None:
    _g, d = tiny

    def edit(lines):
        i = _data_line(lines)
        return [*lines, lines[i]]

    t = _edited_table(d, "dup.csv", edit)
    n = len((d / "hw.csv").read_text().splitlines())
    first = _data_line((d / "hw.csv").read_text().splitlines()) + 1
    refused(search.main, _search_argv(d, d / "r_dup", "--hw-table", str(t)), capsys,
            f"line {n + 1}", f"(line {first})")


def test_hw_table_header_names_another_model(tiny, capsys) -> None:
    g, d = tiny
    t = _edited_table(d, "other.csv", lambda lines: ["# model: resnet_s", *lines])
    refused(search.main, _search_argv(d, d / "r_other", "--hw-table", str(t)), capsys, "resnet_s", repr(g.name))


def test_hw_table_parse_error_names_line(tiny, capsys) -> None:
    _g, d = tiny

    def edit(lines):
        i = _data_line(lines) + 1
        lines[i] = _set_field(lines[i], COLS.index("cycles_compute"), "12x")
        return lines

    t = _edited_table(d, "garbled.csv", edit)
    line_no = _data_line((d / "hw.csv").read_text().splitlines()) + 2
    refused(search.main, _search_argv(d, d / "r_garbled", "--hw-table", str(t)), capsys,
            f"line {line_no}", "cycles_compute", "'12x'")


# ---- oqa / ip numbers --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-2"])
def test_oqa_dma_bw(tiny, capsys, value) -> None:
    _g, d = tiny
    refused(oqa.main, ["--model", str(d / "ir"), "--dma-bw", value, "--out", str(d / "o.csv")], capsys, "--dma-bw")
    assert not (d / "o.csv").exists()


@pytest.mark.parametrize("value", ["0", "-1"])
def test_ip_lanes(tmp_path, capsys, value) -> None:
    refused(ip.main, ["--bits", "8", "--lanes", value, "--out", str(tmp_path / "ip"), "--no-csim", "--no-rtl"],
            capsys, "--lanes")
    assert not (tmp_path / "ip").exists()


# ---- untrusted model files ---------------------------------------------------------------------

_MAKE_LAMBDA_H5 = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
marker = sys.argv[2]
inp = tf.keras.Input((8, 8, 1))
x = tf.keras.layers.Conv2D(2, 3)(inp)
x = tf.keras.layers.Lambda(lambda t, p=marker: (open(p, "w").write("ran"), t)[1])(x)
m = tf.keras.Model(inp, x)
os.path.exists(marker) and os.unlink(marker)
m.save(sys.argv[1])
"""


@pytest.mark.tf
def test_lambda_h5_refused_before_its_code_runs(tmp_path) -> None:
    """A legacy .h5 whose Lambda writes a marker file when Keras deserializes it."""
    h5, marker = tmp_path / "lam.h5", tmp_path / "ran.txt"
    subprocess.run([sys.executable, "-c", _MAKE_LAMBDA_H5, str(h5), str(marker)], check=True, capture_output=True,
                   timeout=300)
    assert not marker.exists()
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "codesign", *args], capture_output=True, text=True, cwd=root,
                              env=env, timeout=300)

    for args in (("inspect", str(h5)), ("search", "--model", str(h5), "--out", str(tmp_path / "run"))):
        proc = cli(*args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "serialized Python code" in proc.stderr and "--trust-model" in " ".join(proc.stderr.split())
        assert not marker.exists(), "the Lambda's code ran while the file was checked"
    # The marker mechanism works: with --trust-model Keras loads the file and the code runs
    # (the importer then refuses the Lambda layer itself).
    proc = cli("inspect", str(h5), "--trust-model")
    assert proc.returncode == 2 and "Lambda" in proc.stderr, proc.stderr
    assert marker.exists()
