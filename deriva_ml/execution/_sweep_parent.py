"""What a sweep's ``.deriva_ml/parent.json`` holds: the parent's RID and how to reconnect, never a secret.

The first job of a sweep writes the file for every later job and for finalization (see
:mod:`deriva_ml.execution._sweep`). The job's ``deriva_ml`` config in it is resolved (``${oc.env:...}``
values included), so its secret entries are withheld (:func:`parent_record`) and put back from the
launching process's own config when it finalizes (:func:`restore_withheld`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from deriva_ml.core.redact import REDACTED, is_secret_name, redact_jsonable


def parent_record(data: Mapping[str, Any]) -> dict[str, Any]:
    """What ``parent.json`` keeps of the parent ``create()`` returned (pure): no secret.

    In the job's ``deriva_ml`` config (``deriva_ml_config``, resolved, so ``${oc.env:...}`` values are in
    it) every entry with a secret name (``credential``, a ``password``, a ``session_config``...) is left
    out, whatever its type, and its key path listed under ``withheld``; a value with a secret in it (a
    ``user:pw@`` URL) is kept redacted and listed there too; the plain ``connection`` is redacted. Reconnecting needs no secret: ``credential_ref``
    names the host whose credential the catalog looks up (deriva-py's credential file) when the launching
    process cannot supply the withheld entries from its own config (:func:`restore_withheld`).
    """
    out = dict(data)
    if "connection" in out:
        out["connection"] = redact_jsonable(out["connection"])
    node = out.get("deriva_ml_config")
    if isinstance(node, Mapping):
        withheld: list[list[str]] = []
        out["deriva_ml_config"] = _withhold(node, [], withheld)
        if withheld:
            out["withheld"] = withheld
            conn = out.get("connection")
            host = node.get("hostname") or (conn.get("hostname") if isinstance(conn, Mapping) else None)
            out["credential_ref"] = {"host": host, "lookup": "deriva-py credential file (get_credential)"}
    elif node is not None:
        out["deriva_ml_config"] = redact_jsonable(node)
    return out


def _withhold(node: Any, path: list[str], withheld: list[list[str]]) -> Any:
    if isinstance(node, Mapping):
        kept = {}
        for key, value in node.items():
            here = [*path, str(key)]
            if is_secret_name(str(key)) and value not in (None, "", {}, []):
                withheld.append(here)
            elif not isinstance(value, Mapping | list | tuple) and (clean := _redacted(value, here)) != value:
                withheld.append(here)  # a value with a secret in it (a URL's user:pw@): kept redacted
                if clean != REDACTED:
                    kept[key] = clean
            else:
                kept[key] = _withhold(value, here, withheld)
        return kept
    if isinstance(node, list | tuple):
        return [_withhold(v, path, withheld) for v in node]
    return _redacted(node, path)


def _redacted(value: Any, path: list[str]) -> Any:
    return redact_jsonable(value, key=path[-1] if path else None)


def restore_withheld(
    node: Mapping[str, Any], withheld: Iterable[Iterable[str]], live_node: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``node`` with each ``withheld`` key path set from ``live_node`` where it has one (pure); paths it
    lacks stay out, so the connection falls back to its defaults (the host's stored credential)."""
    out: dict[str, Any] = _copy(node)
    for path in withheld:
        keys = [str(k) for k in path]
        src: Any = live_node
        for k in keys:
            src = src.get(k) if isinstance(src, Mapping) else None
        if src is None or not keys:
            continue
        dst = out
        for k in keys[:-1]:
            dst = dst.setdefault(k, {}) if isinstance(dst.get(k, {}), dict) else {}
        dst[keys[-1]] = src
    return out


def _copy(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {k: _copy(v) for k, v in node.items()}
    return list(node) if isinstance(node, list) else node


def resolved_node(node: Any) -> dict[str, Any] | None:
    """A Hydra config node as a plain resolved dict; None when it is absent or does not resolve here."""
    if node is None:
        return None
    try:
        from omegaconf import OmegaConf

        container = OmegaConf.to_container(node, resolve=True)
    except Exception:  # e.g. ${hydra:...} outside a job
        return None
    return {str(k): v for k, v in container.items()} if isinstance(container, dict) else None
