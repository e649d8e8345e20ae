"""DisjointSets against connected components found by a graph search (the oracle)."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.unionfind import DisjointSets

pytestmark = pytest.mark.unit


def _components(n: int, edges: list[tuple[int, int]]) -> list[list[int]]:
    adj: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    seen: set[int] = set()
    out = []
    for i in range(n):
        if i in seen:
            continue
        comp, stack = set(), [i]
        while stack:
            j = stack.pop()
            if j not in comp:
                comp.add(j)
                stack.extend(adj[j] - comp)
        seen |= comp
        out.append(sorted(comp))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_groups_are_the_connected_components(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 30
    edges = [(int(a), int(b)) for a, b in rng.integers(0, n, size=(rng.integers(0, 40), 2))]
    sets: DisjointSets[int] = DisjointSets(range(n))
    for a, b in edges:
        sets.union(a, b)
    assert sets.groups(range(n)) == _components(n, edges)


def test_items_join_when_first_seen() -> None:
    sets: DisjointSets[str] = DisjointSets()
    assert "a" not in sets
    sets.union("a", "b")
    assert "a" in sets and "c" not in sets
    assert sets.groups(["c", "b", "a"]) == [["c"], ["b", "a"]]
