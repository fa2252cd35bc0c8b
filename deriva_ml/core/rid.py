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
