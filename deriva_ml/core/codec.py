"""JSON at the boundary: effects, ``configuration.json``, records as text, and JSON read from outside.

The converter itself is built by :func:`deriva_ml.core.convert.make_converter` (cattrs imported on first
use); this module holds the tagged effect encoding and the ``configuration.json`` hooks it registers.
``configuration.json`` is interchangeable with the reference DerivaML package:

- ``datasets[].version`` is written as ``{"major", "minor", "patch"}`` and read from that, from
  ``"1.2.0"`` or when absent (the current version);
- ``assets[]`` entries are written as ``{"rid", "cache"}`` and read from that or from a bare RID string;
- top-level keys are ``datasets, assets, workflow, description, argv, config_choices``; unknown keys
  are ignored with a warning; malformed values raise :class:`ConfigurationError` with the path.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from deriva_ml.core.effects import Delete, Effect, Insert, Ref, SetStatus, StatusWrite, Update
from deriva_ml.core.errors import ConfigurationError, DerivaMLException
from deriva_ml.core.records import (
    AssetSpec,
    DatasetSpec,
    ExecutionConfiguration,
    Workflow,
    as_asset_spec,
    as_dataset_spec,
)
from deriva_ml.core.rid import RID, parse_rid

if TYPE_CHECKING:
    import cattrs

T = TypeVar("T")

#: configuration.json's keys, in the order they are written.
CONFIG_KEYS = ("datasets", "assets", "workflow", "description", "argv", "config_choices")

#: Workflow keys the reference package writes that we do not keep (read without a warning).
_REFERENCE_WORKFLOW_EXTRAS = frozenset({"git_root", "allow_dirty"})
_WORKFLOW_KEYS = frozenset({"name", "workflow_type", "description", "url", "checksum", "version", "rid", "is_notebook"})


_PLAIN = (str, int, float, bool, type(None))


def encode_value(value: Any) -> Any:
    """A row value as JSON: ``Ref`` becomes ``{"$ref": label}``; containers are walked."""
    if type(value) in _PLAIN:  # the common case, without the isinstance chain
        return value
    if isinstance(value, Ref):
        return {"$ref": value.label}
    if isinstance(value, Mapping):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return value


def decode_value(value: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    if isinstance(value, dict):
        if len(value) == 1 and "$ref" in value and isinstance(value["$ref"], str):
            return Ref(value["$ref"])
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


def row_to_json(row: Mapping[str, Any]) -> dict[str, Any]:
    if all(type(v) in _PLAIN for v in row.values()):
        return dict(row)
    return {str(k): encode_value(v) for k, v in row.items()}


_KINDS: dict[type, str] = {Insert: "insert", Update: "update", Delete: "delete", SetStatus: "set_status"}


def effect_to_json(effect: Effect) -> dict[str, Any]:
    """An effect as JSON, tagged by ``kind``."""
    head: dict[str, Any] = {"kind": _KINDS[type(effect)], "schema": effect.schema, "table": effect.table}
    if isinstance(effect, SetStatus):
        writes = [
            {
                "rid": w.rid,
                "expected": w.expected.value,
                "status": w.status.value,
                "detail": w.detail,
                "duration": w.duration,
            }
            for w in effect.writes
        ]
        return head | {"writes": writes, "skip_lost": effect.skip_lost}
    if isinstance(effect, Insert | Update):
        head["rows"] = [row_to_json(r) for r in effect.rows]
        if isinstance(effect, Insert):
            return head | {"labels": list(effect.labels), "on_conflict_skip": effect.on_conflict_skip}
        return head | {"key": list(effect.key)}
    values = [encode_value(v) for v in effect.values]
    return head | {"column": effect.column, "values": values, "where": row_to_json(effect.where)}


def effect_from_json(data: Any, _: Any = None) -> Effect:
    """Inverse of :func:`effect_to_json`; a malformed effect raises :class:`ConfigurationError`."""
    if not isinstance(data, dict) or data.get("kind") not in ("insert", "update", "delete", "set_status"):
        raise ConfigurationError(f"effect {data!r} lacks a kind of 'insert', 'update', 'delete' or 'set_status'")
    try:
        kind = data["kind"]
        if kind == "set_status":
            return SetStatus(
                [
                    StatusWrite(w["rid"], w["expected"], w["status"], w.get("detail", ""), w.get("duration"))
                    for w in data["writes"]
                ],
                skip_lost=bool(data.get("skip_lost", False)),
            )
        if kind in ("insert", "update"):
            rows = [decode_value(r) for r in data["rows"]]
            if kind == "insert":
                labels, skip = tuple(data.get("labels", ())), bool(data.get("on_conflict_skip", False))
                return Insert(data["schema"], data["table"], rows, labels=labels, on_conflict_skip=skip)
            return Update(data["schema"], data["table"], rows, key=tuple(data.get("key", ("RID",))))
        return Delete(
            data["schema"],
            data["table"],
            data["column"],
            tuple(decode_value(v) for v in data["values"]),
            decode_value(data.get("where", {})),
        )
    except KeyError as e:
        raise ConfigurationError(f"effect {data!r} lacks field {e.args[0]!r}") from e


def register_config_hooks(c: cattrs.Converter) -> None:
    """The overrides ``configuration.json`` needs to stay interchangeable with the reference package: specs
    read from bare RIDs, versions from text, workflows from a record or a RID, unknown keys warned about."""
    c.register_unstructure_hook(
        DatasetSpec,
        lambda d: {
            "rid": d.rid,
            "version": None if d.version is None else c.unstructure(d.version),
            "materialize": d.materialize,
            "description": d.description,
        },
    )
    c.register_structure_hook(DatasetSpec, lambda v, _: as_dataset_spec(v))
    c.register_unstructure_hook(AssetSpec, lambda a: {"rid": a.rid, "cache": a.cache})
    c.register_structure_hook(AssetSpec, lambda v, _: as_asset_spec(v))

    # workflow: a record or a bare RID
    def unstructure_workflow(w: Workflow) -> dict[str, Any]:
        return {
            "name": w.name,
            "workflow_type": list(w.workflow_type),
            "description": w.description,
            "url": w.url,
            "checksum": w.checksum,
            "version": w.version,
            "rid": w.rid,
            "is_notebook": w.is_notebook,
        }

    def structure_workflow(v: Any, _: Any) -> Workflow:
        if not isinstance(v, Mapping):
            raise ConfigurationError(f"workflow={v!r} must be a mapping")
        unknown = set(v) - _WORKFLOW_KEYS - _REFERENCE_WORKFLOW_EXTRAS
        if unknown:
            warnings.warn(f"ignoring unknown workflow key(s) {sorted(unknown)}", UserWarning, stacklevel=2)
        return Workflow(**{k: v[k] for k in _WORKFLOW_KEYS if k in v})

    c.register_unstructure_hook(Workflow, unstructure_workflow)
    c.register_structure_hook(Workflow, structure_workflow)

    def structure_workflow_ref(v: Any, _: Any) -> Workflow | RID | None:
        if v is None:
            return None
        if isinstance(v, str):
            return parse_rid(v, "workflow")
        return structure_workflow(v, Workflow)

    c.register_structure_hook(Workflow | RID | None, structure_workflow_ref)

    def unstructure_config(cfg: ExecutionConfiguration) -> dict[str, Any]:
        wf: Any = cfg.workflow
        return {
            "datasets": [c.unstructure(d) for d in cfg.datasets],
            "assets": [c.unstructure(a) for a in cfg.assets],
            "workflow": wf if wf is None or isinstance(wf, str) else unstructure_workflow(wf),
            "description": cfg.description,
            "argv": list(cfg.argv),
            "config_choices": dict(cfg.config_choices),
        }

    def structure_config(v: Any, _: Any) -> ExecutionConfiguration:
        if not isinstance(v, Mapping):
            raise ConfigurationError(f"configuration must be a JSON object, got {type(v).__name__}")
        unknown = set(v) - set(CONFIG_KEYS)
        if unknown:
            warnings.warn(f"ignoring unknown configuration key(s) {sorted(unknown)}", UserWarning, stacklevel=2)
        fields: dict[str, Any] = {}
        for key in CONFIG_KEYS:
            if key not in v:
                continue
            try:
                if key == "datasets":
                    fields[key] = [as_dataset_spec(d) for d in _as_list(v[key], key)]
                elif key == "assets":
                    fields[key] = [as_asset_spec(a) for a in _as_list(v[key], key)]
                elif key == "workflow":
                    fields[key] = structure_workflow_ref(v[key], None)
                else:
                    fields[key] = v[key]
            except ConfigurationError:
                raise
            except (DerivaMLException, TypeError, ValueError) as exc:
                raise ConfigurationError(f"configuration.{key}: {exc}") from exc
        try:
            return ExecutionConfiguration(**fields)
        except (DerivaMLException, TypeError, ValueError) as exc:
            raise ConfigurationError(f"configuration: {exc}") from exc

    c.register_unstructure_hook(ExecutionConfiguration, unstructure_config)
    c.register_structure_hook(ExecutionConfiguration, structure_config)


def _as_list(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    raise ConfigurationError(f"configuration.{key}={value!r} must be a list")


def converter() -> cattrs.Converter:
    """The shared deriva_ml converter (:func:`deriva_ml.core.convert.converter`, built on first use)."""
    from deriva_ml.core.convert import converter as shared

    return shared()


def make_converter() -> cattrs.Converter:
    """A fresh converter with every hook deriva_ml needs (:func:`deriva_ml.core.convert.make_converter`)."""
    from deriva_ml.core.convert import make_converter as make

    return make()


def to_jsonable(obj: Any) -> Any:
    """Unstructure a record into JSON-able data."""
    return converter().unstructure(obj)


def from_jsonable(data: Any, cls: type[T]) -> T:
    """Structure JSON-able data into a record; malformed input raises :class:`ConfigurationError`."""
    from cattrs import transform_error
    from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError

    try:
        return converter().structure(data, cls)
    except ConfigurationError:
        raise
    except (ClassValidationError, ForbiddenExtraKeysError) as exc:
        msgs = "; ".join(transform_error(exc))
        raise ConfigurationError(f"malformed {cls.__name__}: {msgs}") from exc
    except (DerivaMLException, KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"malformed {cls.__name__}: {exc}") from exc


def dumps(obj: Any, *, indent: int | None = 2) -> str:
    """JSON text of a record, keys in a stable order."""
    from deriva_ml.core.convert import json_text

    return json_text(to_jsonable(obj), indent=indent)


#: Deepest nesting accepted in JSON read from outside (files, catalog rows, journal lines, progress
#: files); deeper documents are refused before anything walks them recursively.
MAX_JSON_DEPTH = 100


def _too_deep(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            children: Any = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children)
    return False


def parse_json(text: str | bytes | bytearray, source: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON read from outside the process, named ``source`` in errors (a path, ``Table.Column`` of a
    catalog row, a journal line): malformed text, invalid UTF-8 or nesting deeper than ``max_depth``
    raise :class:`ConfigurationError` (a ``ValueError``) naming ``source`` — never a raw
    ``RecursionError``, ``JSONDecodeError`` or ``UnicodeDecodeError``."""
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise ConfigurationError(
            f"{source}: JSON nested too deeply (more than {max_depth} levels are refused)"
        ) from exc
    except (ValueError, TypeError) as exc:  # JSONDecodeError, UnicodeDecodeError, not text at all
        raise ConfigurationError(f"{source}: not valid JSON: {exc}") from exc
    if _too_deep(value, max_depth):
        raise ConfigurationError(f"{source}: JSON nested too deeply (more than {max_depth} levels are refused)")
    return value


def loads(text: str | bytes, cls: type[T]) -> T:
    """A record from JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"not valid JSON for {cls.__name__}: {exc}") from exc
    except RecursionError as exc:  # hostile nesting: a clear error, never an uncaught RecursionError
        raise ConfigurationError(f"JSON for {cls.__name__} is nested too deeply to be a valid record") from exc
    try:
        return from_jsonable(data, cls)
    except RecursionError as exc:
        raise ConfigurationError(f"JSON for {cls.__name__} is nested too deeply to be a valid record") from exc


def configuration_to_json(cfg: ExecutionConfiguration) -> str:
    """``configuration.json`` text for ``cfg``."""
    return dumps(cfg)


def configuration_from_json(text: str | bytes) -> ExecutionConfiguration:
    """Read ``configuration.json`` written by deriva_ml or by the reference DerivaML package."""
    return loads(text, ExecutionConfiguration)
