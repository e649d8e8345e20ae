"""The register map: well formed, and every rendered view agrees with the definition."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from codesign.hw.generator import render_regmap
from codesign.hw.regmap import REGMAP, STAGES, by_name, check_regmap

pytestmark = pytest.mark.unit


def test_regmap_is_well_formed() -> None:
    check_regmap()
    regs = by_name()
    assert regs["AP_CTRL"].offset == 0x00  # Vitis HLS s_axilite layout
    assert regs["CONFIG_HASH"].access == "RO"
    for stage in STAGES:
        assert regs[f"CYC_{stage}"].width == 64


def test_views_agree(tmp_path: Path) -> None:
    files = render_regmap(tmp_path)
    # Python view
    ns: dict[str, object] = {}
    exec(Path(files["regmap_consts.py"]).read_text(), ns)
    for r in REGMAP:
        assert ns[r.name] == r.offset
        assert ns["REGISTERS"][r.name]["width"] == r.width  # type: ignore[index]
    # Verilog view
    vh = Path(files["regmap.vh"]).read_text()
    for r in REGMAP:
        m = re.search(rf"REG_{r.name} = \d+'h([0-9A-F]+);", vh)
        assert m and int(m.group(1), 16) == r.offset, r.name
    # C view: compile a program that prints every offset, compare with the definition
    prog = tmp_path / "main.c"
    prog.write_text(
        '#include <stdio.h>\n#include "regmap.h"\nint main(void){\n'
        + "".join(f'printf("%d\\n", CODESIGN_REG_{r.name});\n' for r in REGMAP)
        + "return 0;}\n"
    )
    exe = tmp_path / "main"
    subprocess.run(["gcc", "-Wall", "-Werror", f"-I{tmp_path}", str(prog), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    assert [int(x) for x in out] == [r.offset for r in REGMAP]


def test_check_regmap_raises_on_overlap_and_field_overflow() -> None:
    """Malformed maps raise RegmapError (also under python -O, unlike an assert)."""
    import dataclasses

    import pytest

    from codesign.hw.regmap import Field, RegmapError

    regs = list(REGMAP)
    overlap = (*regs, dataclasses.replace(regs[0], name="DUP"))
    with pytest.raises(RegmapError, match="overlaps"):
        check_regmap(overlap)
    bad_field = (*regs[:1], dataclasses.replace(regs[1], fields=(Field("X", 30, 4),)), *regs[2:])
    with pytest.raises(RegmapError, match="field"):
        check_regmap(bad_field)


def test_pack_and_read_fields_follow_regmap() -> None:
    """pack_fields/field_value place every field where REGMAP says (checked bit by bit)."""
    from codesign.hw.regmap import field_value, pack_fields

    for reg in REGMAP:
        for f in reg.fields:
            top = (1 << f.width) - 1
            word = pack_fields(reg.name, **{f.name: top})
            assert word == top << f.lsb
            assert field_value(reg.name, f.name, word) == top
