"""The fast loop's shortcuts change nothing a test sees: a copied embedded catalog is the catalog
``open_local_catalog`` builds, and every test listed slow in tests/conftest.py exists."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import pytest

from deriva_ml import DerivaML
from deriva_ml.catalog.sqlite import open_local_catalog
from deriva_ml.testing import new_embedded_catalog, temp_catalog

TESTS = Path(__file__).resolve().parent
_VOLATILE = {"RCT", "RMT"}  # creation times: the copy's are when the once-built catalog was made


def _dump(path: Path) -> dict[str, object]:
    """Everything in a catalog file except row times: schema SQL, metadata, model and every table's rows."""
    conn = sqlite3.connect(str(path))
    try:
        schema = sorted(conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))
        out: dict[str, object] = {"schema": schema}
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall():
            cur = conn.execute(f'SELECT * FROM "{name}"')
            cols = [d[0] for d in cur.description]
            keep = [i for i, c in enumerate(cols) if c not in _VOLATILE]
            out[name] = sorted(tuple(str(row[i]) for i in keep) for row in cur.fetchall())
        return out
    finally:
        conn.close()


def test_a_copied_catalog_is_the_catalog_open_local_catalog_builds(tmp_path: Path) -> None:
    built = open_local_catalog("built", tmp_path / "a")
    built_path = Path(built.path)
    built.close()
    copied_path = new_embedded_catalog(tmp_path / "b", "copied")
    assert copied_path == tmp_path / "b" / "catalogs" / "copied" / "catalog.sqlite"
    assert not Path(f"{copied_path}-wal").exists()
    assert _dump(copied_path) == _dump(built_path)
    # and opening it changes nothing: the schema and seeded terms are already there
    before = _dump(copied_path)
    open_local_catalog("copied", tmp_path / "b").close()
    assert _dump(copied_path) == before


def test_each_copy_is_its_own_file(tmp_path: Path) -> None:
    new_embedded_catalog(tmp_path / "a", "one")
    new_embedded_catalog(tmp_path / "b", "two")
    a = DerivaML("local", "one", home=tmp_path / "a")
    b = DerivaML("local", "two", home=tmp_path / "b")
    try:
        assert a.catalog.journal and b.catalog.journal  # opened the way DerivaML opens a new catalog
        a.add_term("Asset_Type", "Only_In_A", "one catalog's term")
        names_a = {r["Name"] for r in a.catalog.query("deriva-ml", "Asset_Type")}
        names_b = {r["Name"] for r in b.catalog.query("deriva-ml", "Asset_Type")}
        assert "Only_In_A" in names_a and "Only_In_A" not in names_b
    finally:
        a.close()
        b.close()


def test_an_existing_catalog_is_left_as_it_is(tmp_path: Path) -> None:
    ml = DerivaML("local", "kept", home=tmp_path)
    ml.add_term("Asset_Type", "Kept_Term", "must survive")
    ml.close()
    new_embedded_catalog(tmp_path, "kept")
    ml = DerivaML("local", "kept", home=tmp_path)
    try:
        assert "Kept_Term" in {r["Name"] for r in ml.catalog.query("deriva-ml", "Asset_Type")}
    finally:
        ml.close()


def test_temp_catalog_opens_a_copy_with_the_domain_schema() -> None:
    with temp_catalog("copy") as ml:
        assert Path(ml.catalog.path).name == "catalog.sqlite"
        assert ml.model().table(ml.domain_schema, "Subject") is not None
        assert {"Input", "Output"} <= {r["Name"] for r in ml.catalog.query("deriva-ml", "Asset_Role")}


def _listed_slow() -> list[str]:
    """The ``_SLOW_TESTS`` set of tests/conftest.py, read from its source."""
    tree = ast.parse((TESTS / "conftest.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(isinstance(t, ast.Name) and t.id == "_SLOW_TESTS" for t in targets):
                return sorted(ast.literal_eval(node.value))  # type: ignore[arg-type]
    raise AssertionError("tests/conftest.py has no _SLOW_TESTS")


@pytest.mark.parametrize("entry", _listed_slow())
def test_every_test_listed_slow_exists(entry: str) -> None:
    module, _, function = entry.partition("::")
    tree = ast.parse((TESTS / module).read_text(encoding="utf-8"))
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert function in names, f"{entry} is listed slow in tests/conftest.py but {module} has no {function}"


def test_a_copied_fake_ermrest_catalog_answers_like_one_create_ml_catalog_made() -> None:
    import sys

    sys.path.insert(0, str(TESTS / "catalog"))
    import requests
    from ermrest_fake import FakeErmrest, new_ml_catalog

    from deriva_ml.catalog.ermrest import ErmrestCatalog, create_ml_catalog
    from deriva_ml.core.effects import Batch, Insert

    def state(host: str, cid: str) -> dict[str, object]:
        base = f"http://{host}/ermrest/catalog/{cid}"
        cat = ErmrestCatalog(host, cid, scheme="http", credential={})
        try:
            rows = {
                t.qualified: sorted(
                    tuple(sorted((k, str(v)) for k, v in r.items() if k not in _VOLATILE))
                    for r in cat.query(t.schema, t.name)
                )
                for t in cat.model().tables
            }
            # the next RIDs handed out are the same too
            added = cat.apply(Batch([Insert("deriva-ml", "Asset_Type", [{"Name": "Next", "Description": "d"}])]))
            return {
                "schema": requests.get(f"{base}/schema", timeout=10).json(),
                "snaptime": requests.get(base, timeout=10).json()["snaptime"],
                "rows": rows,
                "next": [r["RID"] for r in added.inserted[0]],
            }
        finally:
            cat.close()

    with FakeErmrest() as made_here, FakeErmrest() as copied_here:
        made = create_ml_catalog(made_here.host, "proj", scheme="http", credential={})
        made.close()
        copied = new_ml_catalog(copied_here, "proj")
        second = new_ml_catalog(copied_here, "proj")
        assert copied != second and not copied_here.log  # no request reached this server to make them
        assert state(copied_here.host, copied) == state(made_here.host, made.catalog_id)
        # the copies are separate catalogs: the insert above is not in the second one
        names = {
            r["Name"]
            for r in ErmrestCatalog(copied_here.host, second, scheme="http", credential={}).query(
                "deriva-ml", "Asset_Type"
            )
        }
        assert "Next" not in names
