"""The canonical provenance record of an execution, and its hash.

Three steps, each testable alone:

- :func:`~deriva_ml.provenance.gather.gather_execution` (shell, :mod:`deriva_ml.provenance.gather`) reads the catalog rows of one execution — and with ``recurse=True`` of its
  nested children — into a frozen :class:`ExecutionFacts`. Its requests do not depend on how many inputs or
  outputs the execution has: a fixed number per execution, plus one or three per asset table and one per
  feature-shaped table of the model, plus two object reads (``configuration.json`` and the environment
  snapshot).
- :func:`canonical_record` (pure, here) turns the facts (:mod:`deriva_ml.provenance.facts`) into the canonical JSON document: a ``content`` part (what
  the run *was*: code, inputs, configuration, environment, outputs, children) and a ``record`` part (what
  happened in *this* catalog: RIDs, snapshots, URLs, status, times, descriptions).
- :func:`provenance_hash` (pure) is the SHA-256 of the canonical JSON of the content part (sorted keys, no
  insignificant whitespace, UTF-8).

Inside ``content`` no RID, snapshot, URL or time appears: rows are named by content identities that survive
``deriva-ml sync`` (which gives every row a new RID and every dataset version a new snapshot, but copies
file names, MD5s, descriptions, version strings and terms unchanged). See docs/provenance.md for the list.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from deriva_ml.core.definitions import AssetRole, ExecMetadataType
from deriva_ml.core.errors import ValidationError
from deriva_ml.provenance.facts import METRICS_FILE, AssetFact, DatasetFact, ExecutionFacts, FeatureFact, is_metadata

# gathering (the shell) lives in its own module; its names stay importable from here
from deriva_ml.provenance.gather import feature_tables, gather_execution, versions_used

if TYPE_CHECKING:
    from deriva_ml.context import Ports
    from deriva_ml.services.schema import SchemaService

__all__ = [
    "CANONICAL_VERSION",
    "AssetFact",
    "DatasetFact",
    "ExecutionFacts",
    "FeatureFact",
    "canonical_json",
    "canonical_record",
    "feature_tables",
    "gather_execution",
    "provenance_hash",
    "versions_used",
]


#: Names the shape of the canonical document; part of the hashed content (a new shape is a new hash).
CANONICAL_VERSION = "deriva-ml/provenance/1"

#: Hydra writes ``hydra-<stamp>-config.yaml`` etc.; ``hydra.yaml`` holds run directories and times.
_HYDRA_NAME = re.compile(r"^hydra-[0-9_]+-(?P<name>.+)$")
_HYDRA_HASHED = ("config.yaml", "overrides.yaml")

#: Where an execution's metrics come from: by default its uploaded metrics log (``gather._metrics_of``); a
#: caller may pass ``metrics=`` to :func:`gather_execution`, or set this, to read them elsewhere.
MetricsSource = Callable[["Ports", "SchemaService", str], Mapping[str, Any]]
METRICS_SOURCE: MetricsSource | None = None


# ------------------------------------------------------------------------------------------------ pure


def canonical_json(value: Any) -> str:
    """The canonical JSON text: sorted keys, no insignificant whitespace, non-ASCII kept (hashed as UTF-8)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _sorted(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return sorted((dict(x) for x in items), key=canonical_json)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _python_version(version: Any) -> str | None:
    return str(version).split()[0] if version else None


def _packages_digest(packages: Any) -> str | None:
    if not packages:
        return None
    pairs = sorted((str(p.get("name", "")).lower(), str(p.get("version", ""))) for p in packages)
    return hashlib.sha256(canonical_json(pairs).encode("utf-8")).hexdigest()


def _hydra_name(filename: str) -> str:
    m = _HYDRA_NAME.match(filename)
    return m.group("name") if m else filename


def _dataset_identity(d: DatasetFact) -> dict[str, Any]:
    return {"description": d.description, "version": d.version, "types": list(d.types)}


def _environment(facts: ExecutionFacts) -> dict[str, Any]:
    env = facts.environment or {}
    python = env.get("python") or {}
    osinfo = env.get("os") or {}
    locks = sorted(
        a.md5
        for a in facts.assets
        if is_metadata(a) and a.filename == "uv.lock" and ExecMetadataType.execution_config.value in a.types
    )
    out: dict[str, Any] = {
        "lock_md5": locks[0] if locks else None,
        "python": _python_version(python.get("version")),
        "implementation": python.get("implementation"),
        "system": osinfo.get("system"),
        "machine": osinfo.get("machine"),
    }
    if not locks:  # no lock file recorded: the installed packages stand in for it
        out["packages_sha256"] = _packages_digest(env.get("packages"))
    return out


def _configuration(facts: ExecutionFacts) -> dict[str, Any]:
    cfg = facts.configuration or {}
    hydra = [
        {"name": _hydra_name(a.filename), "md5": a.md5}
        for a in facts.assets
        if is_metadata(a)
        and ExecMetadataType.hydra_config.value in a.types
        and _hydra_name(a.filename) in _HYDRA_HASHED
    ]
    return {
        "config_choices": dict(sorted((cfg.get("config_choices") or {}).items())),
        # argv[0] is the program's path on the machine that ran it (the workflow names the code)
        "arguments": list(cfg.get("argv") or [])[1:],
        "hydra": _sorted(hydra),
    }


#: Metadata files whose content is represented elsewhere in the record (or carries times, paths, RIDs).
_REPRESENTED = frozenset(
    {
        ExecMetadataType.deriva_config.value,
        ExecMetadataType.runtime_env.value,
        ExecMetadataType.execution_config.value,
        ExecMetadataType.hydra_config.value,
    }
)


def _content(facts: ExecutionFacts) -> dict[str, Any]:
    wf = facts.workflow or {}
    inputs = [a for a in facts.assets if a.role == AssetRole.input.value]
    # the metrics log (times of logging in its bytes) is represented by ``outputs.metrics`` when a metrics
    # source is wired; without one, its MD5 stands for the metrics
    skip = _REPRESENTED | ({METRICS_FILE} if facts.metrics else set())
    outputs = [
        a for a in facts.assets if a.role != AssetRole.input.value and not (is_metadata(a) and skip & set(a.types))
    ]
    content: dict[str, Any] = {
        "canonical": CANONICAL_VERSION,
        "workflow": {"url": wf.get("URL"), "checksum": wf.get("Checksum"), "version": wf.get("Version")},
        "inputs": {
            "datasets": _sorted([_dataset_identity(d) for d in facts.datasets if d.role != AssetRole.output.value]),
            "assets": _sorted([{"table": a.table, "filename": a.filename, "md5": a.md5} for a in inputs]),
        },
        "configuration": _configuration(facts),
        "environment": _environment(facts),
        "outputs": {
            "assets": _sorted(
                [
                    {"table": a.table, "filename": a.filename, "md5": a.md5, "length": a.length, "types": list(a.types)}
                    for a in outputs
                ]
            ),
            "datasets": _sorted([_dataset_identity(d) for d in facts.datasets if d.role == AssetRole.output.value]),
            "features": sorted(
                ({"table": f.table, "values": _sorted(f.values)} for f in facts.features if f.values),
                key=canonical_json,
            ),
            "metrics": json.loads(canonical_json(dict(facts.metrics))),
        },
    }
    if facts.recursed:
        content["children"] = [{"sequence": seq, "content": c} for seq, c, _ in _ordered_children(facts)]
    return content


def _ordered_children(facts: ExecutionFacts) -> list[tuple[int | None, dict[str, Any], ExecutionFacts]]:
    """Children by sequence (unsequenced last), ties by content: the same order in content and record."""
    rows = [(seq, _content(child), child) for seq, child in facts.children]
    return sorted(rows, key=lambda x: (x[0] is None, x[0] or 0, canonical_json(x[1])))


def _record(facts: ExecutionFacts) -> dict[str, Any]:
    ex = facts.execution
    wf = facts.workflow or {}
    env = facts.environment or {}
    record: dict[str, Any] = {
        "rid": facts.rid,
        "description": ex.get("Description") or "",
        "status": ex.get("Status"),
        "status_detail": ex.get("Status_Detail") or "",
        "created": _text(ex.get("RCT")),
        "modified": _text(ex.get("RMT")),
        "duration": ex.get("Duration"),
        "environment_captured_at": env.get("captured_at"),
        "workflow": {"rid": wf.get("RID"), "name": wf.get("Name"), "description": wf.get("Description")},
        "datasets": sorted(
            (
                {"rid": d.rid, "role": d.role, "version": d.version, "snapshot": d.snapshot, "types": list(d.types)}
                for d in facts.datasets
            ),
            key=canonical_json,
        ),
        "assets": sorted(
            (
                {"table": a.table, "rid": a.rid, "url": a.url, "filename": a.filename, "md5": a.md5, "role": a.role}
                for a in facts.assets
            ),
            key=canonical_json,
        ),
        "children": [{"rid": rid, "sequence": seq} for seq, rid in facts.child_rids],
    }
    if facts.recursed:
        record["children"] = [
            {"rid": child.rid, "sequence": seq, "record": _record(child)} for seq, _, child in _ordered_children(facts)
        ]
    return record


def dataset_record(record: Mapping[str, Any], dataset: Mapping[str, Any], role: str) -> Mapping[str, Any] | None:
    """The ``record`` entry (RID, snapshot) of a dataset of the ``content`` part: same role, version, types."""
    for rd in record.get("datasets") or []:
        entry: Mapping[str, Any] = rd
        if (
            entry.get("role") == role
            and entry.get("version") == dataset.get("version")
            and sorted(entry.get("types") or []) == sorted(dataset.get("types") or [])
        ):
            return entry
    return None


def canonical_record(facts: ExecutionFacts) -> dict[str, Any]:
    """The canonical document ``{"content", "record", "hash"}`` of ``facts`` (pure: no I/O, no clock).

    ``content`` holds only content identities (hashed); ``record`` holds this catalog's RIDs, URLs,
    snapshots, status and times (not hashed). ``hash`` is :func:`provenance_hash` of ``content``.
    """
    content = _content(facts)
    return {"content": content, "record": _record(facts), "hash": _hash_content(content)}


def _hash_content(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def provenance_hash(doc_or_facts: ExecutionFacts | Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of the content part.

    Accepts :class:`ExecutionFacts`, a canonical document (``{"content": ...}``) or a content part.
    """
    if isinstance(doc_or_facts, ExecutionFacts):
        content: Mapping[str, Any] = _content(doc_or_facts)
    elif "content" in doc_or_facts and "canonical" not in doc_or_facts:
        content = doc_or_facts["content"]
    else:
        content = doc_or_facts
    if not isinstance(content, Mapping) or content.get("canonical") != CANONICAL_VERSION:
        raise ValidationError(
            f"not a canonical provenance content part (expected key 'canonical' = {CANONICAL_VERSION!r}); "
            f"got keys {sorted(content) if isinstance(content, Mapping) else type(content).__name__}"
        )
    return _hash_content(content)
