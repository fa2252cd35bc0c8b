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

import attrs

from deriva_ml.core.errors import InvalidVersion, ValidationError
from deriva_ml.core.rid import RID, parse_rid
from deriva_ml.core.status import Status, check_transition

# --------------------------------------------------------------------------------------------- helpers


def _opt_rid(field: str) -> Callable[[object], RID | None]:
    def convert(value: object) -> RID | None:
        return None if value is None or value == "" else parse_rid(value, field)

    return convert


def _str_tuple(field: str) -> Callable[[object], tuple[str, ...]]:
    def convert(value: object) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, Iterable):
            items = tuple(value)
            for item in items:
                if not isinstance(item, str):
                    raise ValidationError(f"{field} must contain strings; got {item!r} in {value!r}")
            return items
        raise ValidationError(f"{field}={value!r} must be a string or a list of strings")

    return convert


def _opt_str(field: str) -> Callable[[object], str | None]:
    def convert(value: object) -> str | None:
        if value is None or isinstance(value, str):
            return value
        raise ValidationError(f"{field}={value!r} must be a string or None")

    return convert


def _str(field: str) -> Callable[[object], str]:
    def convert(value: object) -> str:
        if isinstance(value, str):
            return value
        if value is None:
            return ""
        raise ValidationError(f"{field}={value!r} must be a string")

    return convert


def _bool(field: str) -> Callable[[object], bool]:
    def convert(value: object) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValidationError(f"{field}={value!r} must be true or false")

    return convert


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


def _dataset_spec_materialize(value: object) -> bool:
    return _bool("DatasetSpec.materialize")(value)


def _dataset_spec_description(value: object) -> str:
    return _str("DatasetSpec.description")(value)


def _dataset_spec_rid(value: object) -> RID:
    return parse_rid(value, "DatasetSpec.rid")


@attrs.frozen
class DatasetSpec:
    """An input dataset: its RID, a version (``None`` = the current one) and whether to fetch files."""

    rid: RID = attrs.field(converter=_dataset_spec_rid)
    version: DatasetVersion | None = attrs.field(default=None, converter=_opt_version)
    materialize: bool = attrs.field(default=True, converter=_dataset_spec_materialize)
    description: str = attrs.field(default="", converter=_dataset_spec_description)


def _asset_spec_cache(value: object) -> bool:
    return _bool("AssetSpec.cache")(value)


def _asset_spec_rid(value: object) -> RID:
    return parse_rid(value, "AssetSpec.rid")


@attrs.frozen
class AssetSpec:
    """An input asset by RID; ``cache=True`` keeps it in the MD5-addressed cache between runs."""

    rid: RID = attrs.field(converter=_asset_spec_rid)
    cache: bool = attrs.field(default=False, converter=_asset_spec_cache)


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


def _dataset_specs(value: object) -> tuple[DatasetSpec, ...]:
    if value is None:
        return ()
    if isinstance(value, str | DatasetSpec | Mapping):
        value = [value]
    if not isinstance(value, Iterable):
        raise ValidationError(f"datasets={value!r} must be a list of DatasetSpec")
    return tuple(as_dataset_spec(v) for v in value)


def _asset_specs(value: object) -> tuple[AssetSpec, ...]:
    if value is None:
        return ()
    if isinstance(value, str | AssetSpec | Mapping):
        value = [value]
    if not isinstance(value, Iterable):
        raise ValidationError(f"assets={value!r} must be a list of AssetSpec or RID strings")
    return tuple(as_asset_spec(v) for v in value)


def _str_map(field: str) -> Callable[[object], Mapping[str, str]]:
    def convert(value: object) -> Mapping[str, str]:
        if value is None:
            return MappingProxyType({})
        if not isinstance(value, Mapping):
            raise ValidationError(f"{field}={value!r} must be a mapping of strings to strings")
        out: dict[str, str] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(f"{field} key {k!r} must be a string")
            out[k] = v if isinstance(v, str) else str(v)
        return MappingProxyType(out)

    return convert


# -------------------------------------------------------------------------------------------- workflow


def _workflow_name(value: object) -> str:
    return _str("Workflow.name")(value)


def _workflow_workflow_type(value: object) -> tuple[str, ...]:
    return _str_tuple("Workflow.workflow_type")(value)


def _workflow_description(value: object) -> str | None:
    return _opt_str("Workflow.description")(value)


def _workflow_url(value: object) -> str | None:
    return _opt_str("Workflow.url")(value)


def _workflow_checksum(value: object) -> str | None:
    return _opt_str("Workflow.checksum")(value)


def _workflow_version(value: object) -> str | None:
    return _opt_str("Workflow.version")(value)


def _workflow_rid(value: object) -> RID | None:
    return _opt_rid("Workflow.rid")(value)


def _workflow_is_notebook(value: object) -> bool:
    return _bool("Workflow.is_notebook")(value)


@attrs.frozen
class Workflow:
    """What code ran: a reusable definition that many executions reference.

    ``url`` and ``checksum`` left as ``None`` mean "detect the calling source": the shell fills them
    (``ml.create_workflow`` at once, a bare ``Workflow(...)`` when it is registered). ``rid`` is set
    once the workflow is in a catalog.
    """

    name: str = attrs.field(converter=_workflow_name)
    workflow_type: tuple[str, ...] = attrs.field(converter=_workflow_workflow_type)
    description: str | None = attrs.field(default=None, converter=_workflow_description)
    url: str | None = attrs.field(default=None, converter=_workflow_url)
    checksum: str | None = attrs.field(default=None, converter=_workflow_checksum)
    version: str | None = attrs.field(default=None, converter=_workflow_version)
    rid: RID | None = attrs.field(default=None, converter=_workflow_rid)
    is_notebook: bool = attrs.field(default=False, converter=_workflow_is_notebook)

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


def _execution_configuration_description(value: object) -> str:
    return _str("ExecutionConfiguration.description")(value)


def _execution_configuration_argv(value: object) -> tuple[str, ...]:
    return _str_tuple("ExecutionConfiguration.argv")(value)


def _execution_configuration_config_choices(value: object) -> Mapping[str, str]:
    return _str_map("ExecutionConfiguration.config_choices")(value)


@attrs.frozen
class ExecutionConfiguration:
    """What an execution will use: workflow, input datasets and assets, description, argv, choices."""

    workflow: Workflow | RID | None = attrs.field(default=None, converter=_workflow_or_rid)
    description: str = attrs.field(default="", converter=_execution_configuration_description)
    datasets: tuple[DatasetSpec, ...] = attrs.field(factory=tuple, converter=_dataset_specs)
    assets: tuple[AssetSpec, ...] = attrs.field(factory=tuple, converter=_asset_specs)
    argv: tuple[str, ...] = attrs.field(factory=tuple, converter=_execution_configuration_argv)
    #: A read-only mapping (``types.MappingProxyType``): the record cannot be changed in place.
    config_choices: Mapping[str, str] = attrs.field(
        factory=dict, converter=_execution_configuration_config_choices, hash=False
    )


# ------------------------------------------------------------------------------------ execution record


@attrs.frozen
class StatusChange:
    """One applied status change: from, to, detail and when (a timezone-aware datetime)."""

    from_status: Status | None
    to_status: Status
    detail: str
    at: datetime


def _aware(field: str) -> Callable[[object], datetime | None]:
    def convert(value: object) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValidationError(f"{field}={value!r} must be timezone-aware")
            return value
        raise ValidationError(f"{field}={value!r} must be a datetime")

    return convert


def _execution_record_workflow_rid(value: object) -> RID | None:
    return _opt_rid("ExecutionRecord.workflow_rid")(value)


def _execution_record_description(value: object) -> str:
    return _str("ExecutionRecord.description")(value)


def _execution_record_status_detail(value: object) -> str:
    return _str("ExecutionRecord.status_detail")(value)


def _execution_record_start_time(value: object) -> datetime | None:
    return _aware("ExecutionRecord.start_time")(value)


def _execution_record_stop_time(value: object) -> datetime | None:
    return _aware("ExecutionRecord.stop_time")(value)


def _execution_record_rid(value: object) -> RID:
    return parse_rid(value, "ExecutionRecord.rid")


def _status(value: object) -> Status:
    return Status.parse(value)


def _history(value: Iterable[StatusChange]) -> tuple[StatusChange, ...]:
    return tuple(value)


@attrs.frozen
class ExecutionRecord:
    """One run of a workflow as the catalog knows it."""

    rid: RID = attrs.field(converter=_execution_record_rid)
    workflow_rid: RID | None = attrs.field(default=None, converter=_execution_record_workflow_rid)
    description: str = attrs.field(default="", converter=_execution_record_description)
    status: Status = attrs.field(default=Status.created, converter=_status)
    status_detail: str = attrs.field(default="", converter=_execution_record_status_detail)
    start_time: datetime | None = attrs.field(default=None, converter=_execution_record_start_time)
    stop_time: datetime | None = attrs.field(default=None, converter=_execution_record_stop_time)
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


def _term_name(value: object) -> str:
    return _str("Term.name")(value)


def _term_description(value: object) -> str:
    return _str("Term.description")(value)


def _term_synonyms(value: object) -> tuple[str, ...]:
    return _str_tuple("Term.synonyms")(value)


def _term_id(value: object) -> str | None:
    return _opt_str("Term.id")(value)


def _term_uri(value: object) -> str | None:
    return _opt_str("Term.uri")(value)


def _term_rid(value: object) -> RID | None:
    return _opt_rid("Term.rid")(value)


@attrs.frozen
class Term:
    """A controlled-vocabulary term."""

    name: str = attrs.field(converter=_term_name)
    description: str = attrs.field(default="", converter=_term_description)
    synonyms: tuple[str, ...] = attrs.field(factory=tuple, converter=_term_synonyms)
    id: str | None = attrs.field(default=None, converter=_term_id)
    uri: str | None = attrs.field(default=None, converter=_term_uri)
    rid: RID | None = attrs.field(default=None, converter=_term_rid)

    def __attrs_post_init__(self) -> None:
        if not self.name.strip():
            raise ValidationError("Term.name must not be empty")
