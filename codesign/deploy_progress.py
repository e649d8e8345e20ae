"""Resumable per-image results of a deployment: ``<out>/progress.jsonl``.

One key line (what the results depend on), then one fsynced line per finished image, so a
deployment that stops (a board timeout, Ctrl-C) keeps what it finished and a rerun of the same
command resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from codesign.atomic import write_text
from codesign.digest import array_digest
from codesign.netrun import ImageRun
from codesign.quant.qgraph import QGraph

PROGRESS = "progress.jsonl"


def qgraph_digest(qg: QGraph) -> str:
    """Digest of a quantized model's integers, scales and widths (what the deployment depends on)."""
    h = [qg.name, qg.input, qg.output]
    for t in qg.tensors.values():
        h.append(f"{t.name}|{t.shape}|{t.scale!r}|{t.bits}|{t.signed}")
    for n in qg.nodes:
        h.append(f"{n.name}|{n.kind}|{n.inputs}|{n.output}|{sorted((k, str(v)) for k, v in n.attrs.items())}")
        h += [f"{k}:{array_digest(np.asarray(v))}" for k, v in sorted(n.params.items())]
    return hashlib.sha256("\n".join(h).encode()).hexdigest()[:16]


class Progress:
    """``progress.jsonl``: a key line, then one line per finished image (fsynced, so a crash keeps them).

    The key covers the quantized model, the overlay, the board and the activation path; each
    image's record carries the digest of its pixels, so a rerun with more images (or other
    ones) reuses exactly the records of identical images.
    """

    def __init__(self, out: Path, key: str) -> None:
        self.path = out / PROGRESS
        self.key = key
        self.done: dict[int, dict[str, Any]] = {}
        if self.path.is_file():
            lines = self.path.read_text().splitlines()
            try:
                head = json.loads(lines[0]) if lines else {}
            except json.JSONDecodeError:
                head = {}
            if head.get("key") == key:
                for line in lines[1:]:
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:  # a torn last line: that image runs again
                        continue
                    self.done[int(rec["index"])] = rec
        if not self.done:
            write_text(self.path, json.dumps({"key": key}) + "\n")
        else:  # drop a torn tail so appends start on a fresh line
            write_text(self.path, "\n".join([json.dumps({"key": key}), *(json.dumps(r) for r in self.done.values())])
                         + "\n")

    def add(self, rec: dict[str, Any]) -> None:
        """Append one image's record durably."""
        with open(self.path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.done[int(rec["index"])] = rec


def record(run: ImageRun, label: int | None) -> dict[str, Any]:
    logits = np.asarray(run.logits)
    return {"index": run.index, "logits": run.logits, "pred": int(logits.argmax()), "label": label,
            "wall_s": run.wall_s, "layers": [asdict(m) for m in run.layers], "ps_s": run.ps_s, "ps_kind": run.ps_kind}


__all__ = ["PROGRESS", "Progress", "qgraph_digest", "record"]
