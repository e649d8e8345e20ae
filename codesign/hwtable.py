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

_OPTIONAL = ("bram_reads", "bram_writes", "stream_beats", "util_compute", "jobs")
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
        """Raise HwTableError unless every quantizable layer has a row at every width."""
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
        """Read a CSV written by :meth:`save`; malformed files raise HwTableError."""
        p = Path(path)
        if not p.is_file():
            raise ModelFileError(f"hardware table {p} does not exist.")
        meta: dict[str, str] = {}
        body = []
        for line in p.read_text().splitlines():
            if line.startswith("#"):
                k, _, v = line[1:].partition(":")
                meta[k.strip()] = v.strip()
            elif line.strip():
                body.append(line)
        rows = []
        types = {f.name: f.type for f in fields(HwRow)}
        try:
            for rec in csv.DictReader(body):
                kw = {}
                for k, t in types.items():
                    if k not in rec:
                        if k in _OPTIONAL:
                            continue
                        raise HwTableError(f"hardware table {p} lacks column {k!r}.")
                    v = rec[k]
                    kw[k] = v if t == "str" else (float(v) if t == "float" else int(v))
                rows.append(HwRow(**kw))
        except (ValueError, TypeError) as err:
            raise HwTableError(f"hardware table {p} is malformed ({err}).") from None
        if not rows:
            raise HwTableError(f"hardware table {p} has no rows.")
        return cls(rows, meta)
