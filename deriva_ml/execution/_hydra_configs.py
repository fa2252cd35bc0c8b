"""hydra-zen building blocks for ``deriva-ml-run``: connection, dataset, upload and top-level configs.

Everything here can be built and instantiated outside a running Hydra app (a config is a dataclass;
``hydra_zen.instantiate(cfg)`` turns it into frozen records). ``multirun_config`` registers a sweep
preset in hydra-zen's store (group ``multirun``), so the store stays the one registry of configs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from hydra_zen import builds, make_config, store

from deriva_ml.core.records import DatasetSpec

if TYPE_CHECKING:
    from deriva_ml._ml import DerivaML

#: Name of the top-level config ``deriva-ml-run`` composes unless ``--config-name`` says otherwise.
DEFAULT_CONFIG_NAME = "deriva_model"

#: Hydra config group holding the ``multirun_config`` presets.
MULTIRUN_GROUP = "multirun"


def _opt_path(value: Any) -> str | None:
    return None if value is None or value == "" else os.fspath(value)


def _two_floats(value: Any) -> tuple[float, float]:
    items = tuple(float(x) for x in value)
    if len(items) != 2:
        raise ValueError(f"upload.timeout={list(items)!r} must be [connect_timeout, read_timeout]")
    return (items[0], items[1])


def _str_tuple(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


@attrs.frozen
class DerivaMLConnection:
    """Where to connect: ``hostname`` (``"local"`` = the embedded catalog) and ``catalog_id``.

    ``home``/``working_dir``/``cache_dir`` default as in :class:`~deriva_ml.DerivaML` (``$DERIVA_ML_HOME``);
    ``allow_dirty=False`` refuses to record a workflow whose source has uncommitted changes.
    """

    hostname: str = attrs.field(default="local", converter=str)
    catalog_id: str = attrs.field(default="default", converter=str)
    home: str | None = attrs.field(default=None, converter=_opt_path)
    working_dir: str | None = attrs.field(default=None, converter=_opt_path)
    cache_dir: str | None = attrs.field(default=None, converter=_opt_path)
    allow_dirty: bool = attrs.field(default=True, converter=bool)
    domain_schema: str | None = None

    def connect(self) -> DerivaML:
        """Open the catalog (embedded or live)."""
        from deriva_ml._ml import DerivaML

        return DerivaML(
            self.hostname,
            self.catalog_id,
            home=self.home,
            working_dir=self.working_dir,
            cache_dir=self.cache_dir,
            allow_dirty=self.allow_dirty,
            domain_schema=self.domain_schema,
        )

    def as_env(self) -> dict[str, str]:
        """The connection as ``DERIVA_ML_*`` environment variables (read back by :meth:`from_env`)."""
        env = {"DERIVA_ML_HOSTNAME": self.hostname, "DERIVA_ML_CATALOG_ID": self.catalog_id}
        for key, value in (
            ("DERIVA_ML_HOME", self.home),
            ("DERIVA_ML_WORKING_DIR", self.working_dir),
            ("DERIVA_ML_CACHE_DIR", self.cache_dir),
            ("DERIVA_ML_DOMAIN_SCHEMA", self.domain_schema),
        ):
            if value is not None:
                env[key] = str(Path(value).absolute()) if key != "DERIVA_ML_DOMAIN_SCHEMA" else value
        env["DERIVA_ML_ALLOW_DIRTY"] = "true" if self.allow_dirty else "false"
        return env

    @classmethod
    def from_env(cls, env: dict[str, str] | os._Environ[str]) -> DerivaMLConnection:
        return cls(
            hostname=env.get("DERIVA_ML_HOSTNAME", "local"),
            catalog_id=env.get("DERIVA_ML_CATALOG_ID", "default"),
            home=env.get("DERIVA_ML_HOME"),
            working_dir=env.get("DERIVA_ML_WORKING_DIR"),
            cache_dir=env.get("DERIVA_ML_CACHE_DIR"),
            allow_dirty=env.get("DERIVA_ML_ALLOW_DIRTY", "true").lower() != "false",
            domain_schema=env.get("DERIVA_ML_DOMAIN_SCHEMA"),
        )


@attrs.frozen
class UploadSettings:
    """Arguments of ``Execution.upload_execution_outputs`` as configured under ``upload.*``."""

    timeout: tuple[float, float] = attrs.field(default=(600.0, 600.0), converter=_two_floats)
    chunk_size: int = attrs.field(default=50 * 1024 * 1024, converter=int)
    max_retries: int = attrs.field(default=3, converter=int)
    retry_delay: float = attrs.field(default=5.0, converter=float)


#: ``DerivaMLConfig(hostname="local", catalog_id="demo")``: a connection config for the ``deriva_ml`` group.
DerivaMLConfig = builds(DerivaMLConnection, populate_full_signature=True, zen_dataclass={"cls_name": "DerivaMLConfig"})

#: ``DatasetSpecConfig(rid="1-ABC", version="1.0.0")``: a ``datasets`` group option (alone or in a list).
DatasetSpecConfig = builds(DatasetSpec, populate_full_signature=True, zen_dataclass={"cls_name": "DatasetSpecConfig"})

UploadConfig = builds(UploadSettings, populate_full_signature=True, zen_dataclass={"cls_name": "UploadConfig"})


def make_run_config(hydra_defaults: Sequence[Any] | None = None, description: str = "", **fields: Any) -> Any:
    """The top-level config ``deriva-ml-run`` composes (register it with ``store(..., name="deriva_model")``).

    Default groups: ``deriva_ml: default_deriva`` (a built-in local connection when you define none),
    ``datasets: default_dataset`` and ``assets: default_asset`` (optional: empty when not defined),
    ``workflow: default_workflow`` and ``model_config: default_model`` (yours).
    """
    defaults: list[Any] = (
        list(hydra_defaults)
        if hydra_defaults is not None
        else [
            "_self_",
            {"deriva_ml": "default_deriva"},
            {"optional datasets": "default_dataset"},
            {"optional assets": "default_asset"},
            {"workflow": "default_workflow"},
            {"model_config": "default_model"},
        ]
    )
    base: dict[str, Any] = {
        "deriva_ml": None,
        "workflow": None,
        "model_config": None,
        # None, not []: an option may be one spec (a dict) or a list, and Hydra cannot merge a dict onto a list
        "datasets": None,
        "assets": None,
        "description": description,
        "dry_run": False,
        "upload": UploadConfig(),
        MULTIRUN_GROUP: None,
    }
    base.update(fields)
    return make_config(hydra_defaults=defaults, zen_dataclass={"cls_name": "DerivaRunConfig"}, **base)


#: The default top-level config class: the base for ``_global_`` presets of a structured top config.
DerivaRunConfig = make_run_config()


@attrs.frozen
class MultirunSpec:
    """A named sweep: Hydra overrides (command-line syntax) and a markdown description for the parent."""

    name: str
    overrides: tuple[str, ...] = attrs.field(converter=_str_tuple)
    description: str = ""


def multirun_config(name: str, overrides: Sequence[str], description: str = "") -> MultirunSpec:
    """Register a sweep preset run by ``deriva-ml-run +multirun=NAME``.

    ``overrides`` are Hydra overrides exactly as on the command line (``"model_config.lr=0.1,0.01"``);
    ``description`` (markdown) becomes the parent execution's description. The preset is stored in
    hydra-zen's store, group ``multirun``, so ``config_choices`` of each child records its name.
    """
    if isinstance(overrides, str):
        raise TypeError(f"overrides={overrides!r} must be a list of override strings, not one string")
    spec = MultirunSpec(name=name, overrides=overrides, description=description)
    node = make_config(
        name=spec.name,
        overrides=list(spec.overrides),
        description=spec.description,
        zen_dataclass={"cls_name": f"Multirun_{_identifier(name)}"},
    )
    store(node, group=MULTIRUN_GROUP, name=name)
    return spec


def _identifier(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def multirun_spec_from_node(node: Any) -> MultirunSpec:
    """The MultirunSpec of a stored ``multirun`` node (a config dataclass, an instance or a DictConfig)."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.create(node))
    assert isinstance(data, dict)
    return MultirunSpec(
        name=str(data.get("name", "")),
        overrides=data.get("overrides") or (),
        description=str(data.get("description") or ""),
    )


def register_fallbacks() -> None:
    """Built-in options for what the project left undefined: a local catalog connection
    (``deriva_ml=default_deriva``), and one input dataset or asset given by RID on the command line
    (``datasets=by_rid datasets.rid=1-ABC [datasets.version=1.2.0]``, ``assets=by_rid assets.rid=2-XYZ
    [assets.cache=true]``)."""
    from deriva_ml.asset.aux_classes import AssetSpecConfig

    if ("deriva_ml", "default_deriva") not in store:
        store(DerivaMLConfig(), group="deriva_ml", name="default_deriva")
    # rid "???" is mandatory: composing without datasets.rid=... says "Missing mandatory value: datasets.rid"
    if ("datasets", "by_rid") not in store:
        store(DatasetSpecConfig(rid="???"), group="datasets", name="by_rid")
    if ("assets", "by_rid") not in store:
        store(AssetSpecConfig(rid="???"), group="assets", name="by_rid")
    if (None, DEFAULT_CONFIG_NAME) not in store:
        # stored unstructured, so that ``_global_`` experiment presets need no ``bases=(DerivaRunConfig,)``
        from omegaconf import OmegaConf

        store(OmegaConf.to_container(OmegaConf.structured(make_run_config())), name=DEFAULT_CONFIG_NAME)


__all__ = [
    "DEFAULT_CONFIG_NAME",
    "MULTIRUN_GROUP",
    "DatasetSpecConfig",
    "DerivaMLConfig",
    "DerivaMLConnection",
    "DerivaRunConfig",
    "MultirunSpec",
    "UploadConfig",
    "UploadSettings",
    "make_run_config",
    "multirun_config",
    "register_fallbacks",
]
