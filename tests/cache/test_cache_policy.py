"""Property tests of the cache's pure decisions (deriva_ml.cache.policy)."""

from __future__ import annotations

import string
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deriva_ml.cache.policy import (
    SECONDS_PER_DAY,
    CacheEntry,
    entry_dirname,
    entry_from_json,
    entry_key,
    entry_to_json,
    key_from_dirname,
    needs_touch,
    normalize_md5,
    select_expired,
    select_lru_evictions,
    stat_is_fresh,
    validate_filename,
)
from deriva_ml.core.errors import ConfigurationError, InvalidFileName

_group = st.text(alphabet=string.digits + string.ascii_uppercase, min_size=1, max_size=4)
rids = st.builds(lambda a, b: f"{a}-{b}", _group, _group)
md5s = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
times = st.floats(min_value=0, max_value=2e9, allow_nan=False)


@st.composite
def entries(draw: st.DrawFn) -> CacheEntry:
    rid, md5 = draw(rids), draw(md5s)
    return CacheEntry(
        rid=rid,
        md5=md5,
        filename=draw(st.sampled_from(["w.pt", "my model.tar.gz", "données.csv", "README"])),
        path=f"assets/{entry_dirname(rid, md5)}/x",
        size=draw(st.integers(min_value=0, max_value=10**12)),
        mtime_ns=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        last_used=draw(times),
        created=draw(times),
    )


entry_lists = st.lists(entries(), max_size=30, unique_by=lambda e: e.key)


@given(entries(), st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=2**63 - 1))
def test_fresh_exactly_when_size_and_mtime_match(e: CacheEntry, size: int, mtime_ns: int):
    assert stat_is_fresh(e, size, mtime_ns) == (size == e.size and mtime_ns == e.mtime_ns)
    assert stat_is_fresh(e, e.size, e.mtime_ns)


@given(entries())
def test_entry_json_round_trip(e: CacheEntry):
    assert entry_from_json(entry_to_json(e)) == e


@pytest.mark.parametrize("bad", [None, {}, {"rid": "1-A"}, [1, 2], "text"])
def test_malformed_entry_json_raises(bad: object):
    with pytest.raises(ConfigurationError):
        entry_from_json(bad)


@given(rids, md5s)
def test_dirname_and_key_round_trip(rid: str, md5: str):
    assert key_from_dirname(entry_dirname(rid, md5)) == entry_key(rid, md5)


@pytest.mark.parametrize("name", ["junk", "1-A_notmd5", "_" + "a" * 32, "1-a_" + "a" * 32, "1-A_" + "A" * 32])
def test_foreign_dirnames_are_not_ours(name: str):
    assert key_from_dirname(name) is None


@given(md5s)
def test_md5_normalised_to_lower_case(md5: str):
    assert normalize_md5(md5.upper()) == md5


def _plain_name(s: str) -> bool:
    drive = len(s) >= 2 and s[1] == ":" and s[0] in string.ascii_letters
    control = any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in s)
    bidi = any(c in "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069" for c in s)
    surrogate = any(0xD800 <= ord(c) <= 0xDFFF for c in s)
    return not set(s) & {"/", "\\", "\0"} and s not in (".", "..") and not drive and not (control or bidi or surrogate)


@given(st.text(min_size=1, max_size=60).filter(_plain_name))
def test_any_single_component_name_is_accepted(name: str):
    """Any other single component is accepted, in Unicode NFC (NFC/NFD twins are one name)."""
    assert validate_filename(name) == unicodedata.normalize("NFC", name)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "a\0b", "C:evil", "é" * 200])
def test_bad_filenames_rejected(name: str):
    with pytest.raises(InvalidFileName):
        validate_filename(name)


@given(times, times, st.floats(min_value=0, max_value=1e6))
def test_touch_at_most_once_per_interval(last: float, now: float, interval: float):
    assert needs_touch(last, now, interval) == (now - last >= interval)


@given(entry_lists, times)
def test_clear_all_when_no_age_given(es: list[CacheEntry], now: float):
    assert set(select_expired(es, None, now)) == {e.key for e in es}


@given(entry_lists, st.floats(min_value=0, max_value=1e4), times)
def test_clear_removes_exactly_the_old(es: list[CacheEntry], days: float, now: float):
    chosen = set(select_expired(es, days, now))
    for e in es:
        old = e.last_used < now - days * SECONDS_PER_DAY
        assert (e.key in chosen) == old


@given(entry_lists, st.none() | st.integers(min_value=0, max_value=10**13), st.data())
def test_lru_eviction(es: list[CacheEntry], limit: int | None, data: st.DataObject):
    protect = {e.key for e in data.draw(st.lists(st.sampled_from(es), max_size=2))} if es else set()
    chosen = select_lru_evictions(es, limit, protect)
    by_key = {e.key: e for e in es}
    total = sum(e.size for e in es)
    assert len(set(chosen)) == len(chosen)
    assert not set(chosen) & protect  # the entry just added is never evicted
    if limit is None or total <= limit:
        assert chosen == ()
        return
    kept = [e for e in es if e.key not in chosen]
    kept_total = sum(e.size for e in kept)
    unprotected_kept = [e for e in kept if e.key not in protect]
    # fits, or everything evictable is gone
    assert kept_total <= limit or not unprotected_kept
    # least recently used first: every evicted entry was used no later than every kept evictable one
    for k in chosen:
        for e in unprotected_kept:
            assert (by_key[k].last_used, k) <= (e.last_used, e.key)
    # minimal: without the last choice we would still be over the limit
    if chosen:
        assert kept_total + by_key[chosen[-1]].size > limit
