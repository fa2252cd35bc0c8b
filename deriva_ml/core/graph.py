"""Walks over a parent/child relation, level by level, and the one nesting-cycle check (pure).

Nested executions and nested datasets are both a parent/child relation kept in an association table
(``Execution_Execution``, ``Dataset_Dataset``). Listing children, parents or ancestors is the same walk:
ask for the links leaving the current level (one request per level, made by the caller's ``fetch``), step
to the nodes not seen yet, repeat. The walk itself performs no I/O: ``fetch`` is the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Generic, TypeVar

import attrs

N = TypeVar("N", bound=Hashable)


@attrs.frozen
class Walk(Generic[N]):
    """What a walk found: every link fetched as ``(from, to)`` in fetch order, and the nodes reached
    (not the start ones), each once, in the order they were first reached."""

    links: tuple[tuple[N, N], ...]
    reached: tuple[N, ...]


def walk_levels(
    start: Iterable[N], fetch: Callable[[list[N]], Iterable[tuple[N, N]]], *, recurse: bool = True
) -> Walk[N]:
    """Walk from ``start`` level by level: ``fetch(frontier)`` returns the links ``(from, to)`` leaving the
    frontier; the next frontier is the ``to`` nodes not seen before. ``recurse=False`` stops after one level.
    ``fetch`` is called once per level (never with an empty frontier)."""
    frontier = list(dict.fromkeys(start))
    seen = set(frontier)
    links: list[tuple[N, N]] = []
    reached: list[N] = []
    while frontier:
        level = list(fetch(frontier))
        links.extend(level)
        nxt: list[N] = []
        for _, to in level:
            if to not in seen:
                seen.add(to)
                nxt.append(to)
        reached.extend(nxt)
        frontier = nxt if recurse else []
    return Walk(tuple(links), tuple(reached))


def nesting_cycle(parent: N, children: Iterable[N], edges: Iterable[tuple[N, N]]) -> N | None:
    """The first of ``children`` whose link under ``parent`` would close a cycle over the existing
    ``(parent, child)`` edges (a child that is ``parent`` itself or one of its ancestors), else None."""
    down: dict[N, set[N]] = {}
    for p, c in edges:
        down.setdefault(p, set()).add(c)
    for child in children:
        stack: list[N] = [child]
        seen: set[N] = set()
        while stack:
            node = stack.pop()
            if node == parent:
                return child
            if node in seen:
                continue
            seen.add(node)
            stack.extend(down.get(node, ()))
    return None


def reversed_links(links: Sequence[tuple[N, N]]) -> list[tuple[N, N]]:
    """``(to, from)`` for each link: child-to-parent links read upward become ``(parent, child)`` edges."""
    return [(b, a) for a, b in links]
