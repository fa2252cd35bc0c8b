"""Dataset bags: a dataset version as a BDBag on disk, built once and cached; :class:`DatasetBag` reads one.

Layout of a bag (``docs/datasets.md``)::

    Dataset_<RID>_<version>[_metadata]/
      bagit.txt  bag-info.txt  manifest-{md5,sha256}.txt  tagmanifest-*.txt  fetch.txt
      data/
        dataset.json            the dataset, its version and snapshot, the datasets of its tree, which
                                CSV holds which table, the membership links and the feature tables
        schema.json             the catalog model (TableDefs, the catalog codec's JSON)
        <schema>/<table>.csv    rows: members, rows they reach by foreign key, feature values, links
        deriva-ml/Dataset.csv, Dataset_Version.csv   the datasets of the tree and their versions
        assets/<Table>/<RID>/<Filename>   asset bytes (materialized bags only)

Reading a bag makes no network request: everything comes from the directory. CSVs are streamed (a
table is read row by row; only what a call returns is held). Building is in ``_bag_build.py`` (shell),
``_bag_plan.py`` (decisions) and ``_bag_writer.py`` (files); analysis helpers in ``_bag_analysis.py``.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deriva_ml.catalog import load_model
from deriva_ml.core.codec import parse_json
from deriva_ml.core.errors import NotFound, ValidationError
from deriva_ml.core.records import DatasetVersion
from deriva_ml.core.rid import RID
from deriva_ml.core.schema_defs import CatalogModel, TableDef
from deriva_ml.dataset._bag_build import (
    absolute_url,
    bag_cache_root,
    bdbag_config_file,
    download_dataset_bag,
)
from deriva_ml.dataset._bag_plan import BAG_FORMAT, BagError, asset_relpath, bag_name, decode_value

if TYPE_CHECKING:
    from deriva_ml.dataset._bag_analysis import BagFeature
    from deriva_ml.dataset._records import DatasetHistory


class DatasetBag:
    """A downloaded dataset version: read its members, nested datasets, tables and features from disk.

    ``path`` is the bag directory; ``dataset_rid`` selects a dataset of the bag's tree (default: the
    dataset the bag was made for — nested datasets are views of the same directory).
    """

    def __init__(self, path: str | os.PathLike[str], dataset_rid: str | None = None) -> None:
        self.path = Path(path)
        try:
            info = parse_json((self.path / "data" / "dataset.json").read_text("utf-8"), "data/dataset.json")
            if not isinstance(info, dict):
                raise ValueError("data/dataset.json is not an object")
            self._info: dict[str, Any] = info
        except (OSError, ValueError) as exc:
            raise BagError(f"{self.path} is not a dataset bag (no readable data/dataset.json): {exc}") from exc
        root = self._info["dataset_rid"]
        self.dataset_rid = RID(dataset_rid or root)
        if self.dataset_rid not in self._info["datasets"]:
            raise NotFound(f"dataset {self.dataset_rid} is not in the bag of {root} ({self.path})")
        if "tables" in self._info and self._info.get("format") != BAG_FORMAT:
            raise BagError(f"{self.path}: bag format {self._info.get('format')}, this version reads {BAG_FORMAT}")
        self._model: CatalogModel | None = None

    # metadata ----------------------------------------------------------------------------------
    @property
    def _entry(self) -> dict[str, Any]:
        return self._info["datasets"][self.dataset_rid]  # type: ignore[no-any-return]

    @property
    def version(self) -> DatasetVersion:
        """The version of this dataset the bag holds (for a nested dataset: its version at the snapshot)."""
        v = self._entry.get("version") or self._info["version"]
        return DatasetVersion.parse(v)

    @property
    def description(self) -> str:
        return str(self._entry.get("description") or "")

    @property
    def dataset_types(self) -> tuple[str, ...]:
        return tuple(self._entry.get("dataset_types") or ())

    @property
    def snapshot(self) -> str | None:
        """The catalog snapshot the bag's rows were read at."""
        return self._info.get("snapshot")

    @property
    def materialized(self) -> bool:
        return bool(self._info.get("materialized"))

    @property
    def model(self) -> CatalogModel:
        """The catalog model saved in ``data/schema.json``."""
        if self._model is None:
            schema = self.path / "data" / "schema.json"
            try:
                data = parse_json(schema.read_text("utf-8"), str(schema))
            except (OSError, ValueError) as exc:
                raise BagError(f"{schema}: unreadable: {exc}") from exc
            self._model = load_model(data)
        return self._model

    def __repr__(self) -> str:
        return f"DatasetBag(rid={self.dataset_rid!r}, version={str(self.version)!r}, path={str(self.path)!r})"

    # tables ------------------------------------------------------------------------------------
    def list_tables(self) -> list[str]:
        """Names of the tables the bag holds rows of (members, reached rows, features, links, datasets)."""
        return sorted(self._info["tables"])

    def _meta(self, table: str) -> dict[str, Any]:
        meta = self._info["tables"].get(table)
        if meta is None:
            raise NotFound(f"table {table!r} is not in this bag; tables: {', '.join(self.list_tables())}")
        return meta  # type: ignore[no-any-return]

    def table_def(self, table: str) -> TableDef:
        """The saved definition of a table the bag holds."""
        meta = self._meta(table)
        tdef = self.model.table(meta["schema"], table)
        if tdef is None:
            raise BagError(f"{self.path}: table {table!r} has rows but no definition in data/schema.json")
        return tdef

    def iter_table(self, table: str) -> Iterator[dict[str, Any]]:
        """The rows of ``table``, one at a time (values typed by the saved schema; an asset's ``Filename``
        is the local path when the file is in the bag)."""
        meta = self._meta(table)
        tdef = self.model.table(meta["schema"], table)
        types = {c.name: c.type for c in tdef.columns} if tdef else {}
        asset = bool(meta.get("asset"))
        data = self.path / "data"
        root = str(data)  # strings, not Paths: pathlib interns every part (a RID per row)
        with (data / meta["csv"]).open(newline="", encoding="utf-8") as f:
            for raw in csv.DictReader(f):
                row = {k: decode_value(v, types.get(k)) for k, v in raw.items()}
                if asset:
                    local = os.path.join(root, asset_relpath(table, row["RID"], row.get("Filename")))
                    if os.path.isfile(local):
                        row["Filename"] = local
                yield row

    def get_table_as_dict(self, table: str) -> list[dict[str, Any]]:
        """Every row the bag holds of ``table`` (see :meth:`iter_table`)."""
        return list(self.iter_table(table))

    def get_table_as_dataframe(self, table: str) -> Any:
        """:meth:`get_table_as_dict` as a pandas DataFrame (needs the ``pandas`` extra)."""
        from deriva_ml.dataset._bag_analysis import to_dataframe

        return to_dataframe(self.get_table_as_dict(table), self.table_def(table).column_names)

    def asset_path(self, table: str, rid: str) -> Path | None:
        """The local file of asset ``rid`` of ``table`` (None when not materialized)."""
        for r in self.iter_table(table):
            if r["RID"] == rid:
                p = Path(r["Filename"]) if r.get("Filename") else None
                return p if p is not None and p.is_absolute() and p.is_file() else None
        return None

    # datasets ----------------------------------------------------------------------------------
    def _descendants(self) -> list[str]:
        return _walk(self.dataset_rid, lambda d: self._info["datasets"].get(d, {}).get("children", []))

    def _ancestors(self) -> list[str]:
        parents: dict[str, list[str]] = {}
        for d, e in self._info["datasets"].items():
            for c in e.get("children", []):
                parents.setdefault(c, []).append(d)
        return _walk(self.dataset_rid, lambda d: parents.get(d, []))

    def list_dataset_children(self, recurse: bool = False) -> list[DatasetBag]:
        """Nested datasets as bags (views of this bag's directory)."""
        rids = self._descendants() if recurse else list(self._entry.get("children", []))
        return [DatasetBag(self.path, r) for r in rids]

    def list_dataset_parents(self, recurse: bool = False) -> list[DatasetBag]:
        """The datasets of this bag's tree this one is nested in (``recurse``: their ancestors too)."""
        rids = self._ancestors()
        if not recurse:
            rids = [d for d, e in self._info["datasets"].items() if self.dataset_rid in e.get("children", [])]
        return [DatasetBag(self.path, r) for r in rids]

    def dataset_history(self) -> list[DatasetHistory]:
        """The versions of this dataset visible at the bag's snapshot, oldest first."""
        from deriva_ml.dataset._records import history_from_rows

        rows = self.iter_table("Dataset_Version") if "Dataset_Version" in self._info["tables"] else iter(())
        return history_from_rows(self.dataset_rid, (r for r in rows if r.get("Dataset") == self.dataset_rid))

    def list_executions(self) -> list[dict[str, Any]]:
        """The Execution rows the bag holds (those that made its feature values and dataset versions)."""
        if "Execution" not in self._info["tables"]:
            return []
        return sorted(self.iter_table("Execution"), key=lambda r: r["RID"])

    # members -----------------------------------------------------------------------------------
    def _member_rids(self, recurse: bool) -> dict[str, set[str]]:
        """Member RIDs by member table for this dataset (and its descendants with ``recurse``), from the
        link CSVs."""
        sources = {self.dataset_rid, *(self._descendants() if recurse else [])}
        out: dict[str, set[str]] = {}
        for member, link in self._info.get("member_tables", {}).items():
            rids = out.setdefault(member, set())
            meta = self._info["tables"].get(link["association"])
            if meta is None:
                continue
            with (self.path / "data" / meta["csv"]).open(newline="", encoding="utf-8") as f:
                dcol, mcol = link["dataset_column"], link["member_column"]
                for r in csv.DictReader(f):
                    if r[dcol] in sources:
                        rids.add(r[mcol])
        return out

    def list_dataset_members(self, recurse: bool = False, limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
        """Member rows by table name (every membership table of the catalog, possibly empty), RID order.

        Asset rows carry ``Filename`` = the local path of the file in a materialized bag.
        """
        out: dict[str, list[dict[str, Any]]] = {}
        for table, rids in self._member_rids(recurse).items():
            if not rids or table not in self._info["tables"]:
                out[table] = []
                continue
            rows = [r for r in self.iter_table(table) if r["RID"] in rids]
            rows.sort(key=lambda r: r["RID"])
            out[table] = rows[:limit] if limit is not None else rows
        return out

    # analysis ----------------------------------------------------------------------------------
    def find_features(self, table: str | None = None) -> list[BagFeature]:
        """The feature tables the bag holds values of (of ``table`` only, when given)."""
        from deriva_ml.dataset._bag_analysis import bag_features

        return [f for f in bag_features(self) if table is None or f.target_table == table]

    def lookup_feature(self, table: str, feature_name: str) -> BagFeature:
        """The feature ``feature_name`` of ``table``; NotFound names the features the bag has."""
        found = self.find_features(table)
        for f in found:
            if f.feature_name == feature_name:
                return f
        raise NotFound(
            f"feature {feature_name!r} of table {table!r} is not in this bag; "
            f"features: {sorted(f.feature_name for f in found) or '(none)'}"
        )

    def list_feature_values(
        self, table: str, feature_name: str, selector: Callable[[Sequence[Any]], Any] | None = None
    ) -> list[Any]:
        """The values of a feature for this dataset's members (recursively), as frozen records with one
        attribute per column; ``selector`` picks one record per target row (e.g. majority vote)."""
        from deriva_ml.dataset._bag_analysis import feature_values

        return feature_values(self, self.lookup_feature(table, feature_name), selector)

    def denormalize_as_dict(self, include_tables: Sequence[str]) -> list[dict[str, Any]]:
        """One row per row of the most-referencing included table (restricted to this dataset's members
        when it is a member table), joined along foreign keys with the other included tables; columns
        are named ``Table.Column``."""
        from deriva_ml.dataset._bag_analysis import denormalize

        return denormalize(self, list(include_tables))

    def denormalize_as_dataframe(self, include_tables: Sequence[str]) -> Any:
        """:meth:`denormalize_as_dict` as a pandas DataFrame (needs the ``pandas`` extra)."""
        from deriva_ml.dataset._bag_analysis import denormalize_columns, to_dataframe

        return to_dataframe(self.denormalize_as_dict(include_tables), denormalize_columns(self, list(include_tables)))

    def restructure_assets(
        self,
        output_dir: str | os.PathLike[str],
        asset_table: str = "Image",
        group_by: Sequence[str] = (),
        *,
        use_symlinks: bool = True,
        by_dataset_type: bool = False,
        selector: Callable[[Sequence[Any]], Any] | None = None,
        missing: str = "unknown",
    ) -> Path:
        """Lay the asset files out as ``output_dir/<label>/.../<file>`` (one folder per label, the layout
        ``torchvision.datasets.ImageFolder`` reads); see ``_bag_analysis.restructure_assets``."""
        from deriva_ml.dataset._bag_analysis import restructure_assets

        return restructure_assets(
            self,
            Path(output_dir),
            asset_table,
            list(group_by),
            use_symlinks=use_symlinks,
            by_dataset_type=by_dataset_type,
            selector=selector,
            missing=missing,
        )


def _walk(start: str, nxt: Callable[[str], Sequence[str]]) -> list[str]:
    out: list[str] = []
    frontier = [start]
    seen = {start}
    while frontier:
        level = []
        for d in frontier:
            for c in nxt(d):
                if c not in seen:
                    seen.add(c)
                    level.append(c)
                    out.append(c)
        frontier = level
    return out


# ------------------------------------------------------------------------------------------- checks


def quick_check(path: Path, materialized: bool) -> str | None:
    """Why a cached bag is broken, or None: a stat-only check (plus the small tag files' MD5s), streamed.

    Checks the tag manifest, that every payload file of the manifest is present (fetch.txt files too
    when ``materialized``) with the size fetch.txt gives, and that the sizes add up to Payload-Oxum.
    An edit that keeps a file's size passes — ``validate_bag(fast=False)`` is the thorough check.
    """
    try:
        for name in ("bagit.txt", "bag-info.txt", "data/dataset.json"):
            if not (path / name).is_file():
                return f"{name} is missing"
        with (path / "tagmanifest-md5.txt").open(encoding="utf-8") as f:
            for line in f:
                digest, _, name = line.strip().partition(" ")
                if not name:
                    continue
                tag = path / name.strip()
                if not tag.is_file():
                    return f"tag file {name} is missing"
                h = hashlib.md5(usedforsecurity=False)
                with tag.open("rb") as t:
                    while buf := t.read(1 << 20):
                        h.update(buf)
                if h.hexdigest() != digest:
                    return f"tag file {name} changed"
        oxum = None
        for line in (path / "bag-info.txt").read_text("utf-8").splitlines():
            if line.startswith("Payload-Oxum:"):
                oxum = line.split(":", 1)[1].strip()
        if oxum is None:
            return "bag-info.txt has no Payload-Oxum"
        want_bytes, want_count = (int(x) for x in oxum.split("."))
        total = count = fetched = 0
        fetch = path / "fetch.txt"
        if fetch.is_file():
            with fetch.open(encoding="utf-8") as f:
                for line in f:
                    parts = line.rstrip("\n").split("\t")
                    if len(parts) != 3:
                        continue
                    length = int(parts[1]) if parts[1].isdigit() else -1
                    if materialized:
                        local = path / parts[2]
                        if not local.is_file():
                            return f"{parts[2]} is missing"
                        size = local.stat().st_size
                        if size != length:
                            return f"{parts[2]} has {size} bytes, fetch.txt says {length}"
                    total += length
                    count += 1
                    fetched += 1
        in_manifest = 0
        with (path / "manifest-md5.txt").open(encoding="utf-8") as f:
            for line in f:
                name = line.rstrip("\n").partition(" ")[2].strip()
                if not name:
                    continue
                if name.startswith("data/assets/"):  # a fetch.txt file (counted above)
                    in_manifest += 1
                    continue
                local = path / name
                if not local.is_file():
                    return f"{name} is missing"
                total += local.stat().st_size
                count += 1
        if in_manifest != fetched:
            return f"manifest lists {in_manifest} asset files, fetch.txt {fetched}"
        if (total, count) != (want_bytes, want_count):
            return f"payload is {total} bytes in {count} files, Payload-Oxum says {oxum}"
    except (OSError, ValueError) as exc:
        return f"unreadable: {exc}"
    return None


def validate_bag(path: str | os.PathLike[str], *, fast: bool = False, config_file: str | None = None) -> None:
    """bdbag validation of a bag directory (raises bdbag's BagValidationError when invalid)."""
    from bdbag import bdbag_api

    if config_file is None:
        config_file = os.environ.get("BDBAG_CONFIG_FILE")
        if not config_file:
            raise ValidationError("pass config_file= or set BDBAG_CONFIG_FILE (bdbag would write ~/.bdbag)")
    bdbag_api.validate_bag(str(path), fast=fast, config_file=config_file)


__all__ = [
    "BagError",
    "DatasetBag",
    "absolute_url",
    "asset_relpath",
    "bag_cache_root",
    "bag_name",
    "bdbag_config_file",
    "download_dataset_bag",
    "quick_check",
    "validate_bag",
]
