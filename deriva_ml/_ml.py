"""``DerivaML``: the user's handle on one catalog (embedded or live) and its object store.

A thin shell. It owns the adapters (catalog, object store, asset cache), keeps the catalog model and
vocabulary terms it has fetched, and turns each user call into: gather inputs, call pure functions,
apply the effects, log. Heavy libraries (deriva-py, dulwich, bdbag, hydra) load only when used.
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from deriva_ml._log import get_logger
from deriva_ml._util import safe_name
from deriva_ml.catalog.port import Catalog
from deriva_ml.context import LOCAL_HOST as LOCAL_HOST
from deriva_ml.context import Directories, HostIdentity, LazyCache, Ports
from deriva_ml.core.codec import parse_json
from deriva_ml.core.definitions import ML_SCHEMA, MLVocab
from deriva_ml.core.effects import Batch, Insert, Update
from deriva_ml.core.errors import (
    DerivaMLException,
    ExecutionError,
    RIDNotFound,
    ValidationError,
)
from deriva_ml.core.plans import (
    MLLayout,
    plan_add_workflow,
    plan_replace_workflow_types,
    plan_status_update,
    would_create_cycle,
)
from deriva_ml.core.records import (
    AssetSpec,
    DatasetSpec,
    ExecutionConfiguration,
    ExecutionRecord,
    StatusChange,
    Term,
    Workflow,
    transition,
)
from deriva_ml.core.redact import redact_description
from deriva_ml.core.rid import RID, parse_rid
from deriva_ml.core.schema_defs import ColumnDef, TableDef
from deriva_ml.core.status import STATUS_ORDER, TERMINAL, Status
from deriva_ml.services.schema import SchemaService
from deriva_ml.store.port import ObjectStore

if TYPE_CHECKING:
    from deriva_ml.cache import AssetCache
    from deriva_ml.execution._execution import Execution

#: Manifest state naming the Execution row it belongs to (the row's RCT: RIDs can repeat across catalogs).
_IDENTITY = "execution_rct"

#: Status_Detail of an execution whose inputs are being fetched.
INITIALIZING_DETAIL = "Downloading input datasets and assets"


def deriva_ml_home(home: str | os.PathLike[str] | None = None) -> Path:
    """Where embedded catalogs, working directories and the cache live by default.

    ``home`` argument, else ``$DERIVA_ML_HOME``, else ``~/.deriva-ml``.
    """
    if home is not None:
        return Path(home).expanduser()
    env = os.environ.get("DERIVA_ML_HOME")
    return Path(env).expanduser() if env else Path.home() / ".deriva-ml"


def list_embedded_catalogs(home: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the embedded catalogs under ``home`` (those with a ``catalog.sqlite``), sorted. Reads only."""
    root = deriva_ml_home(home) / "catalogs"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "catalog.sqlite").is_file())


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DerivaML:
    """A connection to one deriva-ml catalog and its object store.

    ``DerivaML("local", "my-project")`` opens (creating on first use) an embedded catalog under
    ``$DERIVA_ML_HOME/catalogs/my-project``; ``DerivaML("host.example.org", "1")`` attaches to a live
    DERIVA server (ERMrest catalog ``1``, Hatrac object store) with the user's deriva credential.

    ``create=False`` opens an embedded catalog only if it exists (:class:`UnknownCatalog`, listing the
    existing ones, otherwise): what read-only tools use, so that a typo never creates a catalog.

    ``working_dir`` holds execution directories (default ``$DERIVA_ML_HOME/work/<host>_<catalog>``),
    ``cache_dir`` the asset and bag cache (default ``$DERIVA_ML_HOME/cache``). ``allow_dirty=False``
    (or ``DERIVA_ML_ALLOW_DIRTY=false``) refuses workflows whose source has uncommitted changes.
    """

    def __init__(
        self,
        hostname: str = LOCAL_HOST,
        catalog_id: str | int = "default",
        *,
        domain_schema: str | None = None,
        credential: Mapping[str, Any] | None = None,
        working_dir: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        home: str | os.PathLike[str] | None = None,
        allow_dirty: bool = True,
        session_config: Mapping[str, Any] | None = None,
        catalog: Catalog | None = None,
        store: ObjectStore | None = None,
        clock: Callable[[], datetime] | None = None,
        project_root: str | os.PathLike[str] | None = None,
        upload_workers: int = 4,
        create: bool = True,
    ) -> None:
        self.home = deriva_ml_home(home)
        self.allow_dirty = allow_dirty
        self.credential = credential
        catalog_id = str(catalog_id)
        self._log = get_logger("deriva_ml", host=hostname, catalog=catalog_id)
        host = HostIdentity(hostname, catalog_id)
        if catalog is not None:
            if store is None:
                raise ValidationError("store must be given together with catalog")
        elif hostname == LOCAL_HOST:
            if not create and catalog_id not in list_embedded_catalogs(self.home):
                from deriva_ml.core.errors import UnknownCatalog

                raise UnknownCatalog(
                    catalog_id, list_embedded_catalogs(self.home), where=f"under {self.home / 'catalogs'}"
                )
            catalog, store = self._open_embedded(catalog_id)
        else:
            catalog, store = self._open_live(hostname, catalog_id, session_config)
        assert store is not None
        dirs = Directories(
            home=self.home,
            working_dir=(
                Path(working_dir)
                if working_dir is not None
                else self.home / "work" / f"{safe_name(hostname)}_{catalog_id}"
            ).absolute(),
            cache_dir=(Path(cache_dir) if cache_dir is not None else self.home / "cache").absolute(),
            project_root=Path(project_root) if project_root else None,
        )
        #: The ports this handle works through (datasets, executions and services take these, never ``self``).
        self._ports = Ports(
            catalog=catalog,
            store=store,
            lazy_cache=LazyCache(dirs.cache_dir),
            clock=clock or _utcnow,
            dirs=dirs,
            host=host,
            upload_workers=max(1, int(upload_workers)),
            log=self._log,
        )
        #: Tables, vocabularies, terms and RID resolution.
        self._schema = SchemaService(self._ports, domain_schema)
        #: (url, checksum) -> RID of workflows this handle registered or found (rows are never re-keyed)
        self._workflow_rids: dict[tuple[str | None, str | None], RID] = {}
        #: (table, md5, filename) -> (url, length, asset row RID) of metadata objects this handle stored and
        #: cataloged (content-addressed names); a RID found stale is forgotten (see Execution._catalog_outputs)
        self._stored_objects: dict[tuple[str, str, str], tuple[str, int, RID]] = {}

    # --------------------------------------------------------------------------------- ports (views)

    @property
    def ports(self) -> Ports:
        """The catalog, store, cache, clock, directories and host identity of this handle."""
        return self._ports

    def _swap_ports(self, **changes: Any) -> None:
        """Replace ports (tests inject counting adapters this way); services are rebuilt on the new ports."""
        self._ports = attrs.evolve(self._ports, **changes)
        if "catalog" in changes:  # what was fetched from the old catalog is not this one's
            self._schema = SchemaService(self._ports, self._schema.domain_schema)
        else:
            self._schema.ports = self._ports

    @property
    def catalog(self) -> Catalog:
        return self._ports.catalog

    @catalog.setter
    def catalog(self, value: Catalog) -> None:
        self._swap_ports(catalog=value)

    @property
    def store(self) -> ObjectStore:
        return self._ports.store

    @store.setter
    def store(self, value: ObjectStore) -> None:
        self._swap_ports(store=value)

    @property
    def host_name(self) -> str:
        return self._ports.host.host_name

    @property
    def catalog_id(self) -> str:
        return self._ports.host.catalog_id

    @property
    def working_dir(self) -> Path:
        return self._ports.dirs.working_dir

    @property
    def cache_dir(self) -> Path:
        return self._ports.dirs.cache_dir

    @cache_dir.setter
    def cache_dir(self, value: str | os.PathLike[str]) -> None:
        self._ports.lazy_cache.close()
        cache_dir = Path(value).absolute()
        self._swap_ports(dirs=attrs.evolve(self._ports.dirs, cache_dir=cache_dir), lazy_cache=LazyCache(cache_dir))

    @property
    def upload_workers(self) -> int:
        """Files uploaded in parallel by upload_execution_outputs (network- and fsync-bound work)."""
        return self._ports.upload_workers

    @property
    def _project_root(self) -> Path | None:
        return self._ports.dirs.project_root

    @property
    def _clock(self) -> Callable[[], datetime]:
        return self._ports.clock

    @property
    def domain_schema(self) -> str | None:
        return self._schema.domain_schema

    @domain_schema.setter
    def domain_schema(self, value: str | None) -> None:
        self._schema.domain_schema = value

    # ------------------------------------------------------------------------------------- adapters

    def _open_embedded(self, catalog_id: str) -> tuple[Catalog, ObjectStore]:
        from deriva_ml.catalog.sqlite import open_local_catalog
        from deriva_ml.store.local import LocalObjectStore

        catalog = open_local_catalog(catalog_id, self.home)
        # every later write is journalled in the same transaction: the basis of ``deriva_ml.sync``
        catalog.journal = True
        return catalog, LocalObjectStore(Path(catalog.path).parent / "objects")

    def _open_live(
        self, host_name: str, catalog_id: str, session_config: Mapping[str, Any] | None
    ) -> tuple[Catalog, ObjectStore]:
        from deriva_ml.catalog.ermrest import ErmrestCatalog
        from deriva_ml.store.hatrac import HatracObjectStore

        catalog = ErmrestCatalog(host_name, catalog_id, credential=self.credential, session_config=session_config)
        store = HatracObjectStore(
            host_name,
            credential=self.credential,
            session_config=session_config,
            # chunked uploads resume across processes from here
            state_dir=self.home / "upload-state" / safe_name(host_name),
        )
        return catalog, store

    @property
    def cache(self) -> AssetCache:
        """The content-addressed asset cache (opened on first use)."""
        return self._ports.cache

    def close(self) -> None:
        self._ports.lazy_cache.close()
        self.catalog.close()

    def __enter__(self) -> DerivaML:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DerivaML({self.host_name!r}, {self.catalog_id!r}, domain_schema={self.domain_schema!r})"

    def _now(self) -> datetime:
        return self._clock()

    # ---------------------------------------------------------------------------------------- model

    def model(self, *, refresh: bool = False) -> Any:
        return self._schema.model(refresh=refresh)

    @property
    def layout(self) -> MLLayout:
        """Which variant of the deriva-ml schema this catalog has (ours or a reference version's)."""
        return self._schema.layout

    def _require_domain_schema(self, schema: str | None) -> str:
        return self._schema.require_domain_schema(schema)

    def _table(self, name: str, schema: str | None = None) -> TableDef:
        return self._schema.table(name, schema)

    def _asset_table(self, name: str) -> TableDef:
        return self._schema.asset_table(name)

    def list_asset_tables(self) -> list[str]:
        """Names of every asset table (deriva-ml's and the domain's)."""
        return self._schema.list_asset_tables()

    def _vocabulary(self, name: str) -> TableDef:
        return self._schema.vocabulary(name)

    # ------------------------------------------------------------------------------- domain helpers

    def create_vocabulary(self, vocab_name: str, comment: str = "", *, schema: str | None = None) -> TableDef:
        """Create a controlled vocabulary table in the domain schema."""
        from deriva_ml.catalog.schema import vocabulary_table

        t = vocabulary_table(self._require_domain_schema(schema), vocab_name, comment)
        self.catalog.create_tables([t])
        return t

    def create_table(
        self,
        name: str,
        columns: Sequence[ColumnDef] = (),
        *,
        references: Sequence[str] = (),
        schema: str | None = None,
        comment: str = "",
    ) -> TableDef:
        """Create a plain domain table (e.g. ``Subject``); ``references`` names tables it refers to."""
        from deriva_ml.catalog.schema import plain_table

        refs = {r: self._table(r) for r in references}
        t = plain_table(self._require_domain_schema(schema), name, columns, references=refs, comment=comment)
        self.catalog.create_tables([t])
        return t

    def create_asset(
        self,
        asset_name: str,
        column_defs: Sequence[ColumnDef] = (),
        referenced_tables: Sequence[str] = (),
        comment: str = "",
        *,
        schema: str | None = None,
    ) -> TableDef:
        """Create a domain asset table (with ``_Asset_Type`` and ``_Execution`` tables) and its Asset_Type term."""
        from deriva_ml.catalog.schema import asset_table

        refs = [self._table(r) for r in referenced_tables]
        tables = asset_table(self._require_domain_schema(schema), asset_name, column_defs, refs, comment=comment)
        self.catalog.create_tables(list(tables))
        self.add_term(MLVocab.asset_type, asset_name, f"A {asset_name} asset", exists_ok=True)
        return tables[0]

    def add_term(
        self,
        table: str,
        term_name: str,
        description: str = "",
        synonyms: Sequence[str] | None = None,
        exists_ok: bool = True,
    ) -> Term:
        """Add a term to a vocabulary (the existing term is returned when ``exists_ok``)."""
        return self._schema.add_term(table, term_name, description, synonyms, exists_ok)

    def lookup_term(self, table: str, term_name: str) -> Term:
        """A term by name or synonym; :class:`UnknownTerm` names the known terms otherwise."""
        return self._schema.lookup_term(table, term_name)

    def list_vocabulary_terms(self, table: str) -> list[Term]:
        return self._schema.list_terms(table)

    def _validate_terms(self, table: str, names: Iterable[str]) -> tuple[str, ...]:
        return self._schema.validate_terms(table, names)

    def _default_asset_types(self, table: str) -> tuple[str, ...]:
        return self._schema.default_asset_types(table)

    # ------------------------------------------------------------------------------------ workflows

    def create_workflow(
        self,
        name: str,
        workflow_type: str | Sequence[str],
        description: str = "",
        *,
        url: str | None = None,
        checksum: str | None = None,
        version: str | None = None,
        caller_file: str | os.PathLike[str] | None = None,
    ) -> Workflow:
        """A workflow for the calling script or notebook (validated, detected, not yet registered)."""
        wf = Workflow(
            name=name, workflow_type=workflow_type, description=description, url=url, checksum=checksum, version=version
        )
        wf = attrs.evolve(wf, workflow_type=self._validate_terms(MLVocab.workflow_type, wf.workflow_type))
        return self._with_source(wf, caller_file=caller_file)

    def _with_source(self, wf: Workflow, *, caller_file: str | os.PathLike[str] | None = None) -> Workflow:
        """Fill url/checksum/version/is_notebook from the calling source where the workflow lacks them."""
        from deriva_ml.source import detect_source
        from deriva_ml.source.detect import UNKNOWN_VERSION

        if wf.url and wf.checksum:  # the caller says what ran; nothing to detect a version from
            return wf if wf.version else attrs.evolve(wf, version=UNKNOWN_VERSION)

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            info = detect_source(
                caller_file=caller_file, url=wf.url, checksum=wf.checksum, allow_dirty=self.allow_dirty
            )
        for w in caught:  # re-issue at the user's line, not ours
            warnings.warn(w.message, w.category, stacklevel=_user_stacklevel())
        if info.repo_root and self._project_root is None:
            self._swap_ports(dirs=attrs.evolve(self._ports.dirs, project_root=Path(info.repo_root)))
        return attrs.evolve(
            wf,
            url=wf.url or info.url,
            checksum=wf.checksum or info.checksum,
            version=wf.version or info.version or UNKNOWN_VERSION,
            is_notebook=wf.is_notebook or info.is_notebook,
        )

    def add_workflow(self, workflow: Workflow) -> RID:
        """Register ``workflow``; an existing row with the same URL *and* checksum is reused (its RID returned).

        A row's (URL, Checksum) always describes the code that ran: a run whose source file differs from
        the commit its URL names (a dirty run) has another checksum, so it gets a row of its own rather
        than joining the clean row of that URL (``docs/source-detection.md``, "Workflow identity")."""
        wf = self._with_source(workflow)
        types = self._validate_terms(MLVocab.workflow_type, wf.workflow_type)
        known = self._workflow_rids.get((wf.url, wf.checksum))
        if known is not None:  # registered or found by this handle already: no second lookup
            return known
        existing = self._find_workflow_row(wf.url, wf.checksum)
        if existing is not None:
            rid = self._workflow_rids[(wf.url, wf.checksum)] = RID(existing["RID"])
            return rid
        result = self.catalog.apply(plan_add_workflow(attrs.evolve(wf, workflow_type=types), self.layout))
        rid = self._workflow_rids[(wf.url, wf.checksum)] = result.rids["workflow"]
        self._log.info("workflow registered", workflow_rid=rid, name=wf.name, url=wf.url)
        return rid

    def _find_workflow_row(self, url: str | None, checksum: str | None) -> dict[str, Any] | None:
        """The workflow row to reuse: the first (in RID order) whose URL and Checksum both equal ours (a missing value
        matches only a missing value), so a reused row never names other code. One indexed query."""
        if not url and not checksum:
            return None
        rows = self.catalog.query(
            ML_SCHEMA, "Workflow", {"URL": url or None, "Checksum": checksum or None}, order_by=["RID"], limit=1
        )
        return dict(rows[0]) if rows else None

    def _workflows_from_rows(self, rows: Sequence[Mapping[str, Any]]) -> list[CatalogWorkflow]:
        if not rows:
            return []
        rids = [r["RID"] for r in rows]
        types: dict[str, list[str]] = {r: [] for r in rids}
        if self.layout.workflow_types == "column":
            for r in rows:
                if r.get("Workflow_Type"):
                    types[r["RID"]].append(r["Workflow_Type"])
        else:
            for t in self.catalog.query(ML_SCHEMA, "Workflow_Workflow_Type", {"Workflow": rids}):
                types[t["Workflow"]].append(t["Workflow_Type"])
        out = []
        for r in rows:
            wf = Workflow(
                name=r.get("Name") or "(unnamed)",
                workflow_type=sorted(types[r["RID"]]) or ["(none)"],
                description=r.get("Description"),
                url=r.get("URL"),
                checksum=r.get("Checksum"),
                version=r.get("Version"),
                rid=r["RID"],
                is_notebook=str(r.get("URL") or "").endswith(".ipynb"),
            )
            out.append(CatalogWorkflow(self, wf))
        return out

    def lookup_workflow(self, rid: str) -> CatalogWorkflow:
        """A catalog-bound workflow by RID (its description and workflow_type write through)."""
        rid = parse_rid(rid, "workflow rid")
        rows = self.catalog.query(ML_SCHEMA, "Workflow", {"RID": rid})
        if not rows:
            raise RIDNotFound(rid, "Workflow")
        return self._workflows_from_rows(rows)[0]

    def lookup_workflow_by_url(self, url_or_checksum: str) -> CatalogWorkflow:
        """A catalog-bound workflow by URL or git checksum (the first in RID order: a URL may have rows for
        its committed file and for dirty runs based on that commit, each with its own checksum)."""
        rows = self.catalog.query(ML_SCHEMA, "Workflow", {"URL": url_or_checksum}, order_by=["RID"], limit=1)
        if not rows:
            rows = self.catalog.query(ML_SCHEMA, "Workflow", {"Checksum": url_or_checksum}, order_by=["RID"], limit=1)
        row = dict(rows[0]) if rows else None
        if row is None:
            raise DerivaMLException(f"no workflow with URL or checksum {url_or_checksum!r}")
        return self._workflows_from_rows([row])[0]

    def find_workflows(self) -> list[CatalogWorkflow]:
        """Every workflow in the catalog."""
        return self._workflows_from_rows(self.catalog.query(ML_SCHEMA, "Workflow", order_by=["RID"]))

    # ------------------------------------------------------------------------------------ executions

    def create_execution(
        self,
        configuration: ExecutionConfiguration,
        workflow: Workflow | str | None = None,
        *,
        dry_run: bool = False,
        metadata_files: Sequence[tuple[str | os.PathLike[str], str]] = (),
    ) -> Execution:
        """Create and initialize an execution (status Pending when this returns).

        The workflow comes from ``workflow`` or ``configuration.workflow`` (neither: DerivaMLException);
        it is registered (deduplicated). Every input dataset and asset RID is checked before anything is
        written. ``dry_run=True`` downloads inputs but writes nothing to the catalog.
        """
        from deriva_ml.execution._execution import Execution

        wf_arg = workflow if workflow is not None else configuration.workflow
        if wf_arg is None:
            raise DerivaMLException(
                "no workflow: pass ExecutionConfiguration(workflow=...) or create_execution(config, workflow=...)"
            )
        wf = self.lookup_workflow(wf_arg).record if isinstance(wf_arg, str) else self._with_source(wf_arg)
        self._check_inputs(configuration)
        # argv is provenance; secrets in it (--token x, --password=y) are not
        from deriva_ml.core.redact import redact_argv

        argv = configuration.argv or tuple(sys.argv)
        configuration = attrs.evolve(configuration, argv=tuple(redact_argv(argv)))
        if dry_run:
            wf_rid = wf.rid or (self._find_workflow_row(wf.url, wf.checksum) or {}).get("RID")
            wf = attrs.evolve(wf, rid=wf_rid)
            rid = RID("0000")
            stamp = self._now().strftime("%Y%m%d-%H%M%S-%f")
            work = self.working_dir / "dry-run" / stamp
        else:
            wf = attrs.evolve(wf, rid=self.add_workflow(wf))
        # user text reaching a catalog row is redacted like everything else the library writes
        description = redact_description(configuration.description)
        record = ExecutionRecord(rid=RID("0000"), workflow_rid=wf.rid, description=description)
        if not dry_run:
            # Created -> Initializing before the row exists: the row is inserted already Initializing (one
            # request instead of an insert and an update; the record's history keeps both states)
            record = transition(record, Status.initializing, INITIALIZING_DETAIL, self._now())
            result = self.catalog.apply(
                Batch(
                    [
                        Insert(
                            ML_SCHEMA,
                            "Execution",
                            [
                                {
                                    "Workflow": wf.rid,
                                    "Description": description,
                                    "Status": record.status.value,
                                    "Status_Detail": record.status_detail,
                                }
                            ],
                            labels=["execution"],
                        )
                    ]
                )
            )
            rid = result.rids["execution"]
            record = attrs.evolve(record, rid=rid)
            work = self.execution_dir(rid)
            if work.exists():  # left by a catalog that reused this RID (e.g. recreated): never mix them
                self._set_aside(work, "a new execution got this RID")
        from deriva_ml.replay.link import child_hook  # --- replay (branch replay): a replayed run's link and pins

        configuration, metadata_files = child_hook(configuration, metadata_files, rid, work, os.environ)
        config = attrs.evolve(configuration, workflow=wf)
        exe = Execution(self, record, config, wf, work, dry_run=dry_run)
        if not dry_run:
            from deriva_ml.execution._execution import owner_identity

            exe._manifest.set_state(_IDENTITY, str(result.inserted[0][0].get("RCT") or ""))
            # the lease is held from creation on: a process that dies before Initializing is found too
            exe._manifest.set_state("owner", json.dumps(owner_identity()))
        extra = [(Path(p), t) for p, t in metadata_files]
        exe._initialize(extra_metadata_files=extra)
        return exe

    def execution_dir(self, rid: str) -> Path:
        return self.working_dir / "executions" / rid

    def _set_aside(self, work: Path, why: str) -> None:
        stamp = self._now().strftime("%Y%m%dT%H%M%S%f")
        aside = work.with_name(f"{work.name}.stale-{stamp}")
        work.rename(aside)
        self._log.warning("execution directory set aside", path=str(work), moved_to=str(aside), reason=why)

    def _open_manifest(self, row: Mapping[str, Any], *, create: bool) -> Any:
        """The local manifest of the execution ``row`` — only if it belongs to that very row.

        A directory whose manifest names another row (same RID, different creation time: a catalog that
        was recreated) is set aside rather than trusted. ``create=False`` returns None where none exists.
        """
        from deriva_ml.execution._manifest import Manifest, ManifestError

        work = self.execution_dir(row["RID"])
        path = work / "manifest.sqlite"
        if path.exists():
            try:
                manifest = Manifest(path)
            except ManifestError as exc:
                if not exc.corrupt:
                    raise
                from deriva_ml.execution._execution import rebuild_manifest

                self._log.warning("corrupt manifest set aside and rebuilt", path=str(path), error=str(exc))
                manifest = rebuild_manifest(self, row["RID"], work, self._now().strftime("%Y%m%dT%H%M%S%f"))
                if row.get("RCT"):
                    manifest.set_state(_IDENTITY, str(row["RCT"]))
                return manifest
            mine = manifest.get_state(_IDENTITY)
            if mine is None or not row.get("RCT") or mine == str(row["RCT"]):
                return manifest
            manifest.close()
            self._set_aside(work, "its manifest belongs to another execution with the same RID")
        if not create:
            return None
        manifest = Manifest(path)
        if row.get("RCT"):
            manifest.set_state(_IDENTITY, str(row["RCT"]))
        return manifest

    def _check_inputs(self, configuration: ExecutionConfiguration) -> None:
        """Every dataset RID is a Dataset with the requested version, and every asset RID is in an asset
        table — all checked before anything is written (two queries for the datasets, whatever their number).
        """
        from deriva_ml.core.errors import NotFound

        ds = [d.rid for d in configuration.datasets]
        if ds:
            found = {r["RID"] for r in self.catalog.query(ML_SCHEMA, "Dataset", {"RID": ds}, columns=["RID"])}
            for rid in ds:
                if rid not in found:
                    raise self._not_in_table(rid, "Dataset")
            wanted = [d for d in configuration.datasets if d.version is not None]
            if wanted:
                from deriva_ml.dataset._plans import find_version_row

                rows: dict[str, list[dict[str, Any]]] = {}
                for r in self.catalog.query(
                    ML_SCHEMA, "Dataset_Version", {"Dataset": list(dict.fromkeys(d.rid for d in wanted))}
                ):
                    rows.setdefault(r["Dataset"], []).append(r)
                for spec in wanted:
                    assert spec.version is not None
                    have = rows.get(spec.rid, [])
                    if find_version_row(have, spec.version) is None:
                        known = sorted(str(r.get("Version")) for r in have if r.get("Version"))
                        raise NotFound(
                            f"dataset {spec.rid} has no version {spec.version}; "
                            f"its versions: {', '.join(known) or '(none)'}"
                        )
        from deriva_ml.catalog.schema import is_asset

        for a in configuration.assets:
            schema, table = self.resolve_rid(a.rid)
            t = self.catalog.model().table(schema, table)
            if t is None or not is_asset(t):
                raise ValidationError(f"asset {a.rid!r} is a row of {schema}:{table}, which is not an asset table")

    def _not_in_table(self, rid: str, table: str) -> RIDNotFound:
        return self._schema.not_in_table(rid, table)

    def resolve_rid(self, rid: str) -> tuple[str, str]:
        """``(schema, table)`` of the row with this RID (remembered: a row never changes table)."""
        return self._schema.resolve_rid(rid)

    def lookup_execution(self, rid: str) -> ExecutionRecord:
        """The catalog's record of an execution."""
        rid = parse_rid(rid, "execution rid")
        rows = self.catalog.query(ML_SCHEMA, "Execution", {"RID": rid})
        if not rows:
            raise self._not_in_table(rid, "Execution")
        return _record_from_row(rows[0])

    def find_executions(
        self,
        status: Status | str | None = None,
        *,
        parent: str | None = None,
        metric: str | None = None,
        order: Literal["min", "max"] | None = "min",
        min_value: float | None = None,
        max_value: float | None = None,
        limit: int | None = None,
    ) -> list[ExecutionRecord]:
        """Executions (by RID), optionally only ``status``, only the children of ``parent``; with ``metric``
        only those that logged it, whose last value is within ``[min_value, max_value]``, sorted by it
        (``order="min"``: smallest first; ``"max"``; ``None``: by RID); at most ``limit`` (docs/metrics.md)."""
        where: dict[str, Any] = {"Status": Status.parse(status).value} if status is not None else {}
        if parent is not None:  # --- metrics (branch metrics): a sweep's children
            from deriva_ml.execution._metrics import children_of

            where["RID"] = children_of(self.ports, parse_rid(parent, "parent"))
            if not where["RID"]:
                return []
        records = [
            _record_from_row(r) for r in self.catalog.query(ML_SCHEMA, "Execution", where or None, order_by=["RID"])
        ]
        if metric is None and limit is None and min_value is None and max_value is None:
            return records
        from deriva_ml.execution._metrics import select_executions

        return select_executions(
            self.ports, records, metric=metric, order=order, min_value=min_value, max_value=max_value, limit=limit
        )

    def restore_execution(self, execution_rid: str) -> Execution:
        """Rebuild an Execution from the catalog and its local manifest (to finish an interrupted upload)."""
        from deriva_ml.core.codec import configuration_from_json, loads
        from deriva_ml.execution._execution import Execution

        rid = parse_rid(execution_rid, "execution rid")
        rows = self.catalog.query(ML_SCHEMA, "Execution", {"RID": rid})
        if not rows:
            raise RIDNotFound(rid, "Execution")
        row_record = _record_from_row(rows[0])
        work = self.execution_dir(row_record.rid)
        manifest = self._open_manifest(rows[0], create=True)
        saved = manifest.get_state("record")
        record = row_record
        if saved:
            local = loads(saved, ExecutionRecord)
            # the catalog is the truth for status; the local copy keeps the times and history
            record = local if local.status == row_record.status else _caught_up(local, row_record)
        cfg_text = manifest.get_state("configuration")
        if cfg_text is None:
            cfg_text = self._fetch_configuration_json(row_record.rid)
        config = (
            configuration_from_json(cfg_text)
            if cfg_text
            else ExecutionConfiguration(description=row_record.description)
        )
        wf_text = manifest.get_state("workflow")
        if wf_text:
            wf = loads(wf_text, Workflow)
        elif row_record.workflow_rid:
            wf = self.lookup_workflow(row_record.workflow_rid).record
        elif isinstance(config.workflow, Workflow):
            wf = config.workflow
        else:
            raise DerivaMLException(f"execution {execution_rid} has no workflow")
        exe = Execution(self, record, config, wf, work, manifest=manifest)
        self._log.info("execution restored", execution_rid=record.rid, status=record.status.value)
        return exe

    def _fetch_configuration_json(self, execution_rid: RID) -> str | None:
        links = self.catalog.query(ML_SCHEMA, "Execution_Metadata_Execution", {"Execution": execution_rid})
        rids = [r["Execution_Metadata"] for r in links]
        if not rids:
            return None
        rows = self.catalog.query(ML_SCHEMA, "Execution_Metadata", {"RID": rids, "Filename": "configuration.json"})
        if not rows:
            return None
        row = rows[0]
        dest = self.execution_dir(execution_rid) / "metadata" / "configuration.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.store.get(row["URL"], dest, md5=row.get("MD5"))
        return dest.read_text()

    def abort_stale_executions(self, older_than: timedelta | None = None) -> list[ExecutionRecord]:
        """Mark as Aborted executions whose process died.

        Executions started from this machine are checked by their lease (host, pid and process start
        time); with ``older_than``, any non-terminal execution whose row was last modified longer ago is
        aborted too (progress updates refresh that time). Returns the aborted records.
        """
        from deriva_ml.core.codec import dumps, loads
        from deriva_ml.execution._execution import owner_is_alive

        live = (Status.created, Status.initializing, Status.pending, Status.running)
        rows = self.catalog.query(ML_SCHEMA, "Execution", {"Status": [s.value for s in live]})
        now = self._now()
        planned: list[tuple[ExecutionRecord, str, Any]] = []
        for row in rows:
            record = _record_from_row(row)
            reason = None
            manifest = self._open_manifest(row, create=False)
            if manifest is not None:
                owner_text = manifest.get_state("owner")
                if owner_text:
                    try:
                        owner = parse_json(owner_text, f"owner of execution {row['RID']}")
                    except ValueError:
                        owner = None  # unreadable: cannot tell, the execution is left alone
                    if isinstance(owner, dict) and owner_is_alive(owner) is False:
                        reason = f"process {owner.get('pid')} on {owner.get('host')} is gone"
                saved = manifest.get_state("record")
                if saved:
                    local = loads(saved, ExecutionRecord)
                    if local.status == record.status:
                        record = local
            if reason is None and older_than is not None and row.get("RMT"):
                rmt = _parse_time(row["RMT"])
                if rmt is not None and now - rmt > older_than:
                    reason = f"no update since {rmt.isoformat()}"
            if reason is None:
                if manifest is not None:
                    manifest.close()
                continue
            planned.append((transition(record, Status.aborted, f"Aborted: {reason}", now), reason, manifest))
        if not planned:
            return []
        # one compare-and-set for all of them: an execution that changed status since the query (it finished,
        # or another process aborted it) is left alone
        result = self.catalog.apply(plan_status_update(*(new for new, _, _ in planned), skip_lost=True))
        written = {r["RID"] for r in result.inserted[0]}
        aborted: list[ExecutionRecord] = []
        for new, reason, manifest in planned:
            if new.rid in written:
                if manifest is not None:
                    manifest.set_state("record", dumps(new, indent=None))
                aborted.append(new)
                self._log.warning("execution aborted", execution_rid=new.rid, reason=reason)
            else:
                self._log.info("execution changed status meanwhile; not aborted", execution_rid=new.rid)
            if manifest is not None:
                manifest.close()
        return aborted

    # --------------------------------------------------------------------------------------- nesting

    def _add_nested(self, parent: RID, child: RID, sequence: int | None) -> None:
        """Link ``child`` under ``parent``, refusing a cycle (the child must not be the parent's ancestor).

        The parent's ancestors are read level by level (one request per level: one for a root), always
        afresh (another process may have nested the parent meanwhile); then one insert.
        """
        if parent == child:
            raise ValidationError(f"an execution cannot be nested in itself ({parent})")
        if sequence is not None and (not isinstance(sequence, int) or isinstance(sequence, bool)):
            raise ValidationError(f"sequence={sequence!r} must be an integer or None")
        edges: list[tuple[RID, RID]] = []
        frontier = [parent]
        seen = {parent}
        while frontier:
            rows = self.catalog.query(ML_SCHEMA, "Execution_Execution", {"Nested_Execution": frontier})
            nxt = []
            for r in rows:
                edges.append((RID(r["Execution"]), RID(r["Nested_Execution"])))
                if r["Execution"] not in seen:
                    seen.add(r["Execution"])
                    nxt.append(r["Execution"])
            frontier = nxt
        if would_create_cycle(parent, child, edges):
            raise ValidationError(f"nesting {child} under {parent} would create a cycle")
        self.catalog.apply(
            Batch(
                [
                    Insert(
                        ML_SCHEMA,
                        "Execution_Execution",
                        [{"Execution": parent, "Nested_Execution": child, "Sequence": sequence}],
                        on_conflict_skip=True,
                    )
                ]
            )
        )

    def list_nested_executions(self, execution_rid: str, recurse: bool = False) -> list[ExecutionRecord]:
        """Children in Sequence order (then RID); ``recurse`` adds grandchildren level by level."""
        return self._walk(parse_rid(execution_rid), "Execution", "Nested_Execution", recurse)

    def list_parent_executions(self, execution_rid: str, recurse: bool = False) -> list[ExecutionRecord]:
        return self._walk(parse_rid(execution_rid), "Nested_Execution", "Execution", recurse)

    def _walk(self, start: RID, from_col: str, to_col: str, recurse: bool) -> list[ExecutionRecord]:
        """One links query per level, then one query for every Execution row found (not one per level)."""
        order: list[str] = []
        seen = {start}
        frontier = [start]
        while frontier:
            links = self.catalog.query(ML_SCHEMA, "Execution_Execution", {from_col: frontier})
            links.sort(key=lambda r: (r.get("Sequence") is None, r.get("Sequence") or 0, r[to_col]))
            targets = list(dict.fromkeys(r[to_col] for r in links if r[to_col] not in seen))
            order.extend(targets)
            seen.update(targets)
            frontier = targets if recurse else []
        if not order:
            return []
        rows = {r["RID"]: r for r in self.catalog.query(ML_SCHEMA, "Execution", {"RID": order})}
        return [_record_from_row(rows[t]) for t in order if t in rows]

    # ----------------------------------------------------------------------------------------- assets

    def _download_assets(self, specs: Sequence[AssetSpec], dest_root: Path) -> list[tuple[tuple[str, str], RID, Path]]:
        """Fetch input assets (cached ones through the cache): one query per asset table."""
        from deriva_ml._progress import open_bar
        from deriva_ml.cache import download_uncached

        located: dict[tuple[str, str], list[AssetSpec]] = {}
        for spec in specs:
            located.setdefault(self.resolve_rid(spec.rid), []).append(spec)
        todo: list[tuple[tuple[str, str], AssetSpec, dict[str, Any]]] = []
        for (schema, table), group in located.items():
            rows = {r["RID"]: r for r in self.catalog.query(schema, table, {"RID": [s.rid for s in group]})}
            for spec in group:
                row = rows.get(spec.rid)
                if row is None:
                    raise RIDNotFound(spec.rid, table)
                todo.append(((schema, table), spec, row))
        out: list[tuple[tuple[str, str], RID, Path]] = []
        # bytes, rate and ETA over every asset on a terminal (None otherwise: no per-chunk work)
        bar = open_bar("download", sum(int(r.get("Length") or 0) for _k, _s, r in todo), "bytes")
        base = 0
        try:
            for (schema, table), spec, row in todo:
                dest_dir = dest_root / table
                dest_dir.mkdir(parents=True, exist_ok=True)
                progress = None if bar is None else bar.offset(base)
                if spec.cache:
                    cached = self.cache.fetch(
                        spec.rid,
                        row["MD5"],
                        row["Filename"],
                        row["URL"],
                        self.store,
                        length=row.get("Length"),
                        progress=progress,
                    )
                    path = self.cache.link_into(cached, dest_dir, row["Filename"])
                else:
                    path = download_uncached(
                        row["URL"], row["MD5"], row["Filename"], self.store, dest_dir, progress=progress
                    )
                base += int(row.get("Length") or 0)
                if bar is not None:
                    bar(base)
                out.append(((schema, table), spec.rid, path))
        finally:
            if bar is not None:
                bar.close()
        return out

    def cache_stats(self) -> Any:
        """Entries, bytes, hits and misses of the asset cache."""
        return self.cache.stats()

    def clear_cache(self, older_than_days: float | None = None) -> Any:
        """Remove cached assets (all, or those unused for ``older_than_days``)."""
        return self.cache.clear(older_than_days)

    def verify_cache(self) -> Any:
        """Re-hash every cached asset; corrupt entries are evicted and reported."""
        return self.cache.verify()

    # -------------------------------------------------------------------------------------- datasets

    def create_dataset(
        self,
        dataset_types: str | Sequence[str] | None = None,
        description: str = "",
        version: Any = None,
        *,
        execution_rid: str | None = None,
    ) -> Any:
        from deriva_ml.dataset import _datasets

        return _datasets.create_dataset(self, dataset_types, description, version, execution_rid=execution_rid)

    def lookup_dataset(self, dataset_rid: str) -> Any:
        from deriva_ml.dataset import _datasets

        return _datasets.lookup_dataset(self, dataset_rid)

    def find_datasets(self, *, deleted: bool = False) -> list[Any]:
        """Every dataset (``deleted=True`` includes ones marked Deleted)."""
        from deriva_ml.dataset import _datasets

        return _datasets.find_datasets(self, deleted=deleted)

    def add_dataset_members(self, dataset_rid: str, members: Any, **kwargs: Any) -> Any:
        from deriva_ml.dataset import _datasets

        return _datasets.add_dataset_members(self, dataset_rid, members, **kwargs)

    def list_dataset_members(
        self, dataset_rid: str, version: Any = None, **kwargs: Any
    ) -> dict[str, list[dict[str, Any]]]:
        from deriva_ml.dataset import _datasets

        return _datasets.list_dataset_members(self, dataset_rid, version, **kwargs)

    def list_dataset_children(self, dataset_rid: str, **kwargs: Any) -> list[Any]:
        from deriva_ml.dataset import _datasets

        return _datasets.list_dataset_children(self, dataset_rid, **kwargs)

    def list_dataset_parents(self, dataset_rid: str, **kwargs: Any) -> list[Any]:
        """Datasets that contain this one (``recurse=True`` for all ancestors)."""
        from deriva_ml.dataset import _datasets

        return _datasets.list_dataset_parents(self, dataset_rid, **kwargs)

    def increment_dataset_version(self, dataset_rid: str, component: str, description: str = "", **kwargs: Any) -> Any:
        from deriva_ml.dataset import _datasets

        return _datasets.increment_dataset_version(self, dataset_rid, component, description, **kwargs)

    def dataset_version(self, dataset_rid: str) -> Any:
        """The current version of a dataset."""
        from deriva_ml.dataset import _datasets

        return _datasets.current_version(self, dataset_rid)

    def dataset_history(self, dataset_rid: str) -> list[Any]:
        from deriva_ml.dataset import _datasets

        return _datasets.dataset_history(self, dataset_rid)

    def download_dataset_bag(self, dataset: DatasetSpec | str) -> Any:
        """A BDBag of a dataset version (the current one unless the spec names one)."""
        from deriva_ml.dataset import _bag

        spec = dataset if isinstance(dataset, DatasetSpec) else DatasetSpec(rid=dataset)
        return _bag.download_dataset_bag(self, spec)

    # ----------------------------------------------------------------------------------------- misc

    def _find_uv_lock(self) -> Path | None:
        """The project's uv.lock: in the workflow's repository root, else the nearest one above cwd."""
        candidates = []
        if self._project_root is not None:
            candidates.append(self._project_root)
        cwd = Path.cwd()
        candidates.extend([cwd, *cwd.parents])
        for d in candidates:
            if (d / "uv.lock").is_file():
                return d / "uv.lock"
        return None

    # --- metrics (branch metrics)

    def list_metrics(self, execution_rid: str) -> list[Any]:
        """Every metric value an execution logged (frozen ``MetricValue`` records, in the order logged).

        Read from its uploaded ``metrics.jsonl``; for an execution not uploaded yet, from its local log."""
        from deriva_ml.execution._metrics import read_series

        rid = parse_rid(execution_rid, "execution rid")
        return list(read_series(self.ports, rid, self.execution_dir(rid)))

    def metric_summary(self, execution_rid: str) -> dict[str, Any]:
        """Per metric name, its ``MetricSummary`` (last value, step and time, min, max, count); ``.best("min")``."""
        from deriva_ml.execution._metrics import read_summaries, summarize

        rid = parse_rid(execution_rid, "execution rid")
        found = read_summaries(self.ports, [rid]).get(str(rid))
        if found is None:
            found = summarize(self.list_metrics(rid))
        return {s.name: s for s in found}

    def add_metrics_table(self) -> bool:
        """Add the optional ``Execution_Metric`` summary table to this catalog (True if it was created)."""
        from deriva_ml.execution._metrics import add_summary_table

        return add_summary_table(self.ports)

    def best_execution(self, parent_rid: str, metric: str, order: str = "min") -> ExecutionRecord | None:
        """The child of ``parent_rid`` (a sweep) with the best last value of ``metric`` (None: no child has it)."""
        found = self.find_executions(parent=parent_rid, metric=metric, order=order, limit=1)  # type: ignore[arg-type]
        return found[0] if found else None

    # --- features (branch features)

    def _feature_service(self) -> Any:
        from deriva_ml.feature._service import FeatureService

        svc = self.__dict__.get("_features")
        if svc is None or svc.ports is not self.ports or svc.schema is not self._schema:
            svc = self.__dict__["_features"] = FeatureService(self.ports, self._schema)
        return svc

    def create_feature(
        self,
        target_table: str | TableDef,
        feature_name: str,
        terms: Sequence[str | TableDef] | None = None,
        assets: Sequence[str | TableDef] | None = None,
        metadata: Sequence[ColumnDef | str | TableDef] | None = None,
        optional: Sequence[str] | None = None,
        comment: str = "",
    ) -> Any:
        """Create the feature ``feature_name`` of ``target_table`` and return its record class (see docs/features.md)."""
        return self._feature_service().create_feature(
            target_table, feature_name, terms or (), assets or (), metadata or (), optional or (), comment
        )

    def feature_record_class(self, table: str | TableDef, feature_name: str) -> Any:
        """The frozen attrs record class of a feature (validated fields, generated from the catalog model)."""
        return self._feature_service().feature_record_class(table, feature_name)

    def find_features(self, table: str | TableDef | None = None) -> list[Any]:
        """Every feature (of ``table`` when given), as :class:`~deriva_ml.feature.Feature` descriptions."""
        return self._feature_service().find_features(table)  # type: ignore[no-any-return]

    def lookup_feature(self, table: str | TableDef, feature_name: str) -> Any:
        """The :class:`~deriva_ml.feature.Feature` ``feature_name`` of ``table``."""
        return self._feature_service().lookup_feature(table, feature_name)

    def list_feature_values(
        self, table: str | TableDef, feature_name: str, selector: Callable[..., Any] | None = None, **kwargs: Any
    ) -> list[Any]:
        """A feature's values as records (one query); ``selector`` keeps one per target row."""
        return self._feature_service().list_feature_values(table, feature_name, selector, **kwargs)  # type: ignore[no-any-return]

    def feature_values(
        self, table: str | TableDef, feature_name: str, selector: Callable[..., Any] | None = None, **kwargs: Any
    ) -> list[Any]:
        """The reference's newer name of :meth:`list_feature_values`."""
        return self.list_feature_values(table, feature_name, selector, **kwargs)

    def fetch_table_features(
        self, table: str | TableDef, feature_name: str | None = None, selector: Callable[..., Any] | None = None
    ) -> dict[str, list[Any]]:
        """Every feature of ``table`` with its values, by feature name."""
        return self._feature_service().fetch_table_features(table, feature_name, selector)  # type: ignore[no-any-return]

    # --- data (branch data): domain data, catalog reads, assets, dataset management (deriva_ml/data/)

    def _data(self) -> Any:
        from deriva_ml.data._service import DataService

        return DataService(self._ports, self._schema)

    def query(self, table: str, *, schema: str | None = None) -> Any:
        """A query builder over ``table`` (``.where(col("Age") > 3).select("Name").linked("Image").fetch()``)."""
        return self._data().query(table, schema=schema)

    def insert(self, table: str, rows: Any) -> list[dict[str, Any]]:
        """Insert rows into a domain table (one batch); returns them with their RIDs."""
        return self._data().insert(table, rows)  # type: ignore[no-any-return]

    def update(self, table: str, rows: Any) -> int:
        """Set columns of rows named by RID (one batch)."""
        return self._data().update(table, rows)  # type: ignore[no-any-return]

    def delete(self, table: str, rids_or_filter: Any) -> int:
        """Delete rows of a domain table by RIDs or by a filter."""
        return self._data().delete(table, rids_or_filter)  # type: ignore[no-any-return]

    def get_table_as_dict(self, table: str, *, schema: str | None = None) -> list[dict[str, Any]]:
        return self._data().get_table_as_dict(table, schema=schema)  # type: ignore[no-any-return]

    def get_table_as_dataframe(self, table: str, *, schema: str | None = None) -> Any:
        """The table as a pandas DataFrame (the ``pandas`` extra)."""
        return self._data().get_table_as_dataframe(table, schema=schema)

    def retrieve_rid(self, rid: str) -> dict[str, Any]:
        """The row with this RID, whatever its table."""
        return self._data().retrieve_rid(rid)  # type: ignore[no-any-return]

    def resolve_rids(self, rids: Iterable[str], *, candidate_tables: Sequence[str] | None = None) -> dict[str, Any]:
        """``{rid: (schema, table)}`` for many RIDs (at most min(n, tables) requests on ERMrest)."""
        return self._data().resolve_rids(rids, candidate_tables=candidate_tables)  # type: ignore[no-any-return]

    def catalog_snapshot(self, snaptime: str) -> DerivaML:
        """A read-only ``DerivaML`` on this catalog as it was at ``snaptime`` (same working and cache dirs)."""
        from deriva_ml.data._snapshot import SnapshotCatalog

        snaptime = str(snaptime)
        view = SnapshotCatalog(self.catalog, snaptime)
        view.query(ML_SCHEMA, "Dataset_Type", columns=["RID"], limit=1)  # an unknown snapshot fails here
        return DerivaML(
            self.host_name,
            self.catalog_id,
            domain_schema=self.domain_schema,
            home=self.home,
            working_dir=self.working_dir,
            cache_dir=self.cache_dir,
            allow_dirty=self.allow_dirty,
            catalog=view,
            store=self.store,
            clock=self._clock,
            project_root=self._project_root,
            upload_workers=self.upload_workers,
        )

    def chaise_url(self, table_or_rid: str) -> str:
        """The Chaise URL of a row or table (live server only)."""
        return self._data().chaise_url(table_or_rid)  # type: ignore[no-any-return]

    def cite(self, rid: str, *, current: bool = False) -> str:
        """``https://host/id/<catalog>/<RID>@<snaptime>``: a permanent citation URL (live server only)."""
        return self._data().cite(rid, current=current)  # type: ignore[no-any-return]

    def pathBuilder(self) -> Any:
        """deriva-py's datapath on the live catalog (escape hatch; live server only)."""
        return self._data().path_builder()

    def list_assets(self, table: str) -> list[Any]:
        """Every asset of an asset table as :class:`~deriva_ml.data.Asset` records (3 requests)."""
        from deriva_ml.data import _assets

        return _assets.list_assets(self._ports, self._schema, table)

    def find_assets(self, table: str | None = None, **kwargs: Any) -> list[Any]:
        """Assets by table, asset_type, md5, filename (any combination)."""
        from deriva_ml.data import _assets

        return _assets.find_assets(self._ports, self._schema, table, **kwargs)

    def lookup_asset(self, rid: str) -> Any:
        from deriva_ml.data import _assets

        return _assets.lookup_asset(self._ports, self._schema, rid)

    def list_asset_executions(self, asset_rid: str, role: str | None = None) -> list[ExecutionRecord]:
        """Executions that produced (``role="Output"``) or read (``"Input"``) an asset; None: both."""
        from deriva_ml.data import _assets

        return [_record_from_row(r) for r in _assets.asset_execution_rows(self._ports, self._schema, asset_rid, role)]

    def download_asset(self, asset_rid: str, dest: str | os.PathLike[str], *, cache: bool = True) -> Path:
        """The asset's file under ``dest`` (through the asset cache unless ``cache=False``), MD5 verified."""
        from deriva_ml.data import _assets

        return _assets.download_asset(self._ports, self._schema, asset_rid, Path(dest), cache=cache)

    def add_files(
        self,
        files: Any,
        *,
        dataset_types: str | Sequence[str] | None = None,
        description: str = "",
        file_types: Sequence[str] = (),
        execution_rid: str | None = None,
    ) -> Any:
        """Catalog files (local paths or FileSpecs) in the File table and return a new dataset holding them
        (types ``dataset_types``, default ``File``), as the reference's ``add_files`` does."""
        from deriva_ml.data import _assets

        rids = _assets.add_files(self._ports, self._schema, files, file_types=file_types, description=description)
        if not rids:
            return None
        ds = self.create_dataset(
            dataset_types if dataset_types is not None else ["File"], description, execution_rid=execution_rid
        )
        self.add_dataset_members(ds.dataset_rid, {"File": rids}, execution_rid=execution_rid)
        return self.lookup_dataset(ds.dataset_rid)

    def list_files(self, file_types: Sequence[str] | None = None) -> list[Any]:
        from deriva_ml.data import _assets

        return _assets.list_files(self._ports, self._schema, file_types)

    def delete_dataset(self, dataset_rid: str, recurse: bool = False) -> list[RID]:
        """Mark a dataset Deleted (and its nested datasets with ``recurse``); returns the RIDs marked."""
        from deriva_ml.dataset import _manage

        return _manage.delete_dataset(self._ports, self._schema, dataset_rid, recurse=recurse)

    def delete_dataset_members(self, dataset_rid: str, members: Any, **kwargs: Any) -> Any:
        """Remove members and bump the minor version (older versions keep them)."""
        from deriva_ml.dataset import _manage

        removed = _manage.delete_dataset_members(self._ports, self._schema, dataset_rid, members)
        if removed:
            kwargs.setdefault("description", f"removed {removed} member(s)")
            return self.increment_dataset_version(dataset_rid, "minor", **kwargs)
        return None

    def add_dataset_type(self, dataset_rid: str, dataset_type: str) -> None:
        from deriva_ml.dataset import _manage

        _manage.add_dataset_types(self._ports, self._schema, dataset_rid, [dataset_type])

    def remove_dataset_type(self, dataset_rid: str, dataset_type: str) -> None:
        from deriva_ml.dataset import _manage

        _manage.remove_dataset_types(self._ports, self._schema, dataset_rid, [dataset_type])

    def list_dataset_element_types(self) -> list[TableDef]:
        """Tables whose rows can be dataset members (those with a ``Dataset_<Table>`` association)."""
        from deriva_ml.dataset import _manage

        return _manage.list_dataset_element_types(self._ports)

    def add_dataset_element_type(self, table: str) -> TableDef:
        """Let rows of ``table`` be dataset members (creates the ``Dataset_<Table>`` association)."""
        from deriva_ml.dataset import _manage

        return _manage.add_dataset_element_type(self._ports, self._schema, table)

    def estimate_bag_size(self, dataset: Any) -> dict[str, Any]:
        """Rows per table and asset bytes a bag of this dataset (spec or RID) would hold, without building it."""
        from deriva_ml.dataset import _manage

        spec = dataset if isinstance(dataset, DatasetSpec) else DatasetSpec(rid=dataset)
        members = self.list_dataset_members(spec.rid, spec.version, recurse=True)
        return _manage.summarize_bag(members, self.catalog.model())


class CatalogWorkflow:
    """A workflow bound to its catalog row: ``description`` and ``workflow_type`` write through.

    Reading any field reads the frozen :class:`Workflow` record (``.record``); assigning
    ``description`` or ``workflow_type`` validates, writes the catalog, then swaps in the evolved record.
    """

    __slots__ = ("_ml", "_record")

    def __init__(self, ml: DerivaML, record: Workflow) -> None:
        object.__setattr__(self, "_ml", ml)
        object.__setattr__(self, "_record", record)

    @property
    def record(self) -> Workflow:
        return self._record  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_record"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        rec: Workflow = self._record
        ml: DerivaML = self._ml
        if rec.rid is None:
            raise ExecutionError("this workflow is not registered in a catalog")
        if name == "description":
            new = attrs.evolve(rec, description=value)
            ml.catalog.apply(
                Batch(
                    [
                        Update(
                            ML_SCHEMA,
                            "Workflow",
                            [{"RID": rec.rid, "Description": redact_description(new.description)}],
                        )
                    ]
                )
            )
        elif name == "workflow_type":
            new = attrs.evolve(rec, workflow_type=value)
            types = ml._validate_terms(MLVocab.workflow_type, new.workflow_type)
            batch = plan_replace_workflow_types(rec.rid, rec.workflow_type, types, ml.layout)
            if batch:
                ml.catalog.apply(batch)
            new = attrs.evolve(new, workflow_type=types)
        else:
            raise AttributeError(f"workflow field {name!r} cannot be changed; only description and workflow_type")
        object.__setattr__(self, "_record", new)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CatalogWorkflow):
            return bool(self._record == other._record)
        return bool(self._record == other)

    def __hash__(self) -> int:
        return hash(self._record.rid)

    def __repr__(self) -> str:
        return f"CatalogWorkflow({self._record!r})"


# ------------------------------------------------------------------------------------------- helpers


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside deriva_ml."""
    pkg = str(Path(__file__).resolve().parent)
    frame = sys._getframe(1)
    level = 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(pkg):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        t = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


_REFERENCE_DURATION = re.compile(
    r"^\s*([0-9]+(?:\.[0-9]*)?)H\s*([0-9]+(?:\.[0-9]*)?)min\s*([0-9]+(?:\.[0-9]*)?)sec\s*$"
)


def _parse_duration(text: Any) -> float | None:
    """Seconds from an ``Execution.Duration``: ours (``H:MM:SS.ffffff``) or the reference package's
    (``"0.0H 0.0min 0.1462sec"``); None when absent or unreadable."""
    if not text:
        return None
    m = _REFERENCE_DURATION.match(str(text))
    if m:
        return float(m.group(1)) * 3600 + float(m.group(2)) * 60 + float(m.group(3))
    try:
        h, m_, s = str(text).split(":")
        return int(h) * 3600 + int(m_) * 60 + float(s)
    except ValueError:
        return None


def _record_from_row(row: Mapping[str, Any]) -> ExecutionRecord:
    """The record of an Execution row. A row without a status is Created; a status that is not an execution
    status raises :class:`ValidationError` naming the RID and the value (it never becomes ``Created``).

    Times: start is the row's creation (RCT); for a finished row the stop is start + Duration. The history
    holds the one change the row shows (to its current status, at its last modification), so rows written
    by the reference package come back with times and a history too.
    """
    status_text = row.get("Status")
    if status_text is None or status_text == "":
        status = Status.created
    else:
        try:
            status = Status.parse(status_text)
        except ValidationError:
            valid = ", ".join(s.value for s in STATUS_ORDER)
            raise ValidationError(
                f"execution {row.get('RID')}: Status={status_text!r} in the catalog is not an execution status "
                f"(valid: {valid})"
            ) from None
    start = _parse_time(row.get("RCT"))
    dur = _parse_duration(row.get("Duration"))
    stop = (
        start + timedelta(seconds=dur)
        if start is not None and dur is not None and status in TERMINAL | {Status.failed}
        else None
    )
    detail = row.get("Status_Detail") or ""
    at = stop or _parse_time(row.get("RMT")) or start
    history = () if at is None or status is Status.created else (StatusChange(None, status, detail, at),)
    return ExecutionRecord(
        rid=row["RID"],
        workflow_rid=row.get("Workflow"),
        description=row.get("Description") or "",
        status=status,
        status_detail=detail,
        start_time=start if stop is not None else None,
        stop_time=stop,
        history=history,
    )


def _caught_up(local: ExecutionRecord, row: ExecutionRecord) -> ExecutionRecord:
    """A local record brought up to the status the catalog holds (changed by another handle or process):
    the history gains an *observation* of that status (``from_status=None``: not a transition this handle
    made, since the steps in between are not known here), the times follow the catalog's row."""
    at = row.history[-1].at if row.history else (local.history[-1].at if local.history else None)
    if at is not None and local.history and at < local.history[-1].at:
        at = local.history[-1].at
    change = () if at is None else (StatusChange(None, row.status, row.status_detail, at),)
    return attrs.evolve(
        local,
        status=row.status,
        status_detail=row.status_detail,
        start_time=row.start_time if row.stop_time is not None else local.start_time,
        stop_time=row.stop_time,
        history=(*local.history, *change),
    )
