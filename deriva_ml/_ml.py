"""``DerivaML``: the user's handle on one catalog (embedded or live) and its object store.

A thin shell. It owns the adapters (catalog, object store, asset cache), keeps the catalog model and
vocabulary terms it has fetched, and turns each user call into: gather inputs, call pure functions,
apply the effects, log. Heavy libraries (deriva-py, dulwich, bdbag, hydra) load only when used.

This module builds the handle (ports, services) and its views of them; the user calls of each topic
(model and vocabularies, workflows and executions, datasets, assets, features, domain data) come from the
classes of ``deriva_ml._facade`` that ``DerivaML`` inherits.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from deriva_ml._facade._assets import AssetFacade
from deriva_ml._facade._data import DataFacade
from deriva_ml._facade._datasets import DatasetFacade
from deriva_ml._facade._executions import ExecutionFacade
from deriva_ml._facade._features import FeatureFacade
from deriva_ml._facade._schema import SchemaFacade
from deriva_ml._log import get_logger
from deriva_ml._util import safe_name
from deriva_ml.catalog.port import Catalog
from deriva_ml.context import LOCAL_HOST as LOCAL_HOST
from deriva_ml.context import Directories, HostIdentity, LazyCache, Ports, utcnow
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.records import DatasetSpec
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


class DerivaML(SchemaFacade, ExecutionFacade, DatasetFacade, AssetFacade, FeatureFacade, DataFacade):
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

    # ------------------------------------------------- calls that build a handle or combine other calls

    def catalog_snapshot(self, snaptime: str) -> DerivaML:
        """A read-only ``DerivaML`` on this catalog as it was at ``snaptime`` (same working and cache dirs)."""
        from deriva_ml.data._snapshot import SnapshotCatalog

        snaptime = str(snaptime)
        view = SnapshotCatalog(self.catalog, snaptime)
        view.model()  # the model at the snapshot (one request on ERMrest); an unknown snapshot fails here
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

    def estimate_bag_size(self, dataset: Any) -> dict[str, Any]:
        """Rows per table and asset bytes a bag of this dataset (spec or RID) would hold, without building it."""
        from deriva_ml.dataset import _manage

        spec = dataset if isinstance(dataset, DatasetSpec) else DatasetSpec(rid=dataset)
        members = self.list_dataset_members(spec.rid, spec.version, recurse=True)
        return _manage.summarize_bag(members, self.catalog.model())
