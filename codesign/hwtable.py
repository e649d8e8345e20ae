"""The OQA hardware table: per (layer, bits) cycles per stage, energy and activity.

It is the contract between OQA (which measures it on a ``Board``) and the ILP/search (which
consume it). On disk it is a CSV whose leading ``# key: value`` comment lines state the
device, clock, protocol and units, followed by one row per (layer, bits).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from codesign.errors import CodesignError, ModelFileError
from codesign.graph.ir import Graph

_OPTIONAL = ("bram_reads", "bram_writes", "stream_beats", "util_compute", "jobs", "cycles_bus")
STAGES = ("cycles_transfer_in", "cycles_compute", "cycles_postproc", "cycles_writeback")


class HwTableError(CodesignError):
    """A hardware table is malformed or does not match the model."""


@dataclass(frozen=True)
class HwRow:
    """Measured cost of one layer at one bit-width (weights and activations at ``bits``)."""

    layer: str
    bits: int
    cycles_transfer_in: int
    cycles_compute: int
    cycles_postproc: int
    cycles_writeback: int
    cycles_total: int
    latency_ms: float
    energy_uj: float
    macs: int
    utilization: float
    bram_reads: int = 0
    bram_writes: int = 0
    stream_beats: int = 0
    util_compute: float = 0.0  # MACs / (compute cycles x engine MACs per cycle)
    jobs: int = 0  # overlay jobs (tiles) the layer was split into
    # fabric cycles of the layer outside its jobs' counters: AXI-lite descriptor and post-process
    # writes, DMA set-up, done polls (codesign.board.timed.bus_cycles); 0 in tables without it
    cycles_bus: int = 0

    @property
    def cycles_deployed(self) -> int:
        """What the layer costs on the fabric when deployed: its jobs plus its bus cycles (the ILP's cost)."""
        return self.cycles_total + self.cycles_bus


@dataclass
class HwTable:
    """All rows plus the metadata that makes them interpretable."""

    rows: list[HwRow]
    meta: dict[str, str] = field(default_factory=dict)

    def get(self, layer: str, bits: int) -> HwRow:
        """The row of ``layer`` at ``bits``."""
        for r in self.rows:
            if r.layer == layer and r.bits == bits:
                return r
        raise KeyError((layer, bits))

    @property
    def bits(self) -> list[int]:
        """Bit-widths present in the table."""
        return sorted({r.bits for r in self.rows})

    @property
    def layers(self) -> list[str]:
        """Layer names in first-seen order."""
        return list(dict.fromkeys(r.layer for r in self.rows))

    def check_model(self, graph: Graph, bits: list[int] | None = None) -> None:
        """Raise HwTableError unless the table is this model's and has every layer at every width.

        A table whose ``# model:`` header names another model is refused even when the layer
        names happen to agree (two models built from the same template share them).
        """
        named = self.meta.get("model")
        if named and named != graph.name:
            raise HwTableError(
                f"hardware table header says it was measured on model {named!r}, not {graph.name!r}. Re-run OQA "
                f"for this model (python -m codesign.oqa --model ...), or fix the '# model:' line if it is the same model."
            )
        names = [ly.name for ly in graph.quantizable()]
        have = {(r.layer, r.bits) for r in self.rows}
        want_bits = bits or self.bits
        missing = [(n, b) for n in names for b in want_bits if (n, b) not in have]
        extra = sorted(set(self.layers) - set(names))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} (layer, bits) entries are missing, e.g. {missing[:3]}")
            if extra:
                parts.append(f"it has layers the model lacks: {', '.join(extra[:5])}")
            raise HwTableError(
                f"hardware table ({self.meta.get('model', '?')}) does not match model {graph.name!r}: "
                + "; ".join(parts) + ". Re-run OQA for this model (python -m codesign.oqa)."
            )

    # ---- CSV ------------------------------------------------------------------------
    def to_csv(self) -> str:
        """CSV text with ``# key: value`` metadata lines first."""
        buf = io.StringIO()
        for k, v in self.meta.items():
            buf.write(f"# {k}: {v}\n")
        names = [f.name for f in fields(HwRow)]
        w = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow(asdict(r))
        return buf.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write the CSV."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_csv())
        return p

    @classmethod
    def load(cls, path: str | Path) -> HwTable:
        """Read a CSV written by :meth:`save`; malformed files raise HwTableError naming the line.

        Besides the format, every row must have positive ``cycles_total`` and non-negative stage
        cycles, energy and latency (a negative row would make any config "faster"), and no
        (layer, bits) pair may appear twice.
        """
        p = Path(path)
        if not p.is_file():
            raise ModelFileError(f"hardware table {p} does not exist.")
        meta: dict[str, str] = {}
        body: list[tuple[int, str]] = []
        try:
            text = p.read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise HwTableError(f"hardware table {p} cannot be read ({err}).") from None
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.startswith("#"):
                k, _, v = line[1:].partition(":")
                meta[k.strip()] = v.strip()
            elif line.strip():
                body.append((lineno, line))
        if not body:
            raise HwTableError(f"hardware table {p} has no header and no rows.")
        header = next(csv.reader([body[0][1]]))
        missing = [f.name for f in fields(HwRow) if f.name not in header and f.name not in _OPTIONAL]
        if missing:
            raise HwTableError(f"hardware table {p} line {body[0][0]}: the header lacks column(s) {', '.join(missing)}.")
        rows = [_parse_row(p, lineno, header, line) for lineno, line in body[1:]]
        if not rows:
            raise HwTableError(f"hardware table {p} has no rows.")
        seen: dict[tuple[str, int], int] = {}
        for (lineno, _), r in zip(body[1:], rows):
            first = seen.setdefault((r.layer, r.bits), lineno)
            if first != lineno:
                raise HwTableError(f"hardware table {p} line {lineno}: layer {r.layer!r} at {r.bits} bit already "
                                   f"has a row (line {first}); each (layer, bits) pair must appear once.")
        return cls(rows, meta)


def _parse_row(path: Path, lineno: int, header: list[str], line: str) -> HwRow:
    """One CSV data line -> HwRow; bad values name the line and the column."""
    values = next(csv.reader([line]))
    where = f"hardware table {path} line {lineno}"
    if len(values) != len(header):
        raise HwTableError(f"{where}: {len(values)} fields, the header has {len(header)}.")
    rec = dict(zip(header, values))
    kw: dict[str, object] = {}
    for f in fields(HwRow):
        if f.name not in rec:
            continue
        v = rec[f.name].strip()
        try:
            kw[f.name] = v if f.type == "str" else (float(v) if f.type == "float" else int(v))
        except ValueError:
            raise HwTableError(f"{where}: column {f.name!r} has {v!r}, expected {'a number' if f.type == 'float' else 'an integer'}.") from None
    row = HwRow(**kw)  # type: ignore[arg-type]
    if row.cycles_total <= 0:
        raise HwTableError(f"{where}: cycles_total is {row.cycles_total}; measured cycles must be positive.")
    negative = [k for k in (*STAGES, "latency_ms", "energy_uj", "macs", "cycles_bus") if not getattr(row, k) >= 0]
    if negative:
        raise HwTableError(f"{where}: {', '.join(negative)} must be >= 0 (got "
                           f"{', '.join(str(getattr(row, k)) for k in negative)}).")
    return row
