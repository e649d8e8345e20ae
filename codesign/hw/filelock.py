"""An exclusive advisory file lock (``fcntl.flock``) for build caches shared by processes.

Parallel pytest workers and benchmark runs build the same simulator or C-sim artefacts; the
first one to take the lock builds, the others wait and then find the result in the cache.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created with its parent folders) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


__all__ = ["locked"]
