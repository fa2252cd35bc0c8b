"""Planted secrets (environment, argv, Hydra overrides, exception messages, log calls) reach no file under
the home, working, cache and catalog directories, no uploaded object, no catalog row and no log line, on
both backends (issue 12.2)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import attrs
import pytest

from deriva_ml.core.definitions import ML_SCHEMA, Status
from deriva_ml.core.redact import REDACTED
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
    blobs.extend(_server_blobs(ml))
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


# --------------------------------------------------------------------- user text and extra metadata files

U = {
    "status_dsn": "StatusDsnPw-7a3Kq",
    "status_token": "ghp_StatusTok0123456789abcdefABCDEF01",
    "status_pair": "StatusPair-8b4Lr",
    "exec_desc": "ExecDescPw-9c5Ms",
    "wf_desc": "WfDescTok-0d6Nt",
    "wf_desc2": "WfDescSet-1e7Ou",
    "ds_desc": "DsDescPw-2f8Pv",
    "ver_desc": "VerDescPw-3g9Qw",
    "asset_desc": "AssetDescPw-4h0Rx",
    "term_desc": "TermDescPw-5i1Sy",
    "meta_yaml": "MetaYamlPw-6j2Tz",
    "meta_json": "MetaJsonTok-7k3Ua",
    "meta_env": "MetaEnvPw-8l4Vb",
}


def _everything(ml, root: Path) -> list[tuple[str, bytes]]:
    blobs: list[tuple[str, bytes]] = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            blobs.append((str(path), path.read_bytes()))
    blobs.append(("catalog rows", _catalog_rows(ml).encode()))
    blobs.extend(_server_blobs(ml))
    return blobs


def test_user_text_bound_for_rows_is_redacted(ml, tmp_path):
    """update_status messages and every description (execution, workflow, dataset, version, asset, term)
    reach the catalog (and the journal, and so sync) redacted (issue 12 leftovers, 1)."""
    wf = ml.create_workflow(
        name="w",
        workflow_type="Training",
        description=f"reads https://api.example.org/x?access_token={U['wf_desc']}",
        url="https://github.com/org/repo/blob/abc123/train.py",
        checksum="e5f6a7b8c9d0e5f6a7b8c9d0e5f6a7b8c9d0e5f6",
    )
    wf = attrs.evolve(wf, rid=ml.add_workflow(wf))
    ml.lookup_workflow(wf.rid).description = f"now postgres://ml:{U['wf_desc2']}@db.example.org/ml"
    ml.add_term("Workflow_Type", "Leaky", description=f"password: {U['term_desc']}")
    cfg = ExecutionConfiguration(
        workflow=wf, description=f"train against postgresql://ml:{U['exec_desc']}@db.example.org/ml"
    )
    with ml.create_execution(cfg) as exe:
        exe.update_status("Running", f"connected to postgres://alice:{U['status_dsn']}@db.example.org/x")
        exe.update_status("Running", f"using token {U['status_token']}")
        exe.update_status(Status.running, f"db password={U['status_pair']} accepted")
        ds = exe.create_dataset(dataset_types=[], description=f"from mysql://u:{U['ds_desc']}@h/d")
        ds.increment_dataset_version("minor", description=f"mysql://u:{U['ver_desc']}@h/d")
        exe.asset_file_path(
            "Model", "weights.bin", description=f"copied with --password {U['asset_desc']}"
        ).write_bytes(b"weights")
    exe.upload_execution_outputs()
    rec = ml.lookup_execution(exe.execution_rid)
    assert rec.description == "train against postgresql://db.example.org/ml"
    leaks = [
        (label, where)
        for where, data in _everything(ml, tmp_path)
        for label, secret in U.items()
        if secret.encode() in data
    ]
    assert leaks == [], leaks


def test_extra_metadata_config_files_are_redacted_binary_files_verbatim(ml, workflow, tmp_path):
    """Extra metadata files: configuration text (YAML, JSON, .env ...) is redacted like Hydra's files;
    other files are the user's and are uploaded byte for byte (issue 12 leftovers, 3)."""
    src = tmp_path / "user-files"
    src.mkdir()
    (src / "train.yaml").write_text(f"db:\n  password: {U['meta_yaml']}\n  host: db.example.org\nlr: 0.1\n")
    (src / "secrets.json").write_text(json.dumps({"api": {"token": U["meta_json"]}, "epochs": 3}))
    (src / ".env").write_text(f"DB_PASS={U['meta_env']}\nMODE=train\n")
    blob = b"\x00\x01binary " + U["meta_yaml"].encode() + b"\xff"
    (src / "weights.bin").write_bytes(blob)
    files = [(src / n, "Execution_Config") for n in ("train.yaml", "secrets.json", ".env", "weights.bin")]
    exe = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="meta"), metadata_files=files)
    with exe:
        pass
    exe.upload_execution_outputs()
    meta = exe.working_dir / "metadata"
    assert "password: <redacted>" in (meta / "train.yaml").read_text()
    assert "host: db.example.org" in (meta / "train.yaml").read_text()
    assert U["meta_json"] not in (meta / "secrets.json").read_text()
    assert '"epochs": 3' in (meta / "secrets.json").read_text()
    assert (meta / ".env").read_text() == f"DB_PASS={REDACTED}\nMODE=train\n"
    assert (meta / "weights.bin").read_bytes() == blob  # the user's binary file, verbatim
    # the uploaded objects are what was written locally
    rows = ml.catalog.query(ML_SCHEMA, "Execution_Metadata")
    by_name = {r["Filename"]: r for r in rows}
    for name in ("train.yaml", "secrets.json", ".env"):
        got = tmp_path / f"check-{name}"
        ml.store.get(by_name[name]["URL"], got, md5=by_name[name]["MD5"])
        assert got.read_bytes() == (meta / name).read_bytes()
        assert U["meta_yaml"].encode() not in got.read_bytes() and U["meta_env"].encode() not in got.read_bytes()


def _server_blobs(ml) -> list[tuple[str, bytes]]:
    """What the ERMrest and Hatrac fakes hold (their files, request log and objects); none on embedded."""
    blobs: list[tuple[str, bytes]] = []
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
    return blobs
