"""JSON read from outside the process — journal lines, sync progress files, catalog rows (term synonyms,
JSON columns), bags, store indexes, sweep state, manifests — never raises a raw RecursionError,
JSONDecodeError or UnicodeDecodeError: a ConfigurationError/ValidationError names the source
(issue 12 leftovers, 5)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from deriva_ml import DerivaML
from deriva_ml.core.codec import MAX_JSON_DEPTH, parse_json
from deriva_ml.core.errors import ConfigurationError, DerivaMLException, ValidationError

DEEP = "[" * 200_000 + "]" * 200_000  # beyond Python's recursion limit: json.loads raises RecursionError
DEEPISH = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)  # parses, but deeper than we accept
HOSTILE = {
    "deep": DEEP,
    "deepish": DEEPISH,
    "deep_object": '{"a":' * 200_000 + "1" + "}" * 200_000,
    "malformed": '{"seq": 1, "batch": [',
    "not_utf8": b"\xff\xfe{",
}


def test_deep_json_is_what_json_loads_cannot_take() -> None:
    with pytest.raises(RecursionError):  # the premise: the raw call fails this way
        json.loads(DEEP)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_parse_json_names_the_source(kind: str) -> None:
    with pytest.raises(ConfigurationError, match="the-source"):
        parse_json(HOSTILE[kind], "the-source")
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, "x") is not None  # the limit itself is fine


@pytest.mark.parametrize("kind", ["deep", "deep_object", "malformed"])
def test_journal_line(tmp_path: Path, kind: str) -> None:
    from deriva_ml.catalog.journal import decode_entry, read_journal

    with pytest.raises(ConfigurationError, match="journal.jsonl:1"):
        decode_entry(str(HOSTILE[kind]), "journal.jsonl:1")
    path = tmp_path / "journal.jsonl"
    path.write_text('{"seq":x' + str(HOSTILE[kind]) + "\n" + "{}\n")
    with pytest.raises(ConfigurationError, match="journal.jsonl"):
        list(read_journal(path, after=1))


@pytest.mark.parametrize("kind", ["deep", "deep_object", "malformed", "not_utf8"])
def test_sync_legacy_progress_file(tmp_path: Path, kind: str) -> None:
    from deriva_ml.sync import _State

    legacy = tmp_path / "sync-host_1.json"
    data = HOSTILE[kind]
    legacy.write_bytes(data if isinstance(data, bytes) else data.encode())
    with pytest.raises(ConfigurationError, match="sync-host_1.json"):
        _State(tmp_path / "sync-host_1.sqlite")
    legacy.write_text('{"last_seq": 3, "rid_map": [1, 2]}')
    (tmp_path / "sync-host_1.sqlite").unlink()
    with pytest.raises(ConfigurationError, match="not a sync progress file"):
        _State(tmp_path / "sync-host_1.sqlite")


@pytest.mark.parametrize("kind", ["deep", "deep_object", "deepish"])
def test_json_column_of_a_catalog_row(tmp_path: Path, kind: str) -> None:
    """A hostile value in a JSON column of the embedded catalog (here a term's Synonyms)."""
    ml = DerivaML("local", "hostile", home=tmp_path / "home")
    ml.add_term("Workflow_Type", "Evil", description="planted")
    path = Path(ml.catalog.path)  # type: ignore[attr-defined]
    ml.close()
    db = sqlite3.connect(path)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    table = next(t for t in tables if t.endswith("Workflow_Type") and "Workflow_Workflow" not in t)
    assert db.execute(f'UPDATE "{table}" SET "Synonyms" = ? WHERE "Name" = ?', (HOSTILE[kind], "Evil")).rowcount == 1
    db.commit()
    db.close()
    ml = DerivaML("local", "hostile", home=tmp_path / "home")
    try:
        with pytest.raises(ConfigurationError, match="Synonyms"):
            ml.lookup_term("Workflow_Type", "Evil")
    finally:
        ml.close()


def test_term_synonyms_from_a_text_row() -> None:
    """Synonyms that arrive as text (a bag, an old server): not a list of names is a ValidationError."""
    from deriva_ml.services.schema import term_from_row as _term_from_row

    assert _term_from_row({"Name": "a", "Synonyms": '["b", "c"]'}).synonyms == ("b", "c")
    assert _term_from_row({"Name": "a", "Synonyms": "plain"}).synonyms == ("plain",)  # not JSON: one synonym
    assert _term_from_row({"Name": "a", "Synonyms": DEEP}).synonyms == (DEEP,)  # never a RecursionError
    with pytest.raises(ValidationError, match="Synonyms of term 'a'"):
        _term_from_row({"Name": "a", "Synonyms": '{"b": 1}'})
    assert _term_from_row({"Name": "a", "Synonyms": DEEPISH}).synonyms == (DEEPISH,)


@pytest.mark.parametrize("name", ["dataset.json", "schema.json"])
@pytest.mark.parametrize("kind", ["deep", "malformed", "not_utf8"])
def test_bag_files(tmp_path: Path, name: str, kind: str) -> None:
    from deriva_ml.dataset._bag import BagError, DatasetBag

    data = tmp_path / "bag" / "data"
    data.mkdir(parents=True)
    (data / "dataset.json").write_text(
        json.dumps({"dataset_rid": "1-AB", "datasets": {"1-AB": {}}, "version": "0.1.0"})
    )
    blob = HOSTILE[kind]
    (data / name).write_bytes(blob if isinstance(blob, bytes) else blob.encode())
    with pytest.raises(BagError, match=name):
        bag = DatasetBag(tmp_path / "bag")
        bag.model  # noqa: B018  (reads schema.json)


@pytest.mark.parametrize("kind", ["deep", "malformed", "not_utf8"])
def test_local_store_index(tmp_path: Path, kind: str) -> None:
    from deriva_ml.core.errors import StoreError
    from deriva_ml.store.local import LocalObjectStore

    store = LocalObjectStore(tmp_path / "objects")
    f = tmp_path / "x.bin"
    f.write_bytes(b"x")
    obj = store.put(f, table="Model", filename="x.bin")
    index = store._index_path(obj.url)
    blob = HOSTILE[kind]
    index.write_bytes(blob if isinstance(blob, bytes) else blob.encode())
    with pytest.raises(StoreError, match="unreadable index entry"):
        store.stat(obj.url)


@pytest.mark.parametrize("kind", ["deep", "deep_object", "malformed", "not_utf8"])
def test_sweep_state_files(tmp_path: Path, kind: str) -> None:
    from deriva_ml.execution._sweep import SweepDir

    sweep = SweepDir(tmp_path / "sweep")
    sweep.state_dir.mkdir(parents=True)
    blob = HOSTILE[kind]
    raw = blob if isinstance(blob, bytes) else blob.encode()
    sweep.parent_file.write_bytes(raw)
    with pytest.raises(ConfigurationError, match="parent.json"):
        sweep.read_parent()
    sweep.sweep_file.write_bytes(raw)
    with pytest.raises(ConfigurationError, match="sweep.json"):
        sweep.read_sweep()
    (sweep.state_dir / "jobs").mkdir()
    (sweep.state_dir / "jobs" / "0.json").write_bytes(raw)
    with pytest.raises(ConfigurationError, match="0.json"):
        sweep.job_outcomes()
    sweep.parent_file.write_text("[1, 2]")
    with pytest.raises(ConfigurationError, match="expected a JSON object"):
        sweep.read_parent()


def test_hatrac_upload_state_is_dropped(tmp_path: Path) -> None:
    """A hostile resumable-upload state file is treated as absent (the upload starts over)."""
    from deriva_ml.store.hatrac import HatracObjectStore

    store = HatracObjectStore("127.0.0.1", credential={}, state_dir=tmp_path / "state")
    (tmp_path / "state").mkdir(exist_ok=True)
    for blob in (DEEP.encode(), b'{"a":', b"\xff", b"[1]"):
        (tmp_path / "state" / "k.json").write_bytes(blob)
        assert store._load_state("k") is None
    store.close()


def test_everything_is_a_deriva_ml_exception() -> None:
    assert issubclass(ConfigurationError, DerivaMLException) and issubclass(ConfigurationError, ValueError)
