"""Pure pieces: the file-name validator, the URL shape and the back-off schedule."""

from __future__ import annotations

import math

import pytest

from deriva_ml.core.errors import InvalidFileName, ValidationError
from deriva_ml.core.retry import backoff_delays
from deriva_ml.store.names import object_url, parse_object_url, validate_filename

M = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("name", ["model.tar.gz", "my model.pt", "README", "ü.txt", "run:1;c.log", "..x", "x..", " "])
def test_valid_names(name: str) -> None:
    assert validate_filename(name) == name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "empty"),
        (".", "directory"),
        ("..", "directory"),
        ("a/b", "'/'"),
        ("a\\b", "'\\'"),
        ("a\x00b", "NUL"),
        ("/abs", "absolute"),
        ("\\\\server\\share", "absolute"),
        ("C:\\x", "absolute"),
        (None, "string"),
    ],
)
def test_invalid_names_name_value_and_rule(name: object, rule: str) -> None:
    with pytest.raises(InvalidFileName) as info:
        validate_filename(name)
    assert repr(name) in str(info.value) and rule in str(info.value)
    assert isinstance(info.value, ValueError)


def test_url_shape_and_round_trip() -> None:
    url = object_url("Execution_Asset", M, "my model; v1.tar.gz")
    assert url == f"/hatrac/Execution_Asset/{M}.my%20model%3B%20v1.tar.gz"
    assert parse_object_url(url) == ("Execution_Asset", M, "my model; v1.tar.gz")


@pytest.mark.parametrize(
    "url",
    [
        "/hatrac/T/notanmd5.x",
        f"/hatrac/T/{M}",
        f"/other/T/{M}.x",
        f"/hatrac/T/sub/{M}.x",
        f"/hatrac/T/{M}.a%2Fb",
        f"/hatrac/T/{M}.a b",  # not canonically encoded
        f"/hatrac/T/{M.upper()}.x",
    ],
)
def test_malformed_urls_rejected(url: str) -> None:
    with pytest.raises(ValidationError):
        parse_object_url(url)


def test_object_url_rejects_bad_md5() -> None:
    with pytest.raises(ValidationError):
        object_url("T", "xyz", "a")


def test_backoff_plain_doubling() -> None:
    assert backoff_delays(0, 5.0) == ()
    assert backoff_delays(4, 1.0) == (1.0, 2.0, 4.0, 8.0)
    assert backoff_delays(3, 0.5, factor=3.0) == (0.5, 1.5, 4.5)


def test_backoff_jitter_then_cap() -> None:
    assert backoff_delays(3, 1.0, jitter=[0.5, -0.5, 0.0], cap=3.0) == (1.5, 1.0, 3.0)
    assert backoff_delays(2, 10.0, jitter=[1.0, -1.0]) == (20.0, 0.0)


def test_backoff_huge_counts_are_capped_not_overflowing() -> None:
    delays = backoff_delays(2000, 1.0, cap=60.0)
    assert delays[-1] == 60.0 and all(math.isfinite(d) for d in delays)
    assert backoff_delays(3, 0.0) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1, "retry_delay": 1.0},
        {"max_retries": 1.5, "retry_delay": 1.0},
        {"max_retries": True, "retry_delay": 1.0},
        {"max_retries": 1, "retry_delay": -1.0},
        {"max_retries": 1, "retry_delay": math.nan},
        {"max_retries": 1, "retry_delay": 1.0, "factor": 0.5},
        {"max_retries": 1, "retry_delay": 1.0, "cap": -1.0},
        {"max_retries": 2, "retry_delay": 1.0, "jitter": [0.1]},
        {"max_retries": 1, "retry_delay": 1.0, "jitter": [1.5]},
    ],
)
def test_backoff_rejects_bad_parameters(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        backoff_delays(**kwargs)  # type: ignore[arg-type]
