"""Per-primitive delays of a 7-series part, -1 speed grade: the constants of the timing estimate.

Sources (all figures in ns; docs/hw.md "Open synthesis and the timing estimate" explains the use):

* **Yosys' own Xilinx cell library** (``share/xilinx/cells_sim.v`` of the installed Yosys,
  ``specify`` blocks): the CARRY4, MUXF7/MUXF8, FDRE setup, distributed-RAM, SRL, RAMB18E1 /
  RAMB36E1 and DSP48E1 figures below are the ones written there, each cited in that file to the
  Project X-Ray timing database (``prjxray-db/artix7/timings/*.sdf``), i.e. Vivado's timing
  model of an Artix-7 -1 part, whose fabric the Zynq-7020 shares. ABC9 maps with the same numbers.
* **LUT**: one pin-independent figure, 0.124 ns, the LUT delay (T_ILO) a -1 part shows in
  Vivado timing reports. Project X-Ray's per-pin LUT delays (0.13 ns on I5 up to 0.64 ns on I0)
  include the pin's input multiplexer, and the pin Yosys assigns is not the one the placer keeps.
* **FF clock-to-Q**: 0.456 ns (T_CKO of a -1 part in Vivado reports; X-Ray lists 0.303 ns); the
  larger figure is used.
* **Routing**: no placement exists, so every net through the general interconnect costs
  :data:`NET_NS` (0.40 ns, the middle of the 0.3-0.5 ns a local net takes on a -1 part). Nets on
  dedicated wires cost nothing: CARRY4 CO[3] -> CI, DSP cascades (PCOUT -> PCIN, ACOUT -> ACIN,
  ...), LUT -> MUXF7 -> MUXF8, and a LUT or CARRY4 output that feeds only the FF or carry input of
  its own slice (:func:`dedicated_net`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from codesign.hw.synth.netlist import Cell

NET_NS = 0.40  # one general-interconnect net (driver pin to load pin)
LUT_NS = 0.124  # LUT1..LUT6, any input to O
FF_CLK_TO_Q_NS = 0.456
# FF setup: D (-0.046 in X-Ray, taken as 0.05), CE 0.109, synchronous set/reset 0.404.
FF_SETUP_NS = {"D": 0.05, "CE": 0.109, "R": 0.404, "S": 0.404, "CLR": 0.404, "PRE": 0.404}
MUXF7_NS = {"I0": 0.217, "I1": 0.223, "S": 0.296}
MUXF8_NS = {"I0": 0.104, "I1": 0.094, "S": 0.273}

# CARRY4 input -> output delays (X-Ray CLBLL_L.sdf, via Yosys cells_sim.v).
CARRY4_NS: dict[str, dict[str, float]] = {
    "O[0]": {"CYINIT": 0.482, "S[0]": 0.223, "CI": 0.222},
    "O[1]": {"CYINIT": 0.598, "DI[0]": 0.407, "S[0]": 0.400, "S[1]": 0.205, "CI": 0.334},
    "O[2]": {"CYINIT": 0.584, "DI[0]": 0.556, "DI[1]": 0.537, "S[0]": 0.523, "S[1]": 0.558,
             "S[2]": 0.226, "CI": 0.239},
    "O[3]": {"CYINIT": 0.642, "DI[0]": 0.615, "DI[1]": 0.596, "DI[2]": 0.438, "S[0]": 0.582,
             "S[1]": 0.618, "S[2]": 0.330, "S[3]": 0.227, "CI": 0.313},
    "CO[0]": {"CYINIT": 0.536, "DI[0]": 0.379, "S[0]": 0.340, "CI": 0.271},
    "CO[1]": {"CYINIT": 0.494, "DI[0]": 0.465, "DI[1]": 0.445, "S[0]": 0.433, "S[1]": 0.469, "CI": 0.157},
    "CO[2]": {"CYINIT": 0.592, "DI[0]": 0.540, "DI[1]": 0.520, "DI[2]": 0.356, "S[0]": 0.512,
              "S[1]": 0.548, "S[2]": 0.292, "CI": 0.228},
    "CO[3]": {"CYINIT": 0.580, "DI[0]": 0.526, "DI[1]": 0.507, "DI[2]": 0.398, "DI[3]": 0.385,
              "S[0]": 0.508, "S[1]": 0.528, "S[2]": 0.378, "S[3]": 0.380, "CI": 0.114},
}
CARRY4_CI_TO_CO3_NS = CARRY4_NS["CO[3]"]["CI"]

# Block RAM: clock to DO without / with the output register (DO_REG), and input setups.
BRAM_CLK_TO_DO_NS = 2.454
BRAM_CLK_TO_DO_REG_NS = 0.882
BRAM_SETUP_NS = {"ADDR": 0.566, "WE": 0.532, "DI": 0.737, "REGCE": 0.360, "RSTREG": 0.342}
BRAM_SETUP_OTHER_NS = 0.566  # EN, RSTRAM, ...: not in the library; the address setup is used

# Distributed RAM (RAM32M/RAM64M/RAMxXyD/S): write clock to output, write-port setups; the
# read address -> output arc is a LUT (plus MUXF7 / MUXF8 for 128 / 256 deep).
LUTRAM_CLK_TO_O_NS = 1.153
LUTRAM_SETUP_NS = {"WE": 0.654, "DI": 0.461, "ADDR": 0.245}
SRL_CLK_TO_Q_NS = 1.472
SRL_SETUP_NS = 0.461

# DSP48E1 figures of Yosys cells_sim.v (X-Ray DSP timings); keys: (USE_MULT, USE_DPORT).
_MUL, _DPORT, _NOMUL = ("MULTIPLY", "FALSE"), ("MULTIPLY", "TRUE"), ("NONE", "FALSE")
DSP_COMB_TO_P_NS = {  # input -> P with no register between (PCOUT is 0.148 later)
    "A": {_MUL: 2.823, _DPORT: 3.806, _NOMUL: 1.523},
    "B": {_MUL: 2.690, _DPORT: 2.690, _NOMUL: 1.509},
    "C": {_MUL: 1.325, _DPORT: 1.325, _NOMUL: 1.325},
    "D": {_DPORT: 3.717},
    "PCIN": {_MUL: 1.107, _DPORT: 1.107, _NOMUL: 1.107},
}
DSP_PCOUT_EXTRA_NS = 0.148
DSP_CTRL_SETUP_NS = 0.30  # CE*, RST*, OPMODE, ALUMODE, INMODE, CARRYIN*: not in the library


@dataclass
class CellTiming:
    """The timing arcs of one cell. Pins are ``(port, bit index)``.

    ``comb``: groups ``(inputs, outputs, delay)``, every input reaches every output in ``delay``.
    ``launch``: output pins driven by the clock, with their clock-to-out delay.
    ``capture``: input pins sampled by the clock, with their setup time.
    """

    comb: list[tuple[list[tuple[str, int]], list[tuple[str, int]], float]] = field(default_factory=list)
    launch: list[tuple[tuple[str, int], float]] = field(default_factory=list)
    capture: list[tuple[tuple[str, int], float]] = field(default_factory=list)
    modelled: bool = True


def _pins(cell: Cell, port: str) -> list[tuple[str, int]]:
    return [(port, i) for i in range(len(cell.connections.get(port, [])))]


def _inputs(cell: Cell) -> list[str]:
    return [p for p, d in cell.directions.items() if d == "input" and p in cell.connections]


def _outputs(cell: Cell) -> list[str]:
    return [p for p, d in cell.directions.items() if d == "output" and p in cell.connections]


CLOCK_PORTS = {"C", "CLK", "WCLK", "CLKARDCLK", "CLKBWRCLK", "G", "CLKA", "CLKB"}


def _ff(cell: Cell) -> CellTiming:
    t = CellTiming(launch=[(("Q", 0), FF_CLK_TO_Q_NS)])
    for port in _inputs(cell):
        if port in FF_SETUP_NS:
            t.capture.append(((port, 0), FF_SETUP_NS[port]))
    return t


def _lut(cell: Cell) -> CellTiming:
    ins = [pin for p in _inputs(cell) for pin in _pins(cell, p)]
    outs = [pin for p in _outputs(cell) for pin in _pins(cell, p)]
    return CellTiming(comb=[(ins, outs, LUT_NS)])


def _muxf(table: dict[str, float]) -> Callable[[Cell], CellTiming]:
    def model(cell: Cell) -> CellTiming:
        return CellTiming(comb=[([(p, 0)], [("O", 0)], d) for p, d in table.items() if p in cell.connections])
    return model


def _carry4(cell: Cell) -> CellTiming:
    t = CellTiming()
    for out, arcs in CARRY4_NS.items():
        oport, obit = out.rstrip("]").split("[")
        for src, delay in arcs.items():
            port, _, idx = src.partition("[")
            if port in cell.connections and oport in cell.connections:
                t.comb.append(([(port, int(idx.rstrip("]")) if idx else 0)], [(oport, int(obit))], delay))
    return t


def _bram(cell: Cell) -> CellTiming:
    t = CellTiming()
    for port in _outputs(cell):
        if port.startswith("CASCADEOUT"):
            continue
        side_b = "B" in port[:4]  # DOBDO / DOPBDOP
        reg = cell.param_int("DOB_REG" if side_b else "DOA_REG")
        delay = BRAM_CLK_TO_DO_REG_NS if reg else BRAM_CLK_TO_DO_NS
        t.launch += [(pin, delay) for pin in _pins(cell, port)]
    for port in _inputs(cell):
        if port in CLOCK_PORTS or port.startswith("CASCADEIN"):
            continue
        key = next((k for k in ("ADDR", "WE", "DI", "REGCE", "RSTREG") if port.startswith(k)), None)
        setup = BRAM_SETUP_NS[key] if key else BRAM_SETUP_OTHER_NS
        t.capture += [(pin, setup) for pin in _pins(cell, port)]
    return t


def _lutram_depth(cell_type: str) -> int:
    digits = "".join(ch if ch.isdigit() else " " for ch in cell_type).split()
    return int(digits[0]) if digits else 64


def _lutram(cell: Cell) -> CellTiming:
    depth = _lutram_depth(cell.type)
    read = LUT_NS + (MUXF7_NS["S"] if depth >= 128 else 0.0) + (MUXF8_NS["S"] if depth >= 256 else 0.0)
    t = CellTiming()
    outs = [pin for p in _outputs(cell) for pin in _pins(cell, p)]
    addr = []
    for port in _inputs(cell):
        pins = _pins(cell, port)
        if port == "WE":
            t.capture += [(pin, LUTRAM_SETUP_NS["WE"]) for pin in pins]
        elif port.startswith(("ADDR", "A", "DPRA")):
            addr += pins
            t.capture += [(pin, LUTRAM_SETUP_NS["ADDR"]) for pin in pins]
        elif port.startswith("D"):
            t.capture += [(pin, LUTRAM_SETUP_NS["DI"]) for pin in pins]
    t.comb.append((addr, outs, read))
    t.launch += [(pin, LUTRAM_CLK_TO_O_NS) for pin in outs]
    return t


def _srl(cell: Cell) -> CellTiming:
    t = CellTiming()
    outs = [pin for p in _outputs(cell) for pin in _pins(cell, p)]
    addr = [pin for p in _inputs(cell) if p.startswith("A") for pin in _pins(cell, p)]
    t.comb.append((addr, [pin for pin in outs if pin[0] == "Q"], LUT_NS))
    t.launch += [(pin, SRL_CLK_TO_Q_NS) for pin in outs]
    t.capture += [(pin, SRL_SETUP_NS) for p in ("D", "CE") for pin in _pins(cell, p)]
    return t


def _dsp_mode(cell: Cell) -> tuple[str, str]:
    return (cell.param_str("USE_MULT", "MULTIPLY"), cell.param_str("USE_DPORT", "FALSE"))


def dsp_input_registered(cell: Cell, port: str) -> bool:
    """Whether ``port`` of a DSP48E1 meets a register inside the slice before P (Yosys' rule)."""
    reg = {k: cell.param_int(k, 1) for k in ("AREG", "BREG", "CREG", "DREG", "ADREG", "MREG", "PREG")}
    on_the_way = {
        "A": ("AREG", "ADREG", "MREG"), "ACIN": ("AREG", "ADREG", "MREG"), "B": ("BREG", "MREG"),
        "BCIN": ("BREG", "MREG"), "C": ("CREG",), "D": ("DREG", "ADREG", "MREG"),
    }.get(port, ())
    return bool(reg["PREG"] or any(reg[k] for k in on_the_way))


def _dsp_setup(cell: Cell, port: str) -> float:
    """Setup of a registered DSP48E1 data input: to the first register on its way (Yosys' table)."""
    reg = {k: cell.param_int(k, 1) for k in ("AREG", "BREG", "CREG", "DREG", "ADREG", "MREG", "PREG")}
    mode = _dsp_mode(cell)
    mult, dport = mode[0] == "MULTIPLY", mode[1] == "TRUE"
    patdet = 0.29 if cell.param_str("USE_PATTERN_DETECT", "NO_PATDET") != "NO_PATDET" else 0.0
    if port in ("A", "ACIN"):
        if reg["AREG"]:
            return 0.254
        if mult and dport:
            return 2.400 if reg["MREG"] else 1.283 if reg["ADREG"] else 3.723 + patdet
        if mult:
            return 1.416 if reg["MREG"] else 2.739 + patdet
        return 1.441 + patdet
    if port in ("B", "BCIN"):
        if reg["BREG"]:
            return 0.324
        if mult and reg["MREG"]:
            return 1.285
        return (2.608 if mult else 1.428) + patdet
    if port == "C":
        return 0.168 if reg["CREG"] else 1.244 + patdet
    if port == "D":
        return 0.248 if reg["DREG"] else 1.195 if reg["ADREG"] else 2.310 if reg["MREG"] else 3.635 + patdet
    return 1.025 + patdet  # PCIN into the P register


def _dsp_clk_to_p(cell: Cell) -> float | None:
    """Clock to P of a DSP48E1 from its last register before P, or None if P is combinational."""
    reg = {k: cell.param_int(k, 1) for k in ("AREG", "BREG", "CREG", "DREG", "ADREG", "MREG", "PREG")}
    mode = _dsp_mode(cell)
    if reg["PREG"]:
        return 0.329
    order = [("CREG", 1.687), ("MREG", 1.671)]
    if mode == _DPORT:
        order += [("AREG", 3.935), ("DREG", 3.908), ("ADREG", 2.958), ("BREG", 2.813)]
    elif mode == _MUL:
        order += [("AREG", 2.952), ("BREG", 2.813)]
    else:
        order = [("CREG", 1.687), ("AREG", 1.632), ("BREG", 1.616)]
    return next((d for k, d in order if reg[k]), None)


DSP_DATA_PORTS = ("A", "B", "C", "D", "PCIN", "ACIN", "BCIN")
DSP_CASCADE_OUT = ("PCOUT", "ACOUT", "BCOUT", "CARRYCASCOUT", "MULTSIGNOUT")


def _dsp48e1(cell: Cell) -> CellTiming:
    t = CellTiming()
    mode = _dsp_mode(cell)
    p_outs = [pin for p in _outputs(cell) if p not in ("ACOUT", "BCOUT") for pin in _pins(cell, p)]
    clk_to_p = _dsp_clk_to_p(cell)
    if clk_to_p is not None:
        t.launch += [(pin, clk_to_p + (DSP_PCOUT_EXTRA_NS if pin[0] in DSP_CASCADE_OUT else 0.0))
                     for pin in p_outs]
    for port in _inputs(cell):
        pins = _pins(cell, port)
        if port in CLOCK_PORTS:
            continue
        if port in DSP_DATA_PORTS:
            if dsp_input_registered(cell, port):
                t.capture += [(pin, _dsp_setup(cell, port)) for pin in pins]
            else:
                key = {"ACIN": "A", "BCIN": "B"}.get(port, port)
                delay = DSP_COMB_TO_P_NS.get(key, {}).get(mode, DSP_COMB_TO_P_NS["A"][_MUL])
                plain = [pin for pin in p_outs if pin[0] not in DSP_CASCADE_OUT]
                cascade = [pin for pin in p_outs if pin[0] in DSP_CASCADE_OUT]
                t.comb.append((pins, plain, delay))
                t.comb.append((pins, cascade, delay + DSP_PCOUT_EXTRA_NS))
        else:
            t.capture += [(pin, DSP_CTRL_SETUP_NS) for pin in pins]
    return t


def _unknown(cell: Cell) -> CellTiming:
    ins = [pin for p in _inputs(cell) if p not in CLOCK_PORTS for pin in _pins(cell, p)]
    outs = [pin for p in _outputs(cell) for pin in _pins(cell, p)]
    return CellTiming(comb=[(ins, outs, LUT_NS)] if ins and outs else [], modelled=False)


def _none(cell: Cell) -> CellTiming:
    return CellTiming()


MODELS: dict[str, Callable[[Cell], CellTiming]] = {
    **{t: _ff for t in ("FDRE", "FDSE", "FDCE", "FDPE")},
    **{t: _lut for t in ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "LUT6_2", "INV")},
    "MUXF7": _muxf(MUXF7_NS), "MUXF8": _muxf(MUXF8_NS), "CARRY4": _carry4,
    "RAMB18E1": _bram, "RAMB36E1": _bram, "DSP48E1": _dsp48e1,
    **{t: _lutram for t in ("RAM16X1S", "RAM32X1S", "RAM64X1S", "RAM128X1S", "RAM256X1S", "RAM16X1D",
                            "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM256X1D", "RAM32M", "RAM64M",
                            "RAM32M16", "RAM64M8")},
    **{t: _srl for t in ("SRL16E", "SRLC16E", "SRLC32E")},
    # Clock buffers and constants carry no data path; a BUFGCE enable is a clock-gating path
    # that this estimate does not time (documented in docs/hw.md).
    **{t: _none for t in ("BUFG", "BUFGCE", "BUFGCTRL", "BUFHCE", "VCC", "GND", "$scopeinfo")},
}


def cell_timing(cell: Cell) -> CellTiming:
    """The arcs of ``cell``; an unknown type is a LUT-like combinational cell, flagged unmodelled."""
    return MODELS.get(cell.type, _unknown)(cell)


def dedicated_net(driver: Cell | None, driver_port: str, load: Cell, load_port: str, fanout: int) -> bool:
    """Whether the net from ``driver.driver_port`` to ``load.load_port`` uses a dedicated wire."""
    if driver is None:
        return False
    if load_port in ("PCIN", "ACIN", "BCIN", "CARRYCASCIN", "MULTSIGNIN") or load_port.startswith("CASCADEIN"):
        return True
    if load.type == "CARRY4" and load_port == "CI" and driver.type == "CARRY4":
        return True
    if load.type in ("MUXF7", "MUXF8") and load_port in ("I0", "I1"):
        return driver.type in ("MUXF7", "LUT6", "LUT5", "LUT4", "LUT3", "LUT2", "LUT1")
    lut_like = driver.type.startswith("LUT") or driver.type == "CARRY4"
    # A LUT feeding only its slice's carry (S/DI) or FF (D) uses the slice-internal wire.
    return fanout == 1 and lut_like and (
        (load.type == "CARRY4" and load_port in ("S", "DI")) or (load.type.startswith("FD") and load_port == "D")
    )


__all__ = ["NET_NS", "CellTiming", "cell_timing", "dedicated_net", "dsp_input_registered"]
