"""The run folder of ``python -m codesign.search`` and its per-stage cache.

Every stage writes its outputs into the run folder together with a key of the inputs it
depends on (``stages.json``); a rerun with the same key reuses the finished stage, and the
report marks it as cached with the time it originally took. Plain Python: this runs on the board.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from codesign import atomic
from codesign.graph.ir import Graph


def fingerprint(obj: Any) -> str:
    """Short stable hash of JSON-able data."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def graph_fingerprint(graph: Graph) -> str:
    """Hash of a model's structure and weights (so a retrained model invalidates the cache)."""
    h = hashlib.sha256()
    for ly in graph.layers:
        h.update(f"{ly.name}|{ly.op}|{ly.inputs}|{ly.attrs()}".encode())
        for k in sorted(ly.params):
            h.update(np.ascontiguousarray(ly.params[k]).tobytes())
    return h.hexdigest()[:16]


@dataclass
class RunFolder:
    """The run directory and its per-stage cache keys."""

    path: Path
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    reused: set[str] = field(default_factory=set)  # stages this invocation took from the cache

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """Create or reopen a run folder."""
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        f = p / "stages.json"
        stages = json.loads(f.read_text()) if f.is_file() else {}
        return cls(p, stages)

    def cached(self, stage: str, key: str, files: Sequence[str]) -> bool:
        """True when ``stage`` finished with the same key and its files still exist (then it counts as reused)."""
        s = self.stages.get(stage)
        hit = s is not None and s.get("key") == key and all((self.path / f).exists() for f in files)
        if hit:
            self.reused.add(stage)
        return hit

    def done(self, stage: str, key: str, seconds: float, **info: Any) -> None:
        """Record a finished stage (with the UTC time it finished)."""
        finished = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        self.stages[stage] = {"key": key, "seconds": round(seconds, 3), "finished": finished, **info}
        self.reused.discard(stage)
        self.save()

    def save(self) -> None:
        """Write stages.json."""
        atomic.write_text(self.path / "stages.json", json.dumps(self.stages, indent=2, default=str))

    def start(self, model_key: str, clear: Callable[[Path], list[str]]) -> list[str]:
        """Begin a run of the model with fingerprint ``model_key``.

        A folder last used for another model first loses what ``clear`` removes (the search's
        exports and ``quantized/``) and report.md, so nothing in it describes a model it no
        longer holds. Returns what was removed.
        """
        previous = self.stages.get("model", {}).get("key")
        removed = []
        if previous is not None and previous != model_key:
            removed = clear(self.path) + [f for f in ("report.md",) if atomic.remove(self.path / f)]
        self.stages["model"] = {"key": model_key}
        self.save()
        return removed

    def status(self, stage: str) -> str:
        """'computed', or 'cached (computed <time>)' for a stage reused from an earlier run."""
        if stage not in self.reused:
            return "computed"
        return f"cached (computed {self.stages[stage].get('finished', 'in an earlier run')})"

    def seconds(self, stage: str) -> float:
        """Wall time the stage took when it was computed."""
        return float(self.stages.get(stage, {}).get("seconds", 0.0))


__all__ = ["RunFolder", "fingerprint", "graph_fingerprint"]
