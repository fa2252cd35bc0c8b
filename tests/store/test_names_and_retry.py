"""Pure pieces: the file-name validator, the URL shape and the back-off schedule."""

from __future__ import annotations

import math
import re

import pytest

from deriva_ml.core.errors import InvalidFileName, ValidationError
from deriva_ml.core.retry import backoff_delays
from deriva_ml.store.names import UntrustedURL, object_url, parse_object_url, validate_filename

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
    ref = parse_object_url(url)
    assert (ref.table, ref.md5, ref.filename, ref.version, ref.path) == (
        "Execution_Asset",
        M,
        "my model; v1.tar.gz",
        None,
        url,
    )
    assert object_url("T", M, "a.b", generation=2) == f"/hatrac/T/{M}-2.a.b"
    assert parse_object_url(f"/hatrac/T/{M}-2.a.b").md5 == M


@pytest.mark.parametrize(
    ("url", "table", "md5", "filename", "version", "path"),
    [
        # deriva-py (the reference package) records the version Hatrac returns
        (
            f"/hatrac/Image/{M}.scan_1.png:4SHM5ZV2QBGVRBOX6PTFMLVG2Y",
            "Image",
            M,
            "scan_1.png",
            "4SHM5ZV2QBGVRBOX6PTFMLVG2Y",
            None,
        ),
        (f"/hatrac/T/{M}.a%20b%3Ac.txt:V1", "T", M, "a b:c.txt", "V1", None),
        (f"/hatrac/T/{M}.a b.txt", "T", M, "a b.txt", None, f"/hatrac/T/{M}.a%20b.txt"),  # re-encoded
        ("/hatrac/T/notanmd5.x", "T", None, "notanmd5.x", None, None),
        (f"/hatrac/T/{M}", "T", None, M, None, None),
        (f"/hatrac/T/sub/{M}.x:ABC", "T", M, "x", "ABC", None),  # nested namespaces
        (f"/hatrac/T/{M.upper()}.x", "T", None, f"{M.upper()}.x", None, None),
    ],
)
def test_any_hatrac_object_url_is_read(
    url: str, table: str, md5: str | None, filename: str, version: str | None, path: str | None
) -> None:
    ref = parse_object_url(url)
    assert (ref.table, ref.md5, ref.filename, ref.version) == (table, md5, filename, version)
    assert ref.path == (path or url.rsplit(":", 1)[0] if version else path or url)
    assert ref.url == (ref.path if version is None else f"{ref.path}:{version}")


@pytest.mark.parametrize(
    "url",
    [
        f"/other/T/{M}.x",
        f"/hatrac/{M}.x",  # no namespace
        f"/hatrac/T/{M}.a%2Fb",  # encoded '/'
        f"/hatrac/T/{M}.a%5Cb",  # encoded '\\'
        "/hatrac/T/../../etc/passwd",
        "/hatrac/T/%2e%2e/x",
        "/hatrac/T/./x",
        "/hatrac//T/x",
        "/hatrac/T/x;upload",
        "/hatrac/T/x?y=1",
        "/hatrac/T/x#f",
        "/hatrac/T/x\r\nHost: evil",
        "/hatrac/T/x%0d%0aHost",
        "/hatrac/T/%ff.x",  # not UTF-8
        "/hatrac/T/a:b:c",
        "/hatrac/T:1/x",
        "/hatrac/T/x:not a version",
        "hatrac/T/x",
        "https://evil.example/hatrac/T/x",
        "//evil.example/hatrac/T/x",
        None,
    ],
)
def test_malformed_urls_rejected(url: str) -> None:
    with pytest.raises(UntrustedURL) as info:
        parse_object_url(url)
    assert isinstance(info.value, ValidationError) and repr(url) in str(info.value)


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


# -- issue 12.5: long names, control and bidi characters, NFC/NFD twins -------------------------------


def test_300_character_names_raise_invalid_file_name_naming_the_limit() -> None:
    for name in ("x" * 300, "é" * 128, "数" * 86):  # 300 / 256 / 258 bytes of UTF-8
        with pytest.raises(InvalidFileName, match="limit of 255 bytes"):
            validate_filename(name)
    assert validate_filename("x" * 255) == "x" * 255
    assert validate_filename("数" * 85) == "数" * 85


@pytest.mark.parametrize(
    ("name", "char"),
    [
        ("evil\nname.txt", "U+000A"),
        ("tab\there", "U+0009"),
        ("esc\x1b[31m.txt", "U+001B"),
        ("del\x7f", "U+007F"),
        ("c1\x9b.txt", "U+009B"),
        ("invoice\u202egpj.exe", "U+202E"),  # displays as invoiceexe.jpg
        ("a\u2066b", "U+2066"),
        ("mark\u200f.txt", "U+200F"),
    ],
)
def test_control_and_bidi_characters_are_refused(name: str, char: str) -> None:
    with pytest.raises(InvalidFileName, match=re.escape(char)):
        validate_filename(name)


def test_nfc_and_nfd_twins_are_one_name() -> None:
    nfc, nfd = "caf\u00e9.txt", "cafe\u0301.txt"
    assert nfc != nfd
    assert validate_filename(nfc) == validate_filename(nfd) == nfc
    assert object_url("T", M, nfd) == object_url("T", M, nfc)


def test_long_names_get_a_bounded_recognisable_object_name() -> None:
    from urllib.parse import quote

    from deriva_ml.store.names import bounded_name

    a, b = "a" * 250 + "1.csv", "a" * 250 + "2.csv"
    ba, bb = bounded_name(a), bounded_name(b)
    assert ba != bb and ba.startswith("a" * 100) and ba.endswith(".csv") and "~" in ba
    for name in (a, "é" * 127, "数" * 85, "x" * 255, "数" * 60 + ".verylongextension_of_30_chars"):
        short = bounded_name(name)
        assert len(quote(short, safe="")) <= 160
        url = object_url("Execution_Asset", M, name)
        assert len(url.rsplit("/", 1)[1]) <= 200
        assert parse_object_url(url).filename == short
    assert bounded_name("model.pt") == "model.pt"


def test_asset_file_path_with_a_300_character_name_is_invalid_file_name(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 12.5: not a raw OSError (ENAMETOOLONG) from probing the name on disk."""
    from deriva_ml import DerivaML, ExecutionConfiguration

    monkeypatch.setenv("DERIVA_ML_HOME", str(tmp_path / "home"))
    ml = DerivaML("local", "t", home=tmp_path / "home")
    try:
        wf = ml.create_workflow(
            name="names",
            workflow_type="Training",
            description="long names",
            url="https://github.com/org/repo/blob/abc123/train.py",
            checksum="e5f6a7b8c9d0e5f6a7b8c9d0e5f6a7b8c9d0e5f6",
        )
        exe = ml.create_execution(ExecutionConfiguration(workflow=wf))
        with exe:
            with pytest.raises(InvalidFileName, match="limit of 255 bytes"):
                exe.asset_file_path("Execution_Asset", "x" * 300)
            with pytest.raises(InvalidFileName, match="U\\+202E"):
                exe.asset_file_path("Execution_Asset", "invoice\u202egpj.exe")
            nfd = exe.asset_file_path("Execution_Asset", "cafe\u0301.txt")
            assert nfd.name == "caf\u00e9.txt"
    finally:
        ml.close()
