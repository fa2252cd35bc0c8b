"""A compact set of RIDs: what a bag build remembers of every row it wrote (to write each RID once).

A canonical RID (ERMrest's rendering of a counter: base-32 Crockford digits in groups of four, e.g.
``1-ABCD``) is kept as its 64-bit number in sorted ``array('q')`` runs — 8 bytes a RID instead of the
~80 of a ``str`` in a ``set`` — and looked up by bisection. Rows arrive in RID order (every read of a bag
build is sorted by RID), so a RID is usually appended to the current run; a RID below the run's last
one starts a new run, short out-of-order runs go to a small ``set`` that becomes a run when it fills up,
and many runs are merged (streamed, ``heapq.merge``) into one. Anything else that is not a canonical RID
is kept as a string.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left

from deriva_ml.core.rid import rid_counter

#: RIDs kept as numbers: those of up to 60 bits (three groups), which an ``array('q')`` holds
_MAX_NUMBER = 1 << 60
_SHORT = 64  # a run shorter than this goes to the set of stragglers
_STRAGGLERS = 4096  # stragglers kept as a set before they become a run
_MAX_RUNS = 16  # more runs than this are merged into one


def rid_number(rid: str) -> int | None:
    """The number a canonical RID renders (``1-0000`` is 32**4), or None for anything else."""
    n = rid_counter(rid)
    return n if n is not None and n < _MAX_NUMBER else None


class RidSet:
    """A set of RID strings (see the module doc): ``add`` says whether the RID was new, ``in`` tests."""

    def __init__(self) -> None:
        self._runs: list[array[int]] = []
        self._tail: array[int] = array("q")
        self._stragglers: set[int] = set()
        self._other: set[str] = set()
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __contains__(self, rid: object) -> bool:
        s = str(rid)
        n = rid_number(s)
        return s in self._other if n is None else self._has(n)

    def add(self, rid: str) -> bool:
        """Add ``rid``; True when it was not in the set."""
        n = rid_number(rid)
        if n is None:
            if rid in self._other:
                return False
            self._other.add(rid)
        else:
            if self._has(n):
                return False
            self._put(n)
        self._len += 1
        return True

    def _has(self, n: int) -> bool:
        if n in self._stragglers:
            return True
        for run in (self._tail, *self._runs):
            i = bisect_left(run, n)
            if i < len(run) and run[i] == n:
                return True
        return False

    def _put(self, n: int) -> None:
        tail = self._tail
        if not tail or n > tail[-1]:
            tail.append(n)
            return
        # out of order: the current run ends here
        if len(tail) < _SHORT:
            self._stragglers.update(tail)
        else:
            self._runs.append(tail)
        self._tail = array("q", [n])
        if len(self._stragglers) >= _STRAGGLERS:
            self._runs.append(array("q", sorted(self._stragglers)))
            self._stragglers = set()
        if len(self._runs) > _MAX_RUNS:
            self._runs = [array("q", heapq.merge(*self._runs))]


__all__ = ["RidSet", "rid_number"]
