"""The RTL ports of a core's two views, without any Xilinx tool: HLS C++ and Verilog twin.

:func:`hls_interface` reads a rendered HLS top (the function signature, its ``#pragma HLS
INTERFACE`` lines and the header's typedefs) and lists the RTL ports Vitis HLS generates for
it; :func:`verilog_ports` reads a module's ANSI port list. :func:`compare` matches the two.

The naming rule (Vitis HLS, ``config_rtl -module_prefix hls_ -reset_level low``, which
``run_hls.tcl`` sets):

* always ``ap_clk`` and ``ap_rst_n``;
* block protocol (``port=return``): ``ap_ctrl_none`` adds nothing; ``ap_ctrl_hs`` (the default)
  adds ``ap_start`` / ``ap_done`` / ``ap_idle`` / ``ap_ready``; ``ap_ctrl_chain`` also
  ``ap_continue``; ``s_axilite`` moves them into the bundle and adds ``interrupt``;
* ``axis`` port ``x``: ``x_TDATA`` (the data width rounded up to whole bytes), ``x_TVALID``,
  ``x_TREADY`` and, for an ``hls::axis`` / ``ap_axiu`` beat, the enabled side channels
  ``x_TLAST``, ``x_TUSER``, ``x_TKEEP``, ``x_TSTRB``, ``x_TID``, ``x_TDEST``;
* ``s_axilite`` bundle ``b``: ``s_axi_b_AWADDR`` ... ``s_axi_b_BRESP`` (the address width is
  Vitis's choice: left open);
* ``ap_none`` scalar ``x``: ``x`` (an input when passed by value, an output through a pointer
  or reference); ``ap_vld`` adds ``x_ap_vld``;
* ``ap_memory`` array ``x[N]``: ``x_address0``, ``x_ce0``, ``x_q0`` and, unless ``const``,
  ``x_we0``, ``x_d0``;
* a plain ``hls::stream`` without pragma (``ap_fifo``): ``x_dout/x_empty_n/x_read`` in,
  ``x_din/x_full_n/x_write`` out.

Names are compared case-insensitively (Vitis writes ``x_TDATA``, the twins ``x_tdata``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from codesign.hw.cores.base import clog2
from codesign.hw.cparse import PortParseError, balanced, eval_int, split_top, strip_comments

HLS_MODULE_PREFIX = "hls_"  # config_rtl -module_prefix: the HLS module never clashes with its wrapper

# ap_axi_sdata.h's side-channel enable bits (hls::axis's fifth template argument)
AXIS_FLAGS = {"AXIS_ENABLE_DATA": 0x01, "AXIS_ENABLE_DEST": 0x02, "AXIS_ENABLE_ID": 0x04, "AXIS_ENABLE_KEEP": 0x08,
              "AXIS_ENABLE_LAST": 0x10, "AXIS_ENABLE_STRB": 0x20, "AXIS_ENABLE_USER": 0x40}
AXIS_DEFAULT = AXIS_FLAGS["AXIS_ENABLE_KEEP"] | AXIS_FLAGS["AXIS_ENABLE_LAST"] | AXIS_FLAGS["AXIS_ENABLE_STRB"]
C_WIDTHS = {"bool": 1, "char": 8, "short": 16, "int": 32, "long": 64, "long long": 64}
AXILITE = (("AWVALID", "in", 1), ("AWREADY", "out", 1), ("AWADDR", "in", None), ("WVALID", "in", 1),
           ("WREADY", "out", 1), ("WDATA", "in", 32), ("WSTRB", "in", 4), ("ARVALID", "in", 1), ("ARREADY", "out", 1),
           ("ARADDR", "in", None), ("RVALID", "out", 1), ("RREADY", "in", 1), ("RDATA", "out", 32),
           ("RRESP", "out", 2), ("BVALID", "out", 1), ("BREADY", "in", 1), ("BRESP", "out", 2))


@dataclass(frozen=True)
class RtlPort:
    """One RTL port: name, direction ("in"/"out"), width in bits (None: the tool's choice)."""

    name: str
    direction: str
    width: int | None
    role: str = "wire"  # clock, reset, ctrl, axis, axilite, memory, fifo, wire

    @property
    def key(self) -> str:
        """The name as compared (case-insensitive)."""
        return self.name.lower()


@dataclass(frozen=True)
class HlsInterface:
    """The RTL interface of one HLS top function."""

    top: str
    ports: tuple[RtlPort, ...]

    @property
    def module(self) -> str:
        """The Verilog module Vitis HLS exports for the top (``config_rtl -module_prefix``)."""
        return HLS_MODULE_PREFIX + self.top


# ---- the HLS C++ side --------------------------------------------------------------------
@dataclass(frozen=True)
class _Type:
    kind: str  # "int", "stream", "axis"
    width: int = 0
    inner: _Type | None = None
    user: int = 0
    tid: int = 0
    dest: int = 0
    flags: int = 0
    strict: bool = False


def _typedefs(text: str) -> dict[str, str]:
    return {m.group(2): m.group(1).strip() for m in re.finditer(r"\btypedef\s+([^;]+?)\s+(\w+)\s*;", text)}


def _resolve(type_str: str, typedefs: dict[str, str]) -> _Type:
    t = re.sub(r"\s+", " ", type_str.replace("const ", "").replace("volatile ", "")).strip()
    if t in typedefs:
        return _resolve(typedefs[t], typedefs)
    m = re.fullmatch(r"(?:unsigned |signed )?(bool|char|short|int|long long|long)", t)
    if m:
        return _Type("int", C_WIDTHS[m.group(1)])
    m = re.fullmatch(r"([\w:]+)\s*<(.*)>", t, flags=re.S)
    if not m:
        raise PortParseError(f"unsupported HLS argument type '{type_str}'")
    base, args = m.group(1), split_top(m.group(2))

    def num(i: int, default: int = 0) -> int:
        return eval_int(args[i], AXIS_FLAGS) if i < len(args) else default

    if base in ("ap_uint", "ap_int", "ap_fixed", "ap_ufixed"):
        return _Type("int", num(0))
    if base == "hls::stream":
        return _Type("stream", inner=_resolve(args[0], typedefs))
    if base == "hls::axis":
        strict = len(args) > 5 and args[5].strip() == "true"
        return _Type("axis", _resolve(args[0], typedefs).width, None, num(1), num(2), num(3), num(4, AXIS_DEFAULT), strict)
    if base in ("ap_axiu", "ap_axis"):
        return _Type("axis", num(0), None, num(1), num(2), num(3), AXIS_DEFAULT)
    raise PortParseError(f"unsupported HLS argument type '{type_str}'")


def _top_function(code: str) -> tuple[str, str, str]:
    """(name, argument list, body) of the function that carries the INTERFACE pragmas."""
    for m in re.finditer(r"(?<!static )\bvoid\s+(\w+)\s*\(", code):
        args, after = balanced(code, m.end() - 1)
        rest = code[after:].lstrip()
        if not rest.startswith("{"):
            continue  # a declaration
        body, _ = balanced(code, after + code[after:].index("{"), "{", "}")
        if "#pragma HLS INTERFACE" in body:
            return m.group(1), args, body
    raise PortParseError("no top function with '#pragma HLS INTERFACE' lines found")


def _pragmas(body: str) -> dict[str, dict[str, str]]:
    """port -> {mode, bundle, ...} of the INTERFACE pragmas (``mode=`` or the old positional form)."""
    found: dict[str, dict[str, str]] = {}
    for line in re.findall(r"#pragma\s+HLS\s+INTERFACE\s+([^\n]*)", body, flags=re.I):
        opts: dict[str, str] = {}
        for tok in line.split():
            key, eq, value = tok.partition("=")
            if eq:
                opts[key.lower()] = value
            else:
                opts.setdefault("mode", tok)
        if "port" not in opts or "mode" not in opts:
            raise PortParseError(f"INTERFACE pragma without port= or mode=: '{line.strip()}'")
        found[opts["port"]] = opts
    return found


def _stream_direction(name: str, body: str) -> str:
    reads = re.search(rf"\b{name}\s*(\.\s*read(_nb)?\s*\(|>>)", body)
    writes = re.search(rf"\b{name}\s*(\.\s*write(_nb)?\s*\(|<<)", body)
    if bool(reads) == bool(writes):
        raise PortParseError(f"stream '{name}' is {'both read and written' if reads else 'never used'}")
    return "in" if reads else "out"


def _assigned(name: str, ref: str, body: str) -> bool:
    """Whether the body writes through the pointer/reference ``name``."""
    lhs = rf"\*\s*{name}" if ref == "*" else rf"\b{name}"
    return re.search(rf"{lhs}\s*(=(?!=)|[-+*/|&^]=)", body) is not None


def _array_access(name: str, body: str) -> tuple[bool, bool]:
    """(read, written) of the array argument ``name``: an element followed by ``=`` is a write."""
    reads = writes = False
    for m in re.finditer(rf"\b{name}\s*\[", body):
        _, end = balanced(body, m.end() - 1, "[", "]")
        if re.match(r"\s*(=(?!=)|[-+*/|&^]=)", body[end:]):
            writes = True
        else:
            reads = True
    return reads, writes


def _axis_ports(name: str, t: _Type, direction: str) -> list[RtlPort]:
    back = "out" if direction == "in" else "in"
    ports = [RtlPort(f"{name}_TVALID", direction, 1, "axis"), RtlPort(f"{name}_TREADY", back, 1, "axis")]
    if t.kind != "axis":  # a plain type on an axis port: data only
        width = t.width
        return [RtlPort(f"{name}_TDATA", direction, -(-width // 8) * 8, "axis"), *ports]

    def on(flag: str, present_by_default: bool = False) -> bool:
        return bool(t.flags & AXIS_FLAGS[flag]) or (present_by_default and not t.strict)

    data_w = -(-t.width // 8) * 8  # TDATA is byte-aligned
    if on("AXIS_ENABLE_DATA", True):
        ports.insert(0, RtlPort(f"{name}_TDATA", direction, data_w, "axis"))
    for flag, sig, width in (("AXIS_ENABLE_KEEP", "TKEEP", data_w // 8), ("AXIS_ENABLE_STRB", "TSTRB", data_w // 8),
                             ("AXIS_ENABLE_USER", "TUSER", t.user), ("AXIS_ENABLE_LAST", "TLAST", 1),
                             ("AXIS_ENABLE_ID", "TID", t.tid), ("AXIS_ENABLE_DEST", "TDEST", t.dest)):
        sized = sig in ("TUSER", "TID", "TDEST")
        if width and on(flag, sized):
            ports.append(RtlPort(f"{name}_{sig}", direction, width, "axis"))
    return ports


def _block_ports(mode: str) -> list[RtlPort]:
    if mode == "ap_ctrl_none":
        return []
    if mode not in ("ap_ctrl_hs", "ap_ctrl_chain"):
        raise PortParseError(f"unsupported block protocol '{mode}'")
    ports = [RtlPort("ap_start", "in", 1, "ctrl"), RtlPort("ap_done", "out", 1, "ctrl"),
             RtlPort("ap_idle", "out", 1, "ctrl"), RtlPort("ap_ready", "out", 1, "ctrl")]
    if mode == "ap_ctrl_chain":
        ports.append(RtlPort("ap_continue", "in", 1, "ctrl"))
    return ports


_ARG = re.compile(r"(?P<const>const\s+)?(?P<type>.+?)\s*(?P<ref>[&*]?)\s*(?P<name>\w+)\s*(?:\[(?P<dim>[^\]]+)\])?")


def hls_interface(cpp: str, header: str = "") -> HlsInterface:
    """The RTL ports Vitis HLS generates for the top function in ``cpp`` (typedefs from ``header``)."""
    code = strip_comments(header + "\n" + cpp)
    typedefs = _typedefs(code)
    top, arglist, body = _top_function(strip_comments(cpp))
    pragmas = _pragmas(body)
    ports = [RtlPort("ap_clk", "in", 1, "clock"), RtlPort("ap_rst_n", "in", 1, "reset")]
    bundles: dict[str, bool] = {}  # s_axilite bundle -> holds the block protocol
    ret = pragmas.get("return", {"mode": "ap_ctrl_hs"})
    if ret["mode"] == "s_axilite":
        bundles[ret.get("bundle", "control")] = True
    else:
        ports += _block_ports(ret["mode"])
    for arg in split_top(arglist):
        m = _ARG.fullmatch(arg.strip())
        if not m:
            raise PortParseError(f"cannot read the argument '{arg}' of {top}")
        name, t = m.group("name"), _resolve(m.group("type"), typedefs)
        prag = pragmas.get(name, {})
        mode = prag.get("mode", "ap_fifo" if t.kind == "stream" else "ap_none")
        if t.kind == "stream":
            direction = _stream_direction(name, body)
            if mode == "axis":
                ports += _axis_ports(name, t.inner or t, direction)
            elif mode == "ap_fifo":
                w = (t.inner or t).width
                ports += ([RtlPort(f"{name}_dout", "in", w, "fifo"), RtlPort(f"{name}_empty_n", "in", 1, "fifo"),
                           RtlPort(f"{name}_read", "out", 1, "fifo")] if direction == "in" else
                          [RtlPort(f"{name}_din", "out", w, "fifo"), RtlPort(f"{name}_full_n", "in", 1, "fifo"),
                           RtlPort(f"{name}_write", "out", 1, "fifo")])
            else:
                raise PortParseError(f"unsupported interface mode '{mode}' for stream '{name}'")
        elif m.group("dim"):
            if mode != "ap_memory":
                raise PortParseError(f"array '{name}': only mode=ap_memory is mapped (found '{mode}')")
            depth = eval_int(m.group("dim"), {})
            reads, writes = _array_access(name, body)
            ports += [RtlPort(f"{name}_address0", "out", max(1, clog2(depth)), "memory"),
                      RtlPort(f"{name}_ce0", "out", 1, "memory")]
            if reads:
                ports.append(RtlPort(f"{name}_q0", "in", t.width, "memory"))
            if writes and not m.group("const"):
                ports += [RtlPort(f"{name}_we0", "out", 1, "memory"), RtlPort(f"{name}_d0", "out", t.width, "memory")]
        elif mode == "s_axilite":
            bundles.setdefault(prag.get("bundle", "control"), False)
        elif mode in ("ap_none", "ap_vld"):
            # a pointer or reference is an output when the body assigns through it (a
            # `volatile T *p` that is only read is a polled input)
            direction = "out" if m.group("ref") and _assigned(name, m.group("ref"), body) else "in"
            ports.append(RtlPort(name, direction, t.width))
            if mode == "ap_vld":
                ports.append(RtlPort(f"{name}_ap_vld", direction, 1))
        else:
            raise PortParseError(f"unsupported interface mode '{mode}' for argument '{name}'")
    for bundle, with_ctrl in bundles.items():
        ports += [RtlPort(f"s_axi_{bundle}_{sig}", d, w, "axilite") for sig, d, w in AXILITE]
        if with_ctrl:
            ports.append(RtlPort("interrupt", "out", 1, "ctrl"))
    return HlsInterface(top, tuple(ports))


# ---- the Verilog side ----------------------------------------------------------------------
@dataclass(frozen=True)
class VerilogModule:
    """A module's parameters (name -> default value) and ANSI ports."""

    name: str
    params: dict[str, int]
    ports: tuple[RtlPort, ...]


def verilog_module(text: str, module: str) -> VerilogModule:
    """Parse ``module`` (ANSI port list, integer parameters) out of Verilog ``text``."""
    code = strip_comments(text)
    m = re.search(rf"\bmodule\s+{re.escape(module)}\b\s*", code)
    if not m:
        raise PortParseError(f"module '{module}' not found")
    pos = m.end()
    params: dict[str, int] = {}
    if code[pos] == "#":
        plist, pos = balanced(code, code.index("(", pos))
        for item in split_top(plist):
            pm = re.fullmatch(r"(?:parameter\s+)?(?:integer\s+|\[[^\]]*\]\s*)?(\w+)\s*=\s*(.+)", item.strip(), flags=re.S)
            if not pm:
                raise PortParseError(f"{module}: cannot read the parameter '{item}'")
            params[pm.group(1)] = eval_int(pm.group(2), params)
    plist, _ = balanced(code, code.index("(", pos))
    ports: list[RtlPort] = []
    direction, width = "", 1
    for item in split_top(plist):
        pm = re.fullmatch(r"(?:(input|output|inout)\s+)?(?:(?:wire|reg|logic)\s+)?(?:signed\s+)?(?:\[([^:\]]+):([^\]]+)\]\s*)?(\w+)",
                          item.strip())
        if not pm:
            raise PortParseError(f"{module}: cannot read the port '{item}'")
        if pm.group(1):  # a new declaration; without one, the previous direction and range carry on
            direction = {"input": "in", "output": "out", "inout": "inout"}[pm.group(1)]
            width = eval_int(pm.group(2), params) - eval_int(pm.group(3), params) + 1 if pm.group(2) else 1
        ports.append(RtlPort(pm.group(4), direction, width))
    return VerilogModule(module, params, tuple(ports))


# ---- the comparison ------------------------------------------------------------------------
@dataclass(frozen=True)
class Difference:
    """One way the two views' ports differ."""

    port: str
    what: str  # "only_hls", "only_twin", "direction", "width"
    detail: str = ""


def tdata_padding_ok(hls: RtlPort, twin: RtlPort) -> bool:
    """Vitis pads TDATA to whole bytes: the twin's narrower TDATA is the same port."""
    return hls.key.endswith("_tdata") and hls.width == -(-(twin.width or 0) // 8) * 8


def compare(hls: HlsInterface, twin: VerilogModule) -> list[Difference]:
    """Every difference between the HLS ports and the twin's ports, by case-insensitive name."""
    h = {p.key: p for p in hls.ports}
    t = {p.key: p for p in twin.ports}
    diffs = [Difference(h[k].name, "only_hls") for k in h if k not in t]
    diffs += [Difference(t[k].name, "only_twin") for k in t if k not in h]
    for k in h.keys() & t.keys():
        if h[k].direction != t[k].direction:
            diffs.append(Difference(t[k].name, "direction", f"hls {h[k].direction}, twin {t[k].direction}"))
        elif h[k].width is not None and h[k].width != t[k].width and not tdata_padding_ok(h[k], t[k]):
            diffs.append(Difference(t[k].name, "width", f"hls {h[k].width}, twin {t[k].width}"))
    return sorted(diffs, key=lambda d: (d.what, d.port.lower()))
