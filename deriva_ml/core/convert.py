"""The one cattrs converter factory behind every JSON deriva_ml writes and reads.

:func:`make_converter` builds a private converter (never cattrs' global one) from cattrs' *generated*
attrs hooks (``cattrs.gen.make_dict_structure_fn`` / ``make_dict_unstructure_fn``) plus a few overrides:

- scalars: :class:`Status` as its value, :data:`RID` as its string, ``datetime`` as ISO 8601;
- :class:`DatasetVersion` as ``{"major", "minor", "patch"}`` (read also from ``"1.2.0"``);
- effects tagged by ``kind`` with ``Ref`` written ``{"$ref": label}`` (:mod:`deriva_ml.core.codec`), batches
  and batch results (RIDs as strings, rows through the same ``Ref`` encoding);
- the reference package's shapes of ``configuration.json`` (:func:`deriva_ml.core.codec.register_config_hooks`).

Fields of the core records that have their own attrs converter get the raw JSON value: the record
validates it and names the field in its error (cattrs' default ``str(value)``/``int(value)`` would
silently accept ``3`` for a name). Everything else (table definitions, cache entries, job outcomes) uses
the generated hooks unchanged.

:func:`converter` is built on first use, so ``import deriva_ml`` does not import cattrs. :func:`to_json`
and :func:`json_text` are the JSON text of everything the library writes: manifest columns, sweep
outcomes, sync state, CLI ``--json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import cattrs


def _passthrough(value: Any, _: Any) -> Any:
    return value


def make_converter() -> cattrs.Converter:
    """A fresh converter with every hook deriva_ml needs (records, configuration, effects, catalog model)."""
    import attrs
    import cattrs
    from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

    from deriva_ml.core.codec import effect_from_json, effect_to_json, register_config_hooks, row_to_json
    from deriva_ml.core.effects import Batch, BatchResult, Delete, Effect, Insert, SetStatus, Update
    from deriva_ml.core.records import DatasetVersion, ExecutionRecord, StatusChange, Term
    from deriva_ml.core.rid import RID, parse_rid
    from deriva_ml.core.status import Status

    # detailed_validation=False: a record's own error (naming the field and value) propagates as it is
    c = cattrs.Converter(omit_if_default=False, forbid_extra_keys=False, detailed_validation=False)

    # scalars
    c.register_unstructure_hook(datetime, lambda d: d.isoformat())
    c.register_structure_hook(datetime, lambda v, _: datetime.fromisoformat(v))
    c.register_unstructure_hook(Status, lambda s: s.value)
    c.register_structure_hook(Status, lambda v, _: Status.parse(v))
    c.register_structure_hook(RID, lambda v, _: parse_rid(v))
    c.register_structure_hook(str | int | float | bool | None, _passthrough)  # a column default
    c.register_unstructure_hook(DatasetVersion, lambda v: {"major": v.major, "minor": v.minor, "patch": v.patch})
    c.register_structure_hook(DatasetVersion, lambda v, _: DatasetVersion.parse(v))

    # records: generated hooks; a field with its own converter gets the raw value to validate
    for cls in (ExecutionRecord, StatusChange, Term):
        attrs.resolve_types(cls)
        raw = {
            a.name: override(struct_hook=_passthrough)
            for a in attrs.fields(cls)
            if a.converter is not None and not _structured(a.type, (datetime, Status))
        }
        c.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, c))
        c.register_structure_hook(cls, make_dict_structure_fn(cls, c, **raw))  # type: ignore[arg-type]

    # configuration.json: the reference package's shapes (specs as bare RIDs, versions as text, extra keys)
    register_config_hooks(c)

    # effects, tagged by kind; batches and their results
    for effect_cls in (Insert, Update, Delete, SetStatus):
        c.register_unstructure_hook(effect_cls, effect_to_json)
        c.register_structure_hook(effect_cls, effect_from_json)
    c.register_structure_hook(Effect, effect_from_json)
    c.register_unstructure_hook(Batch, lambda b: {"effects": [effect_to_json(e) for e in b.effects]})
    c.register_structure_hook(Batch, lambda v, _: Batch(tuple(effect_from_json(e) for e in v["effects"])))
    c.register_unstructure_hook(
        BatchResult,
        lambda r: {
            "rids": {k: str(v) for k, v in r.rids.items()},
            "inserted": [[row_to_json(row) for row in rows] for rows in r.inserted],
        },
    )
    c.register_structure_hook(
        BatchResult,
        lambda v, _: BatchResult(
            rids={k: RID(r) for k, r in v.get("rids", {}).items()},
            inserted=tuple(tuple(dict(row) for row in rows) for rows in v.get("inserted", [])),
        ),
    )
    return c


def _structured(tp: Any, special: tuple[type, ...]) -> bool:
    """Whether values of type ``tp`` need the converter (a datetime, a Status, a record, or a container of them)."""
    import typing

    import attrs

    if isinstance(tp, type) and (issubclass(tp, special) or attrs.has(tp)):
        return True
    return any(_structured(arg, special) for arg in typing.get_args(tp))


_CONVERTER: cattrs.Converter | None = None


def converter() -> cattrs.Converter:
    """The shared deriva_ml converter (built on first use)."""
    global _CONVERTER
    if _CONVERTER is None:
        _CONVERTER = make_converter()
    return _CONVERTER


def unstructure(obj: Any) -> Any:
    """JSON-able data of a record (or of plain data holding records)."""
    return converter().unstructure(obj)


def structure(data: Any, cls: type[Any]) -> Any:
    """A record of ``cls`` from JSON-able data (cattrs' errors are left to the caller to name)."""
    return converter().structure(data, cls)


def json_text(
    obj: Any,
    *,
    indent: int | None = None,
    sort_keys: bool = False,
    compact: bool = False,
    ascii_only: bool = False,
    default: Callable[[Any], Any] | None = str,
) -> str:
    """JSON text of a record (unstructured by the converter) or of plain JSON-able data (written as is).

    ``compact`` drops the spaces after separators (journal lines); ``ascii_only`` escapes non-ASCII
    characters (the manifest's columns, sweep files and the CLI have always been written that way);
    ``default`` renders values JSON does not know (``str``: paths, dates in free-form metadata).
    """
    data = obj if isinstance(obj, _PLAIN) else unstructure(obj)
    return json.dumps(
        data,
        indent=indent,
        sort_keys=sort_keys,
        ensure_ascii=ascii_only,
        separators=(",", ":") if compact else None,
        default=default,
    )


#: What :func:`json_text` writes without the converter: JSON's own types (containers are the caller's data).
_PLAIN = (str, int, float, bool, type(None), dict, list)


__all__ = ["converter", "json_text", "make_converter", "structure", "unstructure"]
