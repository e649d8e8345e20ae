"""The import contract of the package: each layer imports only itself and the layers below it.

Layers, bottom to top (docs: README "Layout"; the design brief's table):

    base     errors, tf_quiet, atomic, digest, ui, membudget, sysinfo, optim, unionfind, datasets, plots,
             cpu_estimate: leaves every layer may use
    graph    codesign/graph/: the model IR, float execution, the Keras/QKeras importer
    quant    codesign/quant/ (quantizers, BitConfig, golden model) and codesign/models/ (the zoo)
    hw       codesign/hw/: IP specs, register map, cores, generator, synthesis
    board    codesign/board/ (Board protocol, SimBoard, PynqBoard, driver) and validate (the
             CLIs' argument checks, which know the devices and the zoo)
    methods  the on-board search steps and the methods that use them: distill (its loss bn_loss),
             mqe, oqa, netrun, hwtable, budgets, solvers (solver_model, solver_builtin), ilp,
             input_range, selfcheck, report_tables, codesign/methods/
    export   codesign/export/: QKeras and hls4ml exporters, re-import, runner, fidelity
    apps     the CLIs and their helpers: search, deploy*, finetune, qat, inspect_model, ip,
             synth, __main__

Every import counts, also the lazy ones inside functions and those under TYPE_CHECKING: a
lazy import still ties the lower layer to the upper one. A new top-level module must be
placed in :data:`LAYERS` (the test fails until it is).

Second contract: no module over :data:`MAX_LINES` lines. The current offenders are listed in
:data:`OVERSIZE` with their line count: each may shrink but not grow, and one that falls under
the limit must leave the list.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "codesign"

LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"errors", "tf_quiet", "atomic", "digest", "ui", "membudget", "sysinfo", "optim", "unionfind", "datasets",
              "plots", "cpu_estimate"}),
    ("graph", {"graph/"}),
    ("quant", {"quant/", "models/"}),
    ("hw", {"hw/"}),
    ("board", {"board/", "validate"}),
    ("methods", {"distill", "bn_loss", "mqe", "fisher", "oqa", "netrun", "hwtable", "budgets", "solvers", "solver_model",
                 "solver_builtin", "ilp/", "input_range", "selfcheck", "report_tables", "methods/", "runcache",
                 "evaluate"}),
    ("export", {"export/"}),
    ("apps", {"search", "search_stages", "report", "deploy", "deploy_search", "deploy_inputs", "deploy_report",
              "deploy_progress", "deploy_summary", "finetune", "qat",
              "inspect_model", "ip", "synth", "__main__", "__init__"}),
]

MAX_LINES = 400
# module -> its line count when this list was written (issue 19); shrink these, do not add to them.
# Empty since the issue-19 splits (graph/ir, graph/keras_import, distill, solvers): keep it so.
OVERSIZE: dict[str, int] = {}


def _unit(module: str) -> str:
    """'codesign.graph.ir' -> 'graph/'; 'codesign.ilp' -> 'ilp'; 'codesign' -> '__init__'."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1] + "/" if (PKG / parts[1]).is_dir() else parts[1]


def _rank() -> dict[str, int]:
    return {unit: i for i, (_name, units) in enumerate(LAYERS) for unit in units}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for p in sorted(PKG.rglob("*.py")):
        parts = p.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((module, p))
    return out


def _imports(path: Path) -> set[str]:
    """Every ``codesign`` module ``path`` imports (module level, lazy, TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {sub for a in node.names if _is_module(sub := f"{node.module}.{a.name}")}  # `from codesign import oqa`
    return {m for m in found if m.startswith("codesign.") and _unit(m) != "__init__" and _is_module(m)}


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


def test_every_module_has_a_layer() -> None:
    rank = _rank()
    missing = sorted({_unit(m) for m, _p in _modules()} - set(rank))
    assert not missing, f"place these in tests/test_layers.py LAYERS: {missing}"


def test_imports_point_down_the_layers() -> None:
    rank = _rank()
    names = [name for name, _units in LAYERS]
    bad = []
    for module, path in _modules():
        src = _unit(module)
        for target in sorted(_imports(path)):
            dst = _unit(target)
            if dst in rank and src in rank and rank[dst] > rank[src]:
                bad.append(f"{module} ({names[rank[src]]}) imports {target} ({names[rank[dst]]})")
    assert not bad, "imports up the layers:\n" + "\n".join(bad)


def test_the_contract_sees_imports() -> None:
    # the checker must see lazy and from-package imports, or the test above proves nothing
    search = _imports(PKG / "search_stages.py")  # the search's stages: lazy, from-package and top imports
    assert {"codesign.ilp", "codesign.oqa", "codesign.quant.qgraph"} <= search
    assert any(m.startswith("codesign.export") for m in search)


def test_no_module_grows_past_the_line_limit() -> None:
    sizes = {str(p.relative_to(PKG)): len(p.read_text().splitlines()) for _m, p in _modules()}
    over = {m: n for m, n in sizes.items() if n > MAX_LINES}
    new = {m: n for m, n in over.items() if m not in OVERSIZE}
    grown = {m: (OVERSIZE[m], n) for m, n in over.items() if m in OVERSIZE and n > OVERSIZE[m]}
    fixed = sorted(m for m in OVERSIZE if sizes.get(m, 0) <= MAX_LINES)
    assert not new, f"modules over {MAX_LINES} lines: {new}; split them"
    assert not grown, f"listed modules grew (was, now): {grown}; split them instead"
    assert not fixed, f"now under {MAX_LINES} lines (or gone), remove from OVERSIZE: {fixed}"
