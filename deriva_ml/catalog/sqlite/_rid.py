"""RID encoding of the embedded catalog: ERMrest's rendering of a counter (base 32, groups of four)."""

from __future__ import annotations

from deriva_ml.core.rid import RID, RID_DIGITS, rid_counter

#: The first RID is ``1-0000`` like a fresh ERMrest catalog.
FIRST_RID = 32**4

#: Every pair of base-32 digits, so that a 4-digit RID group is two lookups.
_PAIRS: tuple[str, ...] = tuple(RID_DIGITS[i >> 5] + RID_DIGITS[i & 31] for i in range(1024))


def _group(v: int) -> str:
    """The four base-32 digits of ``v`` (0 <= v < 32**4)."""
    return _PAIRS[v >> 10] + _PAIRS[v & 1023]


def encode_rid(n: int) -> RID:
    """ERMrest's RID rendering: base-32 (Crockford digits), in groups of four from the right."""
    if n < 0:
        raise ValueError(f"RID counter {n} is negative")
    groups = []
    while True:
        n, r = divmod(n, 1 << 20)
        groups.append(r)
        if not n:
            break
    head = _group(groups[-1]).lstrip("0") or "0"
    return RID("-".join([head, *(_group(g) for g in reversed(groups[:-1]))]))


def decode_rid(rid: str) -> int | None:
    """Inverse of :func:`encode_rid`; None when ``rid`` is not in canonical form."""
    return rid_counter(rid)
