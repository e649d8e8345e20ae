"""Content digests of NumPy arrays, for cache keys (calibration memo, stage cache, trace cache)."""

from __future__ import annotations

import hashlib

import numpy as np


def array_digest(*arrays: np.ndarray) -> str:
    """sha1 over every array's bytes, shape and dtype (equal content -> equal key)."""
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}|{a.dtype}|".encode())
        h.update(a.view(np.uint8).reshape(-1).data)
    return h.hexdigest()


__all__ = ["array_digest"]
