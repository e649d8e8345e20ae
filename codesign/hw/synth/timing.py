"""Static longest-path timing estimate over a flattened Yosys netlist (7-series, -1 speed grade).

Nodes are net bits; a combinational arc of a cell (LUT, MUXF7/8, CARRY4, distributed-RAM read,
an unregistered DSP48E1 stage) joins an input bit to an output bit with the cell's delay plus the
delay of the net that reaches the input (:mod:`codesign.hw.synth.delays`). Paths start at the
clocked outputs of FFs, block RAMs, registered DSP48E1 stages, LUTRAM and SRLs (clock-to-out)
and end at their clocked inputs (setup); the DSP48E1 and RAMB pipeline parameters (AREG, BREG,
MREG, PREG, DOA_REG, ...) decide which pins are clocked. The longest path to every endpoint is
found in one pass in topological order. There is no placement: every general net costs
``net_ns``.

Top-level ports are taken to be registered on the other side (the overlay's AXI neighbours, a
core's enclosing design): an input arrives a FF clock-to-Q after the edge, an output must arrive
a net and a FF setup before the next one. These boundary paths are reported apart from the
internal ones, and count toward the target too.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import asdict, dataclass, field

from codesign.hw.synth.delays import (
    CLOCK_PORTS,
    FF_CLK_TO_Q_NS,
    FF_SETUP_NS,
    NET_NS,
    cell_timing,
    dedicated_net,
)
from codesign.hw.synth.netlist import Netlist

LOGIC_TYPES = ("LUT", "INV", "MUXF")
_INDEX = re.compile(r"\[\d+\]$")
_GENBLK = re.compile(r"(genblk\d+\.)+")


def short_cell_name(name: str) -> str:
    """A cell name without the ``genblk1.`` runs Yosys' generate scopes add."""
    return _GENBLK.sub("", name)


@dataclass(frozen=True)
class Hop:
    """One step of a path: the net into ``cell`` and the cell's arc from ``pin_in`` to ``pin_out``."""

    cell: str
    type: str
    pin_in: str
    pin_out: str
    net_ns: float
    cell_ns: float
    arrival_ns: float


@dataclass(frozen=True)
class TimingPath:
    """The longest path into one endpoint."""

    kind: str  # reg2reg | in2reg | reg2out | in2out
    start: str
    start_type: str
    end: str
    end_type: str
    start_src: str  # RTL location of the launching / capturing cell, when Yosys kept one
    end_src: str
    total_ns: float
    logic_ns: float
    net_ns: float
    lut_levels: int
    carry4: int
    hops: tuple[Hop, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        """Plain-data view (timing.json)."""
        d = asdict(self)
        d["hops"] = [asdict(h) for h in self.hops]
        return d


@dataclass(frozen=True)
class TimingReport:
    """Worst paths of a netlist and how they were estimated."""

    paths: tuple[TimingPath, ...]  # worst register-to-register paths, distinct start/end registers
    port_paths: tuple[TimingPath, ...]  # worst boundary paths (from inputs / to outputs)
    endpoints: int
    loops: int  # net bits on combinational loops (not timed)
    unmodelled: dict[str, int]  # cell types timed as a LUT because the model does not know them
    net_ns: float

    @property
    def worst_ns(self) -> float:
        """The longest internal register-to-register estimate (0 when there is none)."""
        return self.paths[0].total_ns if self.paths else 0.0

    @property
    def worst_boundary_ns(self) -> float:
        """The longest path through a top-level port (0 when there is none)."""
        return self.port_paths[0].total_ns if self.port_paths else 0.0

    def over(self, limit_ns: float) -> list[TimingPath]:
        """The reported paths, internal and boundary, longer than ``limit_ns``."""
        return [p for p in (*self.paths, *self.port_paths) if p.total_ns > limit_ns]

    def to_dict(self) -> dict[str, object]:
        """Plain-data view (timing.json)."""
        return {
            "worst_ns": round(self.worst_ns, 3), "worst_boundary_ns": round(self.worst_boundary_ns, 3),
            "endpoints": self.endpoints, "loops": self.loops,
            "unmodelled": self.unmodelled, "net_ns": self.net_ns,
            "paths": [p.to_dict() for p in self.paths], "port_paths": [p.to_dict() for p in self.port_paths],
        }


@dataclass
class _Graph:
    """Timing graph: node ids are net bits, plus virtual ids for wide arcs (e.g. DSP stages)."""

    succ: dict[int, list[tuple[int, float, float, int, str, str]]] = field(default_factory=dict)
    launch: dict[int, tuple[float, int]] = field(default_factory=dict)  # bit -> (clk-to-out, cell)
    capture: list[tuple[int, float, float, int, str]] = field(default_factory=list)  # bit, net, setup, cell, pin
    next_virtual: int = -1

    def edge(self, src: int, dst: int, net: float, delay: float, cell: int, pin_in: str, pin_out: str) -> None:
        self.succ.setdefault(src, []).append((dst, net, delay, cell, pin_in, pin_out))


def _pin_label(port: str, idx: int, width: int) -> str:
    return f"{port}[{idx}]" if width > 1 else port


def _build(netlist: Netlist, net_ns: float) -> tuple[_Graph, dict[str, int]]:
    cells = netlist.cells
    driver: dict[int, tuple[int, str]] = {}
    fanout: dict[int, int] = {}
    for i, c in enumerate(cells):
        for port, bits in c.connections.items():
            d = c.directions.get(port)
            for b in bits:
                if not isinstance(b, int):
                    continue
                if d == "output":
                    driver[b] = (i, port)
                elif port not in CLOCK_PORTS:
                    fanout[b] = fanout.get(b, 0) + 1
    g = _Graph()
    unmodelled: dict[str, int] = {}

    def net_delay(b: int, load: int, load_port: str) -> float:
        drv = driver.get(b)
        dcell = cells[drv[0]] if drv else None
        dport = drv[1] if drv else ""
        return 0.0 if dedicated_net(dcell, dport, cells[load], load_port, fanout.get(b, 1)) else net_ns

    for i, c in enumerate(cells):
        t = cell_timing(c)
        if not t.modelled:
            unmodelled[c.type] = unmodelled.get(c.type, 0) + 1
        conn = c.connections
        for (port, idx), delay in t.launch:
            b = conn[port][idx]
            if isinstance(b, int) and delay > g.launch.get(b, (-1.0, 0))[0]:
                g.launch[b] = (delay, i)
        for (port, idx), setup in t.capture:
            b = conn[port][idx]
            if isinstance(b, int):
                g.capture.append((b, net_delay(b, i, port), setup, i, _pin_label(port, idx, len(conn[port]))))
        for ins, outs, delay in t.comb:
            src = [(b, p, k) for p, k in ins if isinstance(b := conn[p][k], int)]
            dst = [(b, p, k) for p, k in outs if isinstance(b := conn[p][k], int)]
            if not src or not dst:
                continue
            if len(src) * len(dst) <= 64:
                for b, p, k in src:
                    nd = net_delay(b, i, p)
                    for ob, op, ok in dst:
                        g.edge(b, ob, nd, delay, i, _pin_label(p, k, len(conn[p])), _pin_label(op, ok, len(conn[op])))
            else:  # one virtual node keeps a wide arc linear in its pins
                v = g.next_virtual
                g.next_virtual -= 1
                for b, p, k in src:
                    g.edge(b, v, net_delay(b, i, p), delay, i, _pin_label(p, k, len(conn[p])), "")
                for ob, op, ok in dst:
                    g.edge(v, ob, 0.0, 0.0, i, "", _pin_label(op, ok, len(conn[op])))
    return g, unmodelled


def _topological(g: _Graph) -> tuple[list[int], int]:
    indeg: dict[int, int] = {}
    nodes: set[int] = set(g.succ)
    for edges in g.succ.values():
        for dst, *_ in edges:
            indeg[dst] = indeg.get(dst, 0) + 1
            nodes.add(dst)
    queue = deque(n for n in nodes if indeg.get(n, 0) == 0)
    order = []
    while queue:
        n = queue.popleft()
        order.append(n)
        for dst, *_ in g.succ.get(n, ()):
            indeg[dst] -= 1
            if indeg[dst] == 0:
                queue.append(dst)
    return order, len(nodes) - len(order)


def _propagate(g: _Graph, order: list[int], sources: dict[int, float]) -> tuple[dict[int, float], dict[int, tuple]]:
    arrival = dict(sources)
    pred: dict[int, tuple] = {}
    for n in order:
        a = arrival.get(n)
        if a is None:
            continue
        for dst, net, delay, cell, pin_in, pin_out in g.succ.get(n, ()):
            t = a + net + delay
            if t > arrival.get(dst, -1.0):
                arrival[dst] = t
                pred[dst] = (n, net, delay, cell, pin_in, pin_out)
    return arrival, pred


def _stem(name: str) -> str:
    return _INDEX.sub("", name)


def _trace(netlist: Netlist, pred: dict[int, tuple], arrival: dict[int, float], bit: int) -> list[Hop]:
    hops: list[Hop] = []
    pending_out = ""
    n = bit
    while n in pred:
        prev, net, delay, cell, pin_in, pin_out = pred[n]
        c = netlist.cells[cell]
        if n < 0:  # the virtual node of a wide arc: merge with the output step that follows it
            hops.append(Hop(short_cell_name(c.name), c.type, pin_in, pending_out, net, delay, round(arrival[n], 3)))
        elif pin_in:
            hops.append(Hop(short_cell_name(c.name), c.type, pin_in, pin_out, net, delay, round(arrival[n], 3)))
        pending_out = pin_out
        n = prev
    hops.reverse()
    return hops


def estimate_timing(netlist: Netlist, net_ns: float = NET_NS, worst: int = 5) -> TimingReport:
    """Longest register-to-register (and port) paths of ``netlist``; ``worst`` distinct ones kept."""
    g, unmodelled = _build(netlist, net_ns)
    order, loops = _topological(g)
    in_bits = {b for d, bits in netlist.ports.values() if d == "input" for b in bits if isinstance(b, int)}
    out_bits = [(_pin_label(p, k, len(bits)), b) for p, (d, bits) in netlist.ports.items() if d == "output"
                for k, b in enumerate(bits) if isinstance(b, int)]
    reg_arr, reg_pred = _propagate(g, order, {b: d for b, (d, _) in g.launch.items()})
    in_arr, in_pred = _propagate(g, order, dict.fromkeys(in_bits, FF_CLK_TO_Q_NS))  # a FF outside

    def start_of(pred: dict[int, tuple], bit: int) -> int:
        while bit in pred:
            bit = pred[bit][0]
        return bit

    def start_label(kind: str, bit: int) -> tuple[str, str, str]:
        if not kind.startswith("reg"):
            return netlist.name_of(bit), "input", ""
        c = netlist.cells[g.launch[bit][1]]
        if c.type.startswith("FD"):
            return netlist.name_of(bit), c.type, c.src
        port = next((p for p, bits in c.connections.items() if bit in bits), "?")
        return f"{short_cell_name(c.name)}.{port}", c.type, c.src

    def make(kind: str, arr: dict, pred: dict, bit: int, cell: int, end: str, net: float, setup: float) -> TimingPath:
        hops = _trace(netlist, pred, arr, bit)
        start, start_type, start_src = start_label(kind, start_of(pred, bit))
        end_type, end_src = ("output", "") if cell < 0 else (netlist.cells[cell].type, netlist.cells[cell].src)
        total = arr[bit] + net + setup
        nets = sum(h.net_ns for h in hops) + net
        return TimingPath(
            kind=kind, start=start, start_type=start_type, end=end, end_type=end_type,
            start_src=start_src, end_src=end_src,
            total_ns=round(total, 3), logic_ns=round(total - nets, 3), net_ns=round(nets, 3),
            lut_levels=sum(1 for h in hops if h.type.startswith(LOGIC_TYPES)),
            carry4=sum(1 for h in hops if h.type == "CARRY4"), hops=tuple(hops),
        )

    def end_name(cell: int, pin: str, bit: int) -> tuple[str, str]:
        """Label of an endpoint, and the key that makes one bus / one signal one entry."""
        c = netlist.cells[cell]
        q = c.connections.get("Q")
        if c.type.startswith("FD") and q and isinstance(q[0], int):
            name = netlist.name_of(q[0])  # the register the FF implements
            return name, _stem(name)
        signal = netlist.name_of(bit)
        return f"{short_cell_name(c.name)}.{pin}", f"{_stem(signal)}->{c.type}.{_stem(pin)}"

    reg_ends, port_ends = [], []
    for bit, net, setup, cell, pin in g.capture:
        if bit in reg_arr:
            reg_ends.append((reg_arr[bit] + net + setup, "reg2reg", reg_arr, reg_pred, bit, cell, pin, net, setup))
        if bit in in_arr:
            port_ends.append((in_arr[bit] + net + setup, "in2reg", in_arr, in_pred, bit, cell, pin, net, setup))
    for label, bit in out_bits:
        for kind, arr, pred in (("reg2out", reg_arr, reg_pred), ("in2out", in_arr, in_pred)):
            if bit in arr:  # a net to the FF outside, and its setup
                port_ends.append((arr[bit] + net_ns + FF_SETUP_NS["D"], kind, arr, pred, bit, -1,
                                  label, net_ns, FF_SETUP_NS["D"]))

    def pick(ends: list) -> tuple[TimingPath, ...]:
        chosen, seen = [], set()
        for _total, kind, arr, pred, bit, cell, pin, net, setup in sorted(ends, key=lambda e: -e[0]):
            end, key = (pin, _stem(pin)) if cell < 0 else end_name(cell, pin, bit)
            if key in seen:
                continue
            seen.add(key)
            chosen.append(make(kind, arr, pred, bit, cell, end, net, setup))
            if len(chosen) == worst:
                break
        return tuple(chosen)

    return TimingReport(
        paths=pick(reg_ends), port_paths=pick(port_ends), endpoints=len(g.capture), loops=loops,
        unmodelled=dict(sorted(unmodelled.items())), net_ns=net_ns,
    )


__all__ = ["Hop", "TimingPath", "TimingReport", "estimate_timing"]
