"""The overlay top is assembled from the generated cores, not a second copy of them.

Checks on the rendered Verilog (no simulator): the top module instantiates every generated core
module and the overlay's small modules; it declares no memory array, no 64-bit counter and no
img2col address generator of its own; it is a short wiring module whose only always block is
the engines' output multiplexer (the job latch, the feeder and the hold register are modules);
every core it instantiates is defined once, by the core's own template; and no register field
position is written as a literal where the regmap defines one.
"""

from __future__ import annotations

import re

import pytest

from codesign.hw.overlay import (
    OVERLAY_TEMPLATE,
    core_modules,
    generate_overlay_cores,
    overlay_spec,
    render_overlay,
)
from codesign.hw.paths import HLS_TEMPLATES

BITS = (4, 8)
# the overlay's own small modules (hls_templates/overlay/<part>.v.j2 -> module <overlay>_<part>)
PARTS = ("regs", "job", "skid", "rx", "feeder", "hold", "packer", "fifo")
# the top is a wiring module: at most this many lines (template, and rendered module body
# without the register-field constants it includes from regmap_params.v.j2)
TOP_MAX_LINES = 250


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, str]:
    root = tmp_path_factory.mktemp("ip")
    generate_overlay_cores(BITS, root)
    spec = overlay_spec(list(BITS), root)
    return spec, render_overlay(spec)


def _modules(text: str) -> dict[str, str]:
    """module name -> body text, for every module in ``text``."""
    return {m.group(1): m.group(0) for m in re.finditer(r"^module (\w+)\b.*?^endmodule", text, re.S | re.M)}


def _instances(body: str) -> list[str]:
    """Module names instantiated in a module body (``name #(...) u_x (`` or ``name u_x (``)."""
    return re.findall(r"^\s*(\w+)\s+(?:#\(.*?\)\s*)?u_\w+\s*\(", body, re.S | re.M)


def test_top_instantiates_every_generated_core(rendered) -> None:
    spec, text = rendered
    top = _modules(text)[spec.name]
    inst = _instances(top)
    for module in core_modules(spec):
        assert module in inst, f"the top does not instantiate the generated core {module}"
    assert inst.count(spec.bank_module) == 2, "the weight bank and the row buffer are bram_bank instances"
    for part in PARTS:
        assert f"{spec.name}_{part}" in inst, f"the top does not instantiate {spec.name}_{part}"


def test_no_core_logic_duplicated_in_the_top(rendered) -> None:
    spec, text = rendered
    modules = _modules(text)
    top = modules[spec.name]
    assert not re.search(r"\breg\s*\[[^\]]+\]\s*\w+\s*\[", top), "a memory array in the top (belongs in bram_bank/img2col)"
    assert not re.search(r"ram_style", top)
    assert not re.search(r"\bcnt\w*\s*<=|\+\s*inc\[", top), "a counter register in the top (belongs in cycle_counter)"
    assert not re.search(r"\b(ifm_cnt|ifm_mem|g_addr|g_floor\w*|g_issue)\b", top), "img2col state in the top (belongs in the img2col core)"
    # the overlay file defines only the top and its small modules; the cores come from their own files
    assert set(modules) == {spec.name, *(f"{spec.name}_{p}" for p in PARTS)}


def test_top_is_a_short_wiring_module(rendered) -> None:
    """The job latch, the feeder and the hold register are modules of their own: the top keeps
    no sequential logic, and its one always block is the combinational multiplexer of the
    engines' accumulators (one arm per engine, unrolled by the template)."""
    spec, text = rendered
    top = _modules(text)[spec.name]
    template_lines = (HLS_TEMPLATES / OVERLAY_TEMPLATE).read_text().count("\n")
    assert template_lines <= TOP_MAX_LINES, f"{OVERLAY_TEMPLATE}: {template_lines} lines"
    body = [ln for ln in top.splitlines() if not re.match(r"\s*localparam integer F_\w+ = \d+;", ln)]
    assert len(body) <= TOP_MAX_LINES, f"the top module has {len(body)} lines (without the field constants)"
    assert not re.search(r"\balways\s*@\s*\(\s*(posedge|negedge)", top), "sequential logic in the top"
    assert not re.search(r"^\s*reg\b(?!\s*\[BANK_LANES\*32-1:0\] acc_mux;)", top, re.M), "a register in the top"
    blocks = re.findall(r"^\s*(always\b.*?)^    end$", top, re.S | re.M)
    assert len(blocks) == 1 and re.match(r"always @\(\*\) begin\s+acc_mux = ", blocks[0]), blocks
    assert blocks[0].count("if (sel[") == len(spec.engines)


def test_register_fields_come_from_the_regmap(rendered) -> None:
    """No hard-coded bit positions of register fields in the overlay RTL (they are F_* localparams)."""
    _, text = rendered
    for pattern in (r"desc_kernel\[\d", r"desc_bits\[\d", r"wdata\[\d", r"r_desc_act\[\d", r"hs_shift\[\d",
                    r"\{28'd0, ap_idle", r"\{30'd0, (ier|isr|cnt_freeze)"):
        assert not re.search(pattern, text), f"hard-coded field position: {pattern}"
