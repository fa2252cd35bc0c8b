"""Object transfer of a sync: the files asset rows name, copied from the source store to the target's.

Objects are content-addressed (``/hatrac/<Table>/<md5>.<filename>``) and copied only when the target lacks
them, so a copy interrupted or repeated is harmless. When the target's store gives the bytes another name
(the content-addressed one was deleted there once), the alternative is checked, recorded in the progress
file before any row names it, and the batch's URLs are rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from deriva_ml.core.effects import Batch, Effect, Insert, Update
from deriva_ml.core.errors import ValidationError
from deriva_ml.sync._faults import _step

if TYPE_CHECKING:
    from deriva_ml.sync import HasPorts
    from deriva_ml.sync._state import _State


def _copy_objects(
    source: HasPorts,
    target: HasPorts,
    batch: Batch,
    tmp: Path,
    model: Any,
    counts: list[int],
    url_map: dict[str, str],
    state: _State,
) -> Batch:
    """Copy the objects the batch's asset rows name to the target's store; the batch with each URL the
    target stored under another name rewritten (``url_map``, kept in the progress file)."""
    from deriva_ml.catalog.schema import is_asset

    rewrite = False
    for effect in batch.effects:
        if not isinstance(effect, (Insert, Update)):
            continue
        table = model.table(effect.schema, effect.table)
        if table is None or not is_asset(table):
            continue
        for row in effect.rows:
            url, md5, name = row.get("URL"), row.get("MD5"), row.get("Filename")
            if not url:
                continue
            if url in url_map:
                rewrite = True
            if not md5 or not isinstance(effect, Insert):
                continue
            if target.ports.store.stat(str(url_map.get(url, url))) is not None:
                continue
            local = source.ports.store.get(url, tmp / f"{md5}.bin", md5=md5)
            stored = target.ports.store.put(local, table=effect.table, filename=name or Path(url).name, md5=md5)
            _step("object_put")
            if stored.url != url:
                _check_alternative(url, stored, md5, local.stat().st_size)
                # recorded before any row names it; a kill before this is reconciled on resume: the stat
                # above misses, and the store's put finds the same bytes under the same alternative name
                state.record_url(url, stored.url)
                url_map[url] = stored.url
                rewrite = True
            counts[0] += 1
            counts[1] += stored.length
            local.unlink(missing_ok=True)
            _step("object")
    return _with_target_urls(batch, url_map, model) if rewrite else batch


def _check_alternative(url: str, stored: Any, md5: str, length: int) -> None:
    """The target stored the object under another name: acceptable only as the same bytes under the
    content-addressed alternative ``/hatrac/<Table>/<md5>-<n>.<filename>`` of ``url``."""
    import re

    head, _, last = url.rpartition("/")
    prefix, dot, filename = last.partition(".")
    shape = re.compile(re.escape(f"{head}/{prefix}") + r"-\d+" + re.escape(f"{dot}{filename}") + r"$")
    if not shape.search(stored.url) or (stored.md5 or md5).lower() != md5.lower() or stored.length not in (length, -1):
        raise ValidationError(
            f"target store gives {stored.url} for {url}: provenance would change; the target must store the "
            f"same bytes (MD5 {md5}, {length} bytes) under {url} or its alternative {head}/{prefix}-<n>{dot}{filename}"
        )


def _with_target_urls(batch: Batch, url_map: Mapping[str, str], model: Any) -> Batch:
    """``batch`` with the URL values of asset rows mapped to the target's URLs."""
    from deriva_ml.catalog.schema import is_asset

    effects: list[Effect] = []
    for effect in batch.effects:
        if isinstance(effect, (Insert, Update)):
            table = model.table(effect.schema, effect.table)
            if table is not None and is_asset(table) and any(r.get("URL") in url_map for r in effect.rows):
                rows = [{**r, "URL": url_map[r["URL"]]} if r.get("URL") in url_map else dict(r) for r in effect.rows]
                effect = attrs.evolve(effect, rows=rows)
        effects.append(effect)
    return Batch(effects)
