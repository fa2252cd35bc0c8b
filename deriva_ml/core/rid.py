"""ERMrest resource identifiers (RIDs).

ERMrest renders a row's RID as upper-case base-32 digits in hyphen-separated groups (``1-ABC1``,
``2-GHI``, ``1-X00R-5T8W``); a RID may carry a catalog snapshot after ``@`` (``1-ABC1@2TA-XYZ0``).
"""

from __future__ import annotations

import re
from typing import NewType

from deriva_ml.core.errors import InvalidRID

RID = NewType("RID", str)

_GROUP = r"[0-9A-Z]+"
_RID_RE = re.compile(rf"^{_GROUP}(?:-{_GROUP})*(?:@{_GROUP}(?:-{_GROUP})*)?$")


def is_rid(value: object) -> bool:
    """True when ``value`` is a string in ERMrest RID syntax."""
    return isinstance(value, str) and len(value) <= 64 and _RID_RE.match(value) is not None


def parse_rid(value: object, field: str = "rid") -> RID:
    """Return ``value`` as a :data:`RID` or raise :class:`InvalidRID` naming the field and value."""
    if not is_rid(value):
        raise InvalidRID(value, field)
    return RID(str(value))


def split_snapshot(rid: RID) -> tuple[RID, str | None]:
    """Split ``1-ABC@2TA-XYZ0`` into (``1-ABC``, ``2TA-XYZ0``); no snapshot gives ``None``."""
    base, _, snap = rid.partition("@")
    return RID(base), (snap or None)


#: ERMrest's RID digits (Crockford base 32), of values 0 to 31.
RID_DIGITS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_PY_DIGITS = str.maketrans(RID_DIGITS, "0123456789ABCDEFGHIJKLMNOPQRSTUV")  # the same values for int(x, 32)
_D = "[0-9A-HJKMNP-TV-Z]"
#: Exactly ERMrest's rendering of a counter: no leading zero, then groups of four digits.
_CANONICAL_RE = re.compile(rf"^(?:0|[1-9A-HJKMNP-TV-Z]{_D}{{0,3}}(?:-{_D}{{4}})*)$")


def rid_counter(rid: str) -> int | None:
    """The counter a RID in ERMrest's canonical rendering stands for (``1-0000`` is 32**4), or None for any
    other spelling (leading zeros, lower case, I/L/O/U, a snapshot): two strings never share a counter."""
    if not _CANONICAL_RE.match(rid):
        return None
    return int(rid.replace("-", "").translate(_TO_PY_DIGITS), 32)
