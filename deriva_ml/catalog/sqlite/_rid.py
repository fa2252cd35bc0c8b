"""RID encoding of the embedded catalog: ERMrest's rendering of a counter (base 32, groups of four)."""

from __future__ import annotations

from deriva_ml.core.rid import RID

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DIGIT = {c: i for i, c in enumerate(_ALPHABET)}
#: The first RID is ``1-0000`` like a fresh ERMrest catalog.
FIRST_RID = 32**4

#: Every pair of base-32 digits, so that a 4-digit RID group is two lookups.
_PAIRS: tuple[str, ...] = tuple(_ALPHABET[i >> 5] + _ALPHABET[i & 31] for i in range(1024))


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
    n = 0
    for ch in rid.replace("-", ""):
        d = _DIGIT.get(ch)
        if d is None:
            return None
        n = n * 32 + d
    return n if encode_rid(n) == rid else None
