"""Frozen records: the data that flows through deriva_ml.

Every record validates its fields at construction and raises an error that names the field and the bad
value. Records never change; a change is ``attrs.evolve(record, ...)``, and status changes go through
:func:`deriva_ml.core.records.transition`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

import attrs

from deriva_ml.core.errors import InvalidVersion, ValidationError
from deriva_ml.core.rid import RID, parse_rid
from deriva_ml.core.status import Status, check_transition

_S = TypeVar("_S")

# --------------------------------------------------------------------------------------------- helpers
# Fields share a few typed converter functions (the form mypy's attrs plugin reads: a named function whose
# parameter type becomes the ``__init__`` parameter's). A converter only normalizes the spellings a field
# accepts (None for "", "true" for True, one string for a list of one); anything else passes through
# unchanged to the field's validator, which refuses it naming ``Class.field`` and the value.


def _name(instance: object, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def _text(value: object) -> str:
    """``None`` → ``""``."""
    return "" if value is None else value  # type: ignore[return-value]  # a non-string: _is_text refuses it


def _is_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ValidationError(f"{_name(instance, attribute)}={value!r} must be a string")


def _opt_text(value: object) -> str | None:
    return value  # type: ignore[return-value]  # a non-string: _is_opt_text refuses it


def _is_opt_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{_name(instance, attribute)}={value!r} must be a string or None")


def _flag(value: object) -> bool:
    """``"true"``/``"false"`` (any case) → bool."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value  # type: ignore[return-value]  # not a bool: _is_flag refuses it


def _is_flag(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ValidationError(f"{_name(instance, attribute)}={value!r} must be true or false")


def _strings(value: object) -> tuple[str, ...]:
    """``None`` → ``()``, one string → a tuple of it, any iterable → a tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        return tuple(value)
    return value  # type: ignore[return-value]  # not a list: _are_strings refuses it


def _are_strings(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple):
        raise ValidationError(f"{_name(instance, attribute)}={value!r} must be a string or a list of strings")
    for item in value:
        if not isinstance(item, str):
            raise ValidationError(f"{_name(instance, attribute)} must contain strings; got {item!r} in {value!r}")


def _rid(value: object) -> RID:
    return value  # type: ignore[return-value]  # checked by _is_rid


def _is_rid(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    parse_rid(value, _name(instance, attribute))


def _opt_rid(value: object) -> RID | None:
    """``""`` → ``None``."""
    return None if value is None or value == "" else value  # type: ignore[return-value]  # checked by _is_opt_rid


def _is_opt_rid(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        parse_rid(value, _name(instance, attribute))


# ---------------------------------------------------------------------------------------------- version

_VERSION_RE = re.compile(r"^\s*v?(\d+)\.(\d+)\.(\d+)\s*$")


@attrs.frozen(order=True)
class DatasetVersion:
    """A semantic version ``MAJOR.MINOR.PATCH`` of a dataset."""

    major: int = attrs.field(validator=attrs.validators.and_(attrs.validators.instance_of(int)))
    minor: int = attrs.field(validator=attrs.validators.instance_of(int))
    patch: int = attrs.field(validator=attrs.validators.instance_of(int))

    def __attrs_post_init__(self) -> None:
        for name in ("major", "minor", "patch"):
            value = getattr(self, name)
            if isinstance(value, bool) or value < 0:
                raise InvalidVersion(f"{self.major}.{self.minor}.{self.patch}")

    @classmethod
    def parse(cls, value: object, field: str = "version") -> DatasetVersion:
        """Read ``"1.2.0"``, ``{"major": 1, "minor": 2, "patch": 0}`` or a DatasetVersion."""
        if isinstance(value, DatasetVersion):
            return value
        if isinstance(value, str):
            m = _VERSION_RE.match(value)
            if m:
                return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if isinstance(value, Mapping):
            try:
                parts = [value[k] for k in ("major", "minor", "patch")]
            except KeyError:
                raise InvalidVersion(value, field) from None
            if all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in parts):
                return cls(*parts)
        raise InvalidVersion(value, field)

    def bump(self, component: str) -> DatasetVersion:
        """The next version: ``component`` is ``major``, ``minor`` or ``patch``."""
        if component == "major":
            return DatasetVersion(self.major + 1, 0, 0)
        if component == "minor":
            return DatasetVersion(self.major, self.minor + 1, 0)
        if component == "patch":
            return DatasetVersion(self.major, self.minor, self.patch + 1)
        raise ValidationError(f"component={component!r} is not a version component; valid: major, minor, patch")

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def _opt_version(value: object) -> DatasetVersion | None:
    if value is None or value == "":
        return None
    return DatasetVersion.parse(value)


# ----------------------------------------------------------------------------------------------- specs


@attrs.frozen
class DatasetSpec:
    """An input dataset: its RID, a version (``None`` = the current one) and whether to fetch files."""

    rid: RID = attrs.field(converter=_rid, validator=_is_rid)
    version: DatasetVersion | None = attrs.field(default=None, converter=_opt_version)
    materialize: bool = attrs.field(default=True, converter=_flag, validator=_is_flag)
    description: str = attrs.field(default="", converter=_text, validator=_is_text)


@attrs.frozen
class AssetSpec:
    """An input asset by RID; ``cache=True`` keeps it in the MD5-addressed cache between runs."""

    rid: RID = attrs.field(converter=_rid, validator=_is_rid)
    cache: bool = attrs.field(default=False, converter=_flag, validator=_is_flag)


def as_dataset_spec(value: object) -> DatasetSpec:
    """A DatasetSpec from a DatasetSpec, a bare RID string or a mapping."""
    if isinstance(value, DatasetSpec):
        return value
    if isinstance(value, str):
        return DatasetSpec(rid=value)
    if isinstance(value, Mapping):
        known = {k: value[k] for k in ("rid", "version", "materialize", "description") if k in value}
        if "rid" not in known:
            raise ValidationError(f"dataset entry {dict(value)!r} has no 'rid'")
        return DatasetSpec(**known)
    raise ValidationError(f"dataset entry {value!r} must be a DatasetSpec, a RID string or a mapping with 'rid'")


def as_asset_spec(value: object) -> AssetSpec:
    """An AssetSpec from an AssetSpec, a bare RID string or a mapping ``{"rid", "cache"}``."""
    if isinstance(value, AssetSpec):
        return value
    if isinstance(value, str):
        return AssetSpec(rid=value)
    if isinstance(value, Mapping):
        if "rid" not in value:
            raise ValidationError(f"asset entry {dict(value)!r} has no 'rid'")
        return AssetSpec(rid=value["rid"], cache=value.get("cache", False))
    raise ValidationError(f"asset entry {value!r} must be an AssetSpec, a RID string or a mapping with 'rid'")


def _spec_list(value: object, one: type, convert: Callable[[object], _S], field: str, what: str) -> tuple[_S, ...]:
    """A tuple of specs from None, one entry (a spec, RID string or mapping) or a list of entries."""
    if value is None:
        return ()
    if isinstance(value, str | one | Mapping):
        value = [value]
    if not isinstance(value, Iterable):
        raise ValidationError(f"{field}={value!r} must be a list of {what}")
    return tuple(convert(v) for v in value)


def _dataset_specs(value: object) -> tuple[DatasetSpec, ...]:
    return _spec_list(value, DatasetSpec, as_dataset_spec, "datasets", "DatasetSpec")


def _asset_specs(value: object) -> tuple[AssetSpec, ...]:
    return _spec_list(value, AssetSpec, as_asset_spec, "assets", "AssetSpec or RID strings")


# -------------------------------------------------------------------------------------------- workflow


@attrs.frozen
class Workflow:
    """What code ran: a reusable definition that many executions reference.

    ``url`` and ``checksum`` left as ``None`` mean "detect the calling source": the shell fills them
    (``ml.create_workflow`` at once, a bare ``Workflow(...)`` when it is registered). ``rid`` is set
    once the workflow is in a catalog.
    """

    name: str = attrs.field(converter=_text, validator=_is_text)
    workflow_type: tuple[str, ...] = attrs.field(converter=_strings, validator=_are_strings)
    description: str | None = attrs.field(default=None, converter=_opt_text, validator=_is_opt_text)
    url: str | None = attrs.field(default=None, converter=_opt_text, validator=_is_opt_text)
    checksum: str | None = attrs.field(default=None, converter=_opt_text, validator=_is_opt_text)
    version: str | None = attrs.field(default=None, converter=_opt_text, validator=_is_opt_text)
    rid: RID | None = attrs.field(default=None, converter=_opt_rid, validator=_is_opt_rid)
    is_notebook: bool = attrs.field(default=False, converter=_flag, validator=_is_flag)

    def __attrs_post_init__(self) -> None:
        if not self.name.strip():
            raise ValidationError("Workflow.name must not be empty")
        if not self.workflow_type:
            raise ValidationError(f"Workflow {self.name!r}: workflow_type must name at least one Workflow_Type term")


# ---------------------------------------------------------------------------------------- configuration


def _workflow_or_rid(value: object) -> Workflow | RID | None:
    if value is None or isinstance(value, Workflow):
        return value
    if isinstance(value, str):
        return parse_rid(value, "ExecutionConfiguration.workflow")
    raise ValidationError(f"ExecutionConfiguration.workflow={value!r} must be a Workflow, a workflow RID or None")


def _config_choices(value: object) -> Mapping[str, str]:
    """A read-only mapping of strings: keys must be strings, values are turned into text."""
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"ExecutionConfiguration.config_choices={value!r} must be a mapping of strings to strings"
        )
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise ValidationError(f"ExecutionConfiguration.config_choices key {k!r} must be a string")
        out[k] = v if isinstance(v, str) else str(v)
    return MappingProxyType(out)


@attrs.frozen
class ExecutionConfiguration:
    """What an execution will use: workflow, input datasets and assets, description, argv, choices."""

    workflow: Workflow | RID | None = attrs.field(default=None, converter=_workflow_or_rid)
    description: str = attrs.field(default="", converter=_text, validator=_is_text)
    datasets: tuple[DatasetSpec, ...] = attrs.field(factory=tuple, converter=_dataset_specs)
    assets: tuple[AssetSpec, ...] = attrs.field(factory=tuple, converter=_asset_specs)
    argv: tuple[str, ...] = attrs.field(factory=tuple, converter=_strings, validator=_are_strings)
    #: A read-only mapping (``types.MappingProxyType``): the record cannot be changed in place.
    config_choices: Mapping[str, str] = attrs.field(factory=dict, converter=_config_choices, hash=False)


# ------------------------------------------------------------------------------------ execution record


@attrs.frozen
class StatusChange:
    """One applied status change: from, to, detail and when (a timezone-aware datetime)."""

    from_status: Status | None
    to_status: Status
    detail: str
    at: datetime


def _time(value: object) -> datetime | None:
    return value  # type: ignore[return-value]  # checked by _is_aware


def _is_aware(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, datetime):
        raise ValidationError(f"{_name(instance, attribute)}={value!r} must be a datetime")
    if value.tzinfo is None:
        raise ValidationError(f"{_name(instance, attribute)}={value!r} must be timezone-aware")


def _status(value: object) -> Status:
    return Status.parse(value)


def _history(value: Iterable[StatusChange]) -> tuple[StatusChange, ...]:
    return tuple(value)


@attrs.frozen
class ExecutionRecord:
    """One run of a workflow as the catalog knows it."""

    rid: RID = attrs.field(converter=_rid, validator=_is_rid)
    workflow_rid: RID | None = attrs.field(default=None, converter=_opt_rid, validator=_is_opt_rid)
    description: str = attrs.field(default="", converter=_text, validator=_is_text)
    status: Status = attrs.field(default=Status.created, converter=_status)
    status_detail: str = attrs.field(default="", converter=_text, validator=_is_text)
    start_time: datetime | None = attrs.field(default=None, converter=_time, validator=_is_aware)
    stop_time: datetime | None = attrs.field(default=None, converter=_time, validator=_is_aware)
    #: Every applied change, oldest first; part of equality (a lost history makes two records differ).
    history: tuple[StatusChange, ...] = attrs.field(factory=tuple, converter=_history)

    @property
    def execution_rid(self) -> RID:
        """The spec's name for :attr:`rid`."""
        return self.rid

    @property
    def duration(self) -> float | None:
        """Seconds between start and stop, from the recorded times (never a clock read)."""
        if self.start_time is None or self.stop_time is None:
            return None
        return max(0.0, (self.stop_time - self.start_time).total_seconds())

    @property
    def duration_text(self) -> str | None:
        """Duration as the catalog's ``Duration`` column stores it: ``H:MM:SS.ffffff``."""
        d = self.duration
        return None if d is None else format_duration(d)


def format_duration(seconds: float) -> str:
    """``3725.5`` → ``"1:02:05.500000"`` (hours may exceed 24)."""
    seconds = max(0.0, seconds)
    whole = int(seconds)
    micro = round((seconds - whole) * 1_000_000)
    if micro == 1_000_000:
        whole, micro = whole + 1, 0
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}.{micro:06d}"


def transition(record: ExecutionRecord, to: Status, detail: str, at: datetime) -> ExecutionRecord:
    """Apply one status change to ``record`` or raise :class:`InvalidTransition` (pure).

    Entering Running for the first time records ``start_time``; entering Completed, Failed or Aborted
    records ``stop_time`` (so the duration is derived from recorded times); a retry (Failed → Pending)
    clears both. ``at`` must be timezone-aware and not earlier than the last change.
    """
    to = Status.parse(to)
    check_transition(record.status, to)
    if at.tzinfo is None:
        raise ValidationError(f"at={at!r} must be timezone-aware")
    if record.history and at < record.history[-1].at:
        at = record.history[-1].at  # clocks may step back; recorded time never does
    start, stop = record.start_time, record.stop_time
    if to is Status.running and record.status is not Status.running:
        start, stop = at, None
    elif to in (Status.completed, Status.failed, Status.aborted):
        stop = at
        if start is None:
            start = at
    elif to is Status.pending and record.status is Status.failed:
        start, stop = None, None
    change = StatusChange(from_status=record.status, to_status=to, detail=str(detail), at=at)
    return attrs.evolve(
        record,
        status=to,
        status_detail=str(detail),
        start_time=start,
        stop_time=stop,
        history=(*record.history, change),
    )


# -------------------------------------------------------------------------------------------- terms


@attrs.frozen
class Term:
    """A controlled-vocabulary term."""

    name: str = attrs.field(converter=_text, validator=_is_text)
    description: str = attrs.field(default="", converter=_text, validator=_is_text)
    synonyms: tuple[str, ...] = attrs.field(factory=tuple, converter=_strings, validator=_are_strings)
    id: str | None = attrs.field(default=None, converter=_opt_text, validator=_is_opt_text)
    uri: str | None = attrs.field(default=None, converter=_opt_text, validator=_is_opt_text)
    rid: RID | None = attrs.field(default=None, converter=_opt_rid, validator=_is_opt_rid)

    def __attrs_post_init__(self) -> None:
        if not self.name.strip():
            raise ValidationError("Term.name must not be empty")
