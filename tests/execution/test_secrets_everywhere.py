"""Planted secrets (environment, argv, Hydra overrides, exception messages, log calls) reach no file under
the home, working, cache and catalog directories, no uploaded object, no catalog row and no log line, on
both backends (issue 12.2)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from deriva_ml.core.definitions import Status
from deriva_ml.execution import ExecutionConfiguration
from deriva_ml.execution.runner import _hydra_metadata_files

# every secret is unique, so a hit names what leaked
S = {
    "env_pass": "EnvPass-7f3Kq",
    "env_pwd": "EnvPwd-8g4Lr",
    "env_token": "EnvTok-9h5Ms",
    "env_dsn_pw": "EnvDsnPw-1j6Nt",
    "env_dsn_hex": "a0b1c2d3e4f5a6b7c8d9",
    "env_webhook": "EnvHookSecret0k7Ou",
    "env_query": "EnvQueryTok2l8Pv",
    "env_nosheme": "EnvNoScheme3m9Qw",
    "argv_apikey": "ArgApiKey-4n0Rx",
    "argv_apikey_eq": "ArgApiKeyEq-5o1Sy",
    "argv_p": "ArgShortP-6p2Tz",
    "argv_pass": "ArgPass-7q3Ua",
    "argv_password": "ArgPassword-8r4Vb",
    "argv_bearer": "ArgBearer-9s5Wc0",
    "hydra_pw": "HydraDbPw-0t6Xd",
    "hydra_token": "HydraApiTok-1u7Ye",
    "hydra_dsn": "HydraDsnPw-2v8Zf",
    "exc_dsn": "ExcDsnPw-3w9Ag",
    "exc_key": "ExcApiKey-4x0Bh",
    "exc_bearer": "ExcBearer-5y1Ci0",
    "exc_aws": "AKIAIOSFODNN7EXAMPL3",
    "log_kw": "LogKwSecret-6z2Dj",
}


def _hydra_job(tmp_path: Path) -> list[tuple[Path, str]]:
    """Hydra's three files as Hydra writes them for ``+db.password=... +api.token=... db.url=...``."""
    job = tmp_path / "hydra-job"
    hdir = job / ".hydra"
    hdir.mkdir(parents=True)
    overrides = [f"+db.password={S['hydra_pw']}", f"+api.token={S['hydra_token']}", "model.lr=0.1"]
    overrides.append(f"db.url=postgresql://ml:{S['hydra_dsn']}@db.example.org/ml")
    (hdir / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (hdir / "config.yaml").write_text(
        f"db:\n  password: {S['hydra_pw']}\n  url: postgresql://ml:{S['hydra_dsn']}@db.example.org/ml\n"
        f"api:\n  token: {S['hydra_token']}\nmodel:\n  lr: 0.1\n"
    )
    (hdir / "hydra.yaml").write_text(
        "hydra:\n  overrides:\n    task:\n"
        + "".join(f"    - {o}\n" for o in overrides)
        + f"  job:\n    override_dirname: {','.join(overrides)}\n"
    )
    hc = SimpleNamespace(output_subdir=".hydra", runtime=SimpleNamespace(output_dir=str(job)))
    dest = tmp_path / "hydra-meta"
    dest.mkdir()
    return _hydra_metadata_files(hc, dest, "20260101_000000")


def _catalog_rows(ml) -> str:
    out = []
    for t in ml.catalog.model().tables:
        out.append(json.dumps(ml.catalog.query(t.schema, t.name), default=str))
    return "\n".join(out)


def test_planted_secrets_reach_no_file_object_row_or_log(ml, workflow, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("MY_DB_PASS", S["env_pass"])
    monkeypatch.setenv("MYSQL_PWD", S["env_pwd"])
    monkeypatch.setenv("SERVICE_TOKEN", S["env_token"])
    monkeypatch.setenv("DATABASE_URL", f"postgres://alice:{S['env_dsn_pw']}@db.example.org/x")
    monkeypatch.setenv("ERROR_REPORTING", f"https://{S['env_dsn_hex']}@o1.ingest.sentry.io/2")
    monkeypatch.setenv("NOTIFY", f"https://hooks.slack.com/services/T01/B02/{S['env_webhook']}")
    monkeypatch.setenv("FEED", f"https://api.example.org/feed?access_token={S['env_query']}&page=1")
    monkeypatch.setenv("CACHE_SERVER", f"cache:{S['env_nosheme']}@redis.example.org")
    argv = [
        "train.py",
        "--api-key",
        S["argv_apikey"],
        f"--api-key={S['argv_apikey_eq']}",
        "-p",
        S["argv_p"],
        "--pass",
        S["argv_pass"],
        "--password",
        S["argv_password"],
        "--header",
        f"Authorization: Bearer {S['argv_bearer']}",
    ]
    handler = logging.FileHandler(tmp_path / "deriva_ml.log")
    logger = logging.getLogger("deriva_ml")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        exe = ml.create_execution(
            ExecutionConfiguration(workflow=workflow, argv=argv, description="secrets test"),
            metadata_files=_hydra_job(tmp_path),
        )
        with pytest.raises(RuntimeError), exe:
            exe.asset_file_path("Model", "weights.bin").write_bytes(b"weights")
            exe._log.info("connecting", password=S["log_kw"])
            raise RuntimeError(
                f"connect postgres://ml:{S['exc_dsn']}@db.example.org/x failed (--api-key {S['exc_key']}, "
                f"Authorization: Bearer {S['exc_bearer']}, aws {S['exc_aws']})"
            )
        exe.upload_execution_outputs()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
        handler.close()
    assert ml.lookup_execution(exe.execution_rid).status is Status.failed
    assert "RuntimeError" in ml.lookup_execution(exe.execution_rid).status_detail

    blobs: list[tuple[str, bytes]] = []
    for path in tmp_path.rglob("*"):  # home (working dir, cache, embedded catalog + objects), Hydra's job dir
        if path.is_file() and not path.is_symlink():
            blobs.append((str(path), path.read_bytes()))
    blobs.append(("catalog rows", _catalog_rows(ml).encode()))
    out, err = capfd.readouterr()
    blobs.append(("stdout/stderr", (out + err).encode()))
    servers = getattr(ml, "servers", None)
    if servers is not None:
        er, hs = servers
        for path in Path(er._dir.name).rglob("*"):
            if path.is_file():
                blobs.append((str(path), path.read_bytes()))
        blobs.append(("ermrest requests", repr(er.log).encode()))
        for name, versions in hs.objects.items():
            for v in versions:
                blobs.append((f"hatrac {name}", v.data))
    checked = 0
    for where, data in blobs:
        for label, secret in S.items():
            assert secret.encode() not in data, f"{label} leaked into {where}"
        checked += 1
    assert checked > 10
    # the uploaded Hydra files are still useful: keys and harmless values kept
    cfg = next(p for p in (exe.working_dir / "metadata").glob("hydra-*-config.yaml"))
    text = cfg.read_text()
    assert "password: <redacted>" in text and "lr: 0.1" in text
