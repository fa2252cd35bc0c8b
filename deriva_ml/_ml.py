"""``DerivaML``: the user's handle on one catalog (embedded or live) and its object store.

A thin shell. It owns the adapters (catalog, object store, asset cache), keeps the catalog model and
vocabulary terms it has fetched, and turns each user call into: gather inputs, call pure functions,
apply the effects, log. Heavy libraries (deriva-py, dulwich, bdbag, hydra) load only when used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from deriva_ml._log import get_logger
from deriva_ml._util import safe_name
from deriva_ml.catalog.port import Catalog
from deriva_ml.context import LOCAL_HOST as LOCAL_HOST
from deriva_ml.context import Directories, HostIdentity, LazyCache, Ports, utcnow
from deriva_ml.core.definitions import ML_SCHEMA, MLVocab
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.execution_rows import record_from_row
from deriva_ml.core.plans import MLLayout
from deriva_ml.core.records import DatasetSpec, ExecutionConfiguration, ExecutionRecord, Term, Workflow
from deriva_ml.core.rid import RID, parse_rid
from deriva_ml.core.schema_defs import ColumnDef, TableDef
from deriva_ml.core.status import Status
from deriva_ml.services import Services, StoredObjects
from deriva_ml.services.adapters import deriva_ml_home as deriva_ml_home
from deriva_ml.services.adapters import list_embedded_catalogs as list_embedded_catalogs
from deriva_ml.services.adapters import open_embedded, open_live
from deriva_ml.services.schema import SchemaService
from deriva_ml.services.workflows import CatalogWorkflow as CatalogWorkflow
from deriva_ml.services.workflows import WorkflowService
from deriva_ml.store.port import ObjectStore

if TYPE_CHECKING:
    from deriva_ml.cache import AssetCache
    from deriva_ml.execution._execution import Execution


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
        self._allow_dirty = allow_dirty
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
            catalog, store = open_embedded(self.home, catalog_id)
        else:
            catalog, store = open_live(self.home, hostname, catalog_id, self.credential, session_config)
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
            clock=clock or utcnow,
            dirs=dirs,
            host=host,
            upload_workers=max(1, int(upload_workers)),
            log=self._log,
        )
        #: Tables, vocabularies, terms and RID resolution.
        self._schema = SchemaService(self._ports, domain_schema)
        #: Workflow registration and lookup (remembers the workflows it registered or found).
        self._workflows = WorkflowService(
            self._ports, self._schema, allow_dirty=allow_dirty, on_repo_root=self._set_project_root
        )
        #: (table, md5, filename) -> (url, length, asset row RID) of metadata objects this handle stored and
        #: cataloged (content-addressed names); a RID found stale is forgotten (see execution/_upload.py)
        self._stored_objects: StoredObjects = {}

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
        self._workflows.ports, self._workflows.schema = self._ports, self._schema

    def _set_project_root(self, root: Path) -> None:
        self._swap_ports(dirs=attrs.evolve(self._ports.dirs, project_root=root))

    def _services(self) -> Services:
        """What datasets and executions work through (never this handle itself)."""
        return Services(
            ports=self._ports,
            schema=self._schema,
            workflows=self._workflows,
            stored_objects=self._stored_objects,
            download_bag=self.download_dataset_bag,
        )

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
    def allow_dirty(self) -> bool:
        return self._allow_dirty

    @allow_dirty.setter
    def allow_dirty(self, value: bool) -> None:
        self._allow_dirty = self._workflows.allow_dirty = bool(value)

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
    def domain_schema(self) -> str | None:
        return self._schema.domain_schema

    @domain_schema.setter
    def domain_schema(self, value: str | None) -> None:
        self._schema.domain_schema = value

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

    # ---------------------------------------------------------------------------------------- model

    def model(self, *, refresh: bool = False) -> Any:
        return self._schema.model(refresh=refresh)

    @property
    def layout(self) -> MLLayout:
        """Which variant of the deriva-ml schema this catalog has (ours or a reference version's)."""
        return self._schema.layout

    def list_asset_tables(self) -> list[str]:
        """Names of every asset table (deriva-ml's and the domain's)."""
        return self._schema.list_asset_tables()

    # ------------------------------------------------------------------------------- domain helpers

    def create_vocabulary(self, vocab_name: str, comment: str = "", *, schema: str | None = None) -> TableDef:
        """Create a controlled vocabulary table in the domain schema."""
        from deriva_ml.catalog.schema import vocabulary_table

        t = vocabulary_table(self._schema.require_domain_schema(schema), vocab_name, comment)
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

        refs = {r: self._schema.table(r) for r in references}
        t = plain_table(self._schema.require_domain_schema(schema), name, columns, references=refs, comment=comment)
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

        refs = [self._schema.table(r) for r in referenced_tables]
        tables = asset_table(self._schema.require_domain_schema(schema), asset_name, column_defs, refs, comment=comment)
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
        return self._workflows.create(wf, caller_file=caller_file)

    def add_workflow(self, workflow: Workflow) -> RID:
        """Register ``workflow``; an existing row with the same URL *and* checksum is reused (its RID returned).

        A row's (URL, Checksum) always describes the code that ran: a run whose source file differs from
        the commit its URL names (a dirty run) has another checksum, so it gets a row of its own rather
        than joining the clean row of that URL (``docs/source-detection.md``, "Workflow identity")."""
        return self._workflows.add(workflow)

    def lookup_workflow(self, rid: str) -> CatalogWorkflow:
        """A catalog-bound workflow by RID (its description and workflow_type write through)."""
        return self._workflows.lookup(rid)

    def lookup_workflow_by_url(self, url_or_checksum: str) -> CatalogWorkflow:
        """A catalog-bound workflow by URL or git checksum (the first in RID order: a URL may have rows for
        its committed file and for dirty runs based on that commit, each with its own checksum)."""
        return self._workflows.lookup_by_url(url_or_checksum)

    def find_workflows(self) -> list[CatalogWorkflow]:
        """Every workflow in the catalog."""
        return self._workflows.find()

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
        from deriva_ml.execution import _lifecycle

        return _lifecycle.create_execution(
            self._services(), configuration, workflow, dry_run=dry_run, metadata_files=metadata_files
        )

    def execution_dir(self, rid: str) -> Path:
        return self.working_dir / "executions" / rid

    def resolve_rid(self, rid: str) -> tuple[str, str]:
        """``(schema, table)`` of the row with this RID (remembered: a row never changes table)."""
        return self._schema.resolve_rid(rid)

    def lookup_execution(self, rid: str) -> ExecutionRecord:
        """The catalog's record of an execution."""
        from deriva_ml.services import executions as _executions

        return _executions.lookup_execution(self._ports, self._schema, rid)

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
        from deriva_ml.services import executions as _executions

        if parent is None and metric is None and limit is None and min_value is None and max_value is None:
            return _executions.find_executions(self._ports, status)
        from deriva_ml.execution._metrics import select_executions

        records = _executions.find_executions(self._ports, status, parent=parent)
        if metric is None and limit is None and min_value is None and max_value is None:
            return records
        return select_executions(
            self.ports, records, metric=metric, order=order, min_value=min_value, max_value=max_value, limit=limit
        )

    def restore_execution(self, execution_rid: str) -> Execution:
        """Rebuild an Execution from the catalog and its local manifest (to finish an interrupted upload)."""
        from deriva_ml.execution import _lifecycle

        return _lifecycle.restore_execution(self._services(), execution_rid)

    def abort_stale_executions(self, older_than: timedelta | None = None) -> list[ExecutionRecord]:
        """Mark as Aborted executions whose process died.

        Executions started from this machine are checked by their lease (host, pid and process start
        time); with ``older_than``, any non-terminal execution whose row was last modified longer ago is
        aborted too (progress updates refresh that time). Returns the aborted records.
        """
        from deriva_ml.execution import _lifecycle

        return _lifecycle.abort_stale_executions(self._services(), older_than)

    # --------------------------------------------------------------------------------------- nesting

    def list_nested_executions(self, execution_rid: str, recurse: bool = False) -> list[ExecutionRecord]:
        """Children in Sequence order (then RID); ``recurse`` adds grandchildren level by level."""
        from deriva_ml.services import executions as _executions

        return _executions.list_nested(self._ports, execution_rid, recurse=recurse)

    def list_parent_executions(self, execution_rid: str, recurse: bool = False) -> list[ExecutionRecord]:
        from deriva_ml.services import executions as _executions

        return _executions.list_parents(self._ports, execution_rid, recurse=recurse)

    # ----------------------------------------------------------------------------------------- assets

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

        return _datasets.create_dataset(
            self._services(), dataset_types, description, version, execution_rid=execution_rid
        )

    def lookup_dataset(self, dataset_rid: str) -> Any:
        from deriva_ml.dataset import _datasets

        return _datasets.lookup_dataset(self._services(), dataset_rid)

    def find_datasets(self, *, deleted: bool = False) -> list[Any]:
        """Every dataset (``deleted=True`` includes ones marked Deleted)."""
        from deriva_ml.dataset import _datasets

        return _datasets.find_datasets(self._services(), deleted=deleted)

    def add_dataset_members(self, dataset_rid: str, members: Any, **kwargs: Any) -> Any:
        from deriva_ml.dataset import _datasets

        return _datasets.add_dataset_members(self._services(), dataset_rid, members, **kwargs)

    def list_dataset_members(
        self, dataset_rid: str, version: Any = None, **kwargs: Any
    ) -> dict[str, list[dict[str, Any]]]:
        from deriva_ml.dataset import _datasets

        return _datasets.list_dataset_members(self._services(), dataset_rid, version, **kwargs)

    def list_dataset_children(self, dataset_rid: str, **kwargs: Any) -> list[Any]:
        from deriva_ml.dataset import _datasets

        return _datasets.list_dataset_children(self._services(), dataset_rid, **kwargs)

    def list_dataset_parents(self, dataset_rid: str, **kwargs: Any) -> list[Any]:
        """Datasets that contain this one (``recurse=True`` for all ancestors)."""
        from deriva_ml.dataset import _datasets

        return _datasets.list_dataset_parents(self._services(), dataset_rid, **kwargs)

    def increment_dataset_version(self, dataset_rid: str, component: str, description: str = "", **kwargs: Any) -> Any:
        from deriva_ml.dataset import _datasets

        return _datasets.increment_dataset_version(self._services(), dataset_rid, component, description, **kwargs)

    def dataset_version(self, dataset_rid: str) -> Any:
        """The current version of a dataset."""
        from deriva_ml.dataset import _datasets

        return _datasets.current_version(self._services(), dataset_rid)

    def dataset_history(self, dataset_rid: str) -> list[Any]:
        from deriva_ml.dataset import _datasets

        return _datasets.dataset_history(self._services(), dataset_rid)

    def download_dataset_bag(self, dataset: DatasetSpec | str) -> Any:
        """A BDBag of a dataset version (the current one unless the spec names one)."""
        from deriva_ml.dataset import _bag

        spec = dataset if isinstance(dataset, DatasetSpec) else DatasetSpec(rid=dataset)
        return _bag.download_dataset_bag(self, spec)

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
            clock=self._ports.clock,
            project_root=self._ports.dirs.project_root,
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

        return [record_from_row(r) for r in _assets.asset_execution_rows(self._ports, self._schema, asset_rid, role)]

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
