"""The redaction rules (deriva_ml.core.redact): a table of planted secrets, and what must stay intact."""

from __future__ import annotations

import json
import logging
import re

import pytest
import structlog

from deriva_ml._log import REDACT_ENV, get_logger, load_redaction_env
from deriva_ml.core.errors import ConfigurationError
from deriva_ml.core.redact import (
    REDACTED,
    add_redaction_pattern,
    clear_redaction_patterns,
    is_secret_name,
    redact_argv,
    redact_jsonable,
    redact_mapping,
    redact_text,
)

# (text containing a secret, the secret) — exception messages, log lines, YAML, JSON, command lines
TEXT_SECRETS = [
    ("connect failed: postgres://alice:Hunter2pw@db.example.org:5432/x", "Hunter2pw"),
    ("mysql://bob:pa55@10.0.0.1/db", "pa55"),
    # Hydra escapes the colons of an override value in job overrides and descriptions
    ("Sweep job 1: `+db.url=postgresql\\://ml\\:Hyd3scaped@db.example.org/ml`", "Hyd3scaped"),
    ("dsn is postgresql://0123456789abcdef0123@db.example.org/x", "0123456789abcdef0123"),
    ("sentry https://4f2a9c0d3b1e4f5a@o123.ingest.sentry.io/42", "4f2a9c0d3b1e4f5a"),
    ("cannot reach alice:Hunter2pw@db.example.org", "Hunter2pw"),
    ("POST https://hooks.slack.com/services/T0000/B0000/XXXXsecretXXXX failed", "XXXXsecretXXXX"),
    ("https://discord.com/api/webhooks/1234567/abcDEFsecretTOKENvalue_123", "abcDEFsecretTOKENvalue_123"),
    ("https://example.org/hooks/e3b0c44298fc1c149afbf4c8996fb92427ae41e4", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4"),
    ("GET https://api.example.org/data?access_token=tok123secret&page=2", "tok123secret"),
    ("https://x.blob.core.windows.net/c/f?sig=abcSIG123%3D&sv=2020", "abcSIG123"),
    ("https://maps.example.com/x?key=AIzaSyA-secretsecretsecret", "AIzaSyA-secretsecretsecret"),
    ("curl --api-key abc123secret http://x", "abc123secret"),
    ("curl --header 'Authorization: Bearer s3cr3tbearertoken' http://x", "s3cr3tbearertoken"),
    ("Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l", "YWxhZGRpbjpvcGVuc2VzYW1l"),
    ("key id AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("token ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8 leaked", "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sflKxwRJSMeKKF2QT4fwpM", "sflKxwRJSMeKKF2QT4fwpM"),
    ("overrides +db.password=Hunter2pw +api.token=tok-123-abc", "Hunter2pw"),
    ("overrides +db.password=Hunter2pw +api.token=tok-123-abc", "tok-123-abc"),
    ("db:\n  password: Hunter2pw\n  user: bob\n", "Hunter2pw"),
    ("api:\n  token: 'xyz987abc'\n", "xyz987abc"),
    ('{"password": "Hunter2pw", "name": "ok"}', "Hunter2pw"),
    ("Command '['mysql', '-p', 'Hunter2pw', '-u', 'root']' returned non-zero exit status 1.", "Hunter2pw"),
    ("env MY_DB_PASS=Hunter2pw MYSQL_PWD=Hunter3pw", "Hunter2pw"),
    ("env MY_DB_PASS=Hunter2pw MYSQL_PWD=Hunter3pw", "Hunter3pw"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA"),
]

# text that must pass unchanged: RIDs, MD5s, SHA-1s, paths, UUIDs, plain URLs, prose
INTACT = [
    "RID 1-ABCD and 2RY in Model",
    "md5 0123456789abcdef0123456789abcdef",
    "git e5f6a7b8c9d0e5f6a7b8c9d0e5f6a7b8c9d0e5f6",
    "path /home/user/project/outputs/Model/weights 001.bin",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "https://github.com/org/repo/blob/abc123/train.py",
    "git@github.com:org/repo.git",
    "KeyError: 'Model'",
    "the token expired; primary key: RID",
    "learning_rate=0.01 epochs=3 model_config=quick",
    "2026-01-15T10:00:00+00:00",
]


@pytest.mark.parametrize(("text", "secret"), TEXT_SECRETS)
def test_text_secret_is_redacted(text: str, secret: str) -> None:
    out = redact_text(text)
    assert secret not in out
    assert REDACTED in out or out != text


@pytest.mark.parametrize("text", INTACT)
def test_ordinary_values_are_not_redacted(text: str) -> None:
    assert redact_text(text) == text


ARGV = [
    ["--api-key", "S1secret"],
    ["--api-key=S1secret"],
    ["-p", "S1secret"],
    ["--pass", "S1secret"],
    ["--password", "S1secret"],
    ["--token", "S1secret"],
    ["--header", "Authorization: Bearer S1secretS1secret"],
    ["+db.password=S1secret"],
    ["+api.token=S1secret"],
    ["db.url=postgres://u:S1secret@h/d"],
    ["+db.url=postgresql\\://u\\:S1secret@h/d"],
    ["--db", "postgres://u:S1secret@h/d"],
    ["--webhook", "https://hooks.slack.com/services/T00/B00/S1secret"],
]


@pytest.mark.parametrize("args", ARGV)
def test_argv_forms(args: list[str]) -> None:
    out = redact_argv(["train.py", *args, "model.lr=0.1", "--epochs", "3"])
    assert not any("S1secret" in a for a in out), out
    assert out[0] == "train.py" and out[-3:] == ["model.lr=0.1", "--epochs", "3"]


def test_notebook_parameters_are_not_passwords() -> None:
    argv = ["deriva-ml-run-notebook", "nb.ipynb", "-p", "learning_rate", "0.5", "-p", "api_token", "S2secret"]
    assert redact_argv(argv) == [*argv[:6], "api_token", REDACTED]
    assert redact_argv(["mysql", "-p", "S3secret", "db"]) == ["mysql", "-p", REDACTED, "db"]


def test_environment_names_and_values() -> None:
    env = {
        "DB_PASS": "x1",
        "MYSQL_PWD": "x2",
        "SMTP_PASSWORD": "x3",
        "GITHUB_TOKEN": "x4",
        "APP_SECRET": "x5",
        "STRIPE_KEY": "x6",
        "SENTRY_DSN": "https://abc@o1.ingest.sentry.io/1",
        "DATABASE_URL": "postgres://alice:x7secret@db/x",
        "SLACK": "https://hooks.slack.com/services/T1/B1/x8secretx8",
        "PWD": "/home/user",
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/user",
        "KEYBOARD": "us",
    }
    out = redact_mapping(env)
    for name in ("DB_PASS", "MYSQL_PWD", "SMTP_PASSWORD", "GITHUB_TOKEN", "APP_SECRET", "STRIPE_KEY", "SENTRY_DSN"):
        assert out[name] == REDACTED, name
    assert "x7secret" not in out["DATABASE_URL"] and "db/x" in out["DATABASE_URL"]
    assert "x8secret" not in out["SLACK"]
    assert out["PWD"] == "/home/user" and out["PATH"] == env["PATH"] and out["KEYBOARD"] == "us"


def test_jsonable_keys_and_nested_values() -> None:
    doc = {"argv": ["run", "--password", "zz9secret"], "db": {"password": "zz8secret", "host": "h"}, "n": 3}
    out = redact_jsonable(doc)
    assert "zz9secret" not in str(out) and "zz8secret" not in str(out)
    assert out["db"]["host"] == "h" and out["n"] == 3


def test_extra_patterns_by_api_and_environment() -> None:
    try:
        assert redact_text("internal id CORP-123456") == "internal id CORP-123456"
        add_redaction_pattern(r"CORP-\d+")
        assert redact_text("internal id CORP-123456") == f"internal id {REDACTED}"
        add_redaction_pattern(re.compile(r"pin=(\d{4})"))  # a group: only the group goes
        assert redact_text("pin=1234") == f"pin={REDACTED}"
        load_redaction_env({REDACT_ENV: r"project-x-\w+"})
        assert redact_text("see project-x-alpha") == f"see {REDACTED}"
        with pytest.raises(ConfigurationError, match="DERIVA_ML_REDACT_PATTERNS"):
            load_redaction_env({REDACT_ENV: "([unclosed"})
    finally:
        clear_redaction_patterns()
        load_redaction_env({REDACT_ENV: ""})


def test_log_events_are_redacted_with_structlog_configured() -> None:
    with structlog.testing.capture_logs() as logs:
        log = get_logger("deriva_ml.test", dsn="postgres://u:Bound5ecret@h/d")
        log.info("connect postgres://u:Ev3ntSecret@h/d", password="Kw4secret", argv=["--token", "Arg5ecret"])
        try:
            raise RuntimeError("failed with --api-key Exc5ecret")
        except RuntimeError:
            log.exception("boom")
    text = repr(logs)
    for s in ("Bound5ecret", "Ev3ntSecret", "Kw4secret", "Arg5ecret", "Exc5ecret"):
        assert s not in text, s
    assert "boom" in text


def test_log_events_are_redacted_whatever_the_configuration(caplog, capsys) -> None:
    """structlog unconfigured (events go to stdlib logging) or configured (events go to its renderer)."""
    with caplog.at_level(logging.DEBUG, logger="deriva_ml"):
        get_logger("deriva_ml.test").info("upload", url="https://h/x?sig=Sig5ecret", token="Tok5ecret")
    seen = caplog.text + capsys.readouterr().out
    assert "Sig5ecret" not in seen and "Tok5ecret" not in seen
    assert "upload" in seen


def test_everything_under_a_secret_name_is_redacted_whatever_its_type() -> None:
    doc = {
        "db_password": 1234,
        "pw": 0.5,
        "tokens": ["zz1secret", "zz2secret"],
        "secret": {"value": "zz3secret", "n": 987654, "flag": True, "none": None},
        "credentials": [{"user": "bob", "pin": 4242}],
        "api_key": None,
        "password_required": True,
        "empty": {"password": ""},
        "ok": {"n": 987654, "name": "bob"},
    }
    out = redact_jsonable(doc)
    assert out["db_password"] == REDACTED and out["pw"] == REDACTED
    assert out["tokens"] == [REDACTED, REDACTED]
    assert out["secret"] == {"value": REDACTED, "n": REDACTED, "flag": True, "none": None}  # keys kept
    assert out["credentials"] == [{"user": REDACTED, "pin": REDACTED}]
    assert out["api_key"] is None and out["password_required"] is True and out["empty"] == {"password": ""}
    assert out["ok"] == {"n": 987654, "name": "bob"}
    assert not any(s in json.dumps(out) for s in ("zz1secret", "zz2secret", "zz3secret", "1234", "4242"))


@pytest.mark.parametrize(
    "name",
    [
        "max_tokens",
        "max_new_tokens",
        "num_tokens",
        "tokenizer",
        "tokenizer_name",
        "token_type_ids",
        "token_count",
        "tokens_per_second",
        "prompt_tokens",
    ],
)
def test_machine_learning_token_names_are_hyperparameters_not_secrets(name: str) -> None:
    assert not is_secret_name(name)
    assert redact_jsonable({name: 512})[name] == 512
    assert redact_jsonable({name: "bert-base-uncased"})[name] == "bert-base-uncased"


@pytest.mark.parametrize(
    "name",
    ["token", "tokens", "api_token", "HF_TOKEN", "access_token", "id_token", "tokenizer_api_key", "max_tokens_secret"],
)
def test_credential_token_names_stay_secret(name: str) -> None:
    assert is_secret_name(name)
    assert redact_jsonable({name: "zz4secret"})[name] == REDACTED
