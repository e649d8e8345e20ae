"""Disjoint sets (union-find with path halving): the layer groups that must share one width."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


class DisjointSets(Generic[T]):
    """Sets of hashable items, merged by :meth:`union`; an item is added when first seen."""

    def __init__(self, items: Iterable[T] = ()) -> None:
        """Start with every item of ``items`` in a set of its own."""
        self._parent: dict[T, T] = {x: x for x in items}

    def __contains__(self, x: object) -> bool:
        return x in self._parent

    def find(self, x: T) -> T:
        """The representative of ``x``'s set."""
        parent = self._parent
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: T, b: T) -> None:
        """Merge the sets of ``a`` and ``b``."""
        self._parent[self.find(a)] = self.find(b)

    def groups(self, items: Iterable[T]) -> list[list[T]]:
        """``items`` grouped by set, each group and the groups in first-occurrence order."""
        out: dict[T, list[T]] = {}
        for x in items:
            out.setdefault(self.find(x), []).append(x)
        return list(out.values())


__all__ = ["DisjointSets"]
