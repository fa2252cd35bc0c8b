"""RidSet: the compact set of RIDs a bag build keeps (one per written row) behaves as a set of strings."""

from __future__ import annotations

import random
import sys

import pytest

from deriva_ml.catalog.sqlite._rid import encode_rid
from deriva_ml.dataset._rid_set import RidSet, rid_number


@pytest.mark.parametrize("n", [0, 1, 31, 32, 32**4 - 1, 32**4, 32**4 + 1, 2**40 + 12345, 2**60 - 1])
def test_rid_number_inverts_the_rendering(n: int) -> None:
    assert rid_number(encode_rid(n)) == n


@pytest.mark.parametrize(
    "rid", ["", "0-0000", "01-0000", "1-000", "1-ABCDE", "1-abcd", "1-ABCI", "1-0000@2T", "1-0000-0000-0000"]
)
def test_anything_else_is_not_a_rid_number(rid: str) -> None:
    """Non-canonical spellings (leading zeros, lowercase, I/L/O/U, snapshots, over 60 bits) have no number,
    so two different strings never share one."""
    assert rid_number(rid) is None


def test_behaves_as_a_set_of_strings_in_any_order() -> None:
    rng = random.Random(7)
    ordered = [str(encode_rid(32**4 + i * 3)) for i in range(20_000)]
    # runs in RID order (the usual case), then repeats, stragglers, out-of-order reads, non-RIDs
    stream = ordered[:8000] + ordered[:100] + ordered[12000:] + ordered[8000:12000][::-1] + ["n/a", "n/a", "1-abcd"]
    stream += [*rng.sample(ordered, 500), str(encode_rid(32**4 + 1))]
    s, ref = RidSet(), set()
    for rid in stream:
        assert s.add(rid) == (rid not in ref), rid
        ref.add(rid)
    assert len(s) == len(ref)
    for rid in [*ordered, "n/a", "1-abcd", str(encode_rid(32**4 + 1)), str(encode_rid(32**4 + 2)), "zz"]:
        assert (rid in s) == (rid in ref), rid
    assert len(s._runs) <= 17


def test_it_is_smaller_than_a_set_of_strings() -> None:
    rids = [str(encode_rid(32**4 + i)) for i in range(50_000)]
    s = RidSet()
    for r in rids:
        s.add(r)
    compact = sum(sys.getsizeof(a) for a in (s._tail, *s._runs))
    plain = sys.getsizeof(set(rids)) + sum(sys.getsizeof(r) for r in rids)
    assert compact * 8 < plain
