"""`python -m codesign.ip`: user errors are one paragraph and exit 2; a small run works."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from codesign.errors import run_cli
from codesign.ip import main


@pytest.mark.unit
@pytest.mark.parametrize("bits", ["9", "1,4", "4,,8", "four", ""])
def test_bad_bits_exit_2(bits: str, tmp_path, capsys) -> None:
    assert run_cli(main, ["--bits", bits, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err


@pytest.mark.unit
def test_bad_device_exit_2(tmp_path, capsys) -> None:
    assert run_cli(main, ["--bits", "4", "--device", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown device" in capsys.readouterr().err


@pytest.mark.unit
@pytest.mark.parametrize("extra", [["--lanes", "128"], ["--tile", "256"], ["--cores", "fft"]])
def test_over_budget_or_bad_spec_exit_2(extra: list[str], tmp_path, capsys) -> None:
    assert run_cli(main, ["--bits", "8", "--out", str(tmp_path), "--no-csim", "--no-rtl", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err


@pytest.mark.csim
def test_small_run_writes_layout(tmp_path) -> None:
    out = tmp_path / "ip"
    proc = subprocess.run(
        [sys.executable, "-m", "codesign.ip", "--bits", "3", "--out", str(out), "--no-rtl", "--cores", "postproc"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [c["name"] for c in manifest["cores"]] == ["postproc_w3"]
    assert manifest["csim"]["postproc_w3"]["passed"]
    info = json.loads((out / "postproc_w3" / "ip.json").read_text())
    assert info["spec"]["bits"] == 3 and info["config_hash"].startswith("0x")
    for rel in ("hls/postproc_w3.cpp", "hls/run_hls.tcl", "rtl/postproc_w3.v"):
        text = (out / "postproc_w3" / rel).read_text()
        assert "DO NOT EDIT" in text and info["config_sha256"] in text
    assert "postproc" in proc.stdout
