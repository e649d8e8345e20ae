"""Atomic outputs: every file or folder a run writes appears whole or not at all.

A writer fills a temporary sibling (same directory, so the final ``os.replace`` is a rename
on one file system) and the temporary is renamed over the target only when the writer
finished. An interrupted or failing writer therefore never leaves a half-written
``report.md``, ``bitconfig.json`` or export folder behind, and a previous complete version
stays in place until the new one is complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _tmp_sibling(path: Path) -> Path:
    # keep the suffix: writers such as matplotlib and Keras pick the format from it
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file path; on success it is renamed to ``path``, on error removed."""
    dst = Path(path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(dst)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"the writer of {dst} produced no file")
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def copy_file(src: str | Path, dst: str | Path) -> Path:
    """Copy ``src`` to ``dst`` atomically."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it replaces ``path`` (old contents removed)."""
    dst = Path(path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    try:
        yield tmp
        old = None
        if dst.exists():
            old = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(dst, old)
        os.replace(tmp, dst)
        if old is not None:
            remove(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_files(directory: str | Path) -> Iterator[Path]:
    """Yield a temporary directory; on success each file written into it replaces its namesake in ``directory``.

    For writers that produce several files with derived names (a table and its detail CSVs, a
    set of plots): each file is renamed into place only once all of them were written.
    """
    dst = Path(directory)
    dst.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".files.", suffix=".tmp", dir=dst))
    try:
        yield tmp
        for f in sorted(tmp.iterdir()):
            os.replace(f, dst / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove(path: str | Path) -> bool:
    """Delete a file or directory tree if it exists; True when something was removed."""
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
        return True
    if p.exists() or p.is_symlink():
        p.unlink()
        return True
    return False


__all__ = ["atomic_dir", "atomic_files", "atomic_path", "copy_file", "remove", "write_bytes", "write_text"]
