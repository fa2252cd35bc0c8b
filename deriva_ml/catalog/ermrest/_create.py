"""A new ERMrest catalog for deriva-ml: created on the server, given the deriva-ml schema, an empty domain
schema and the seeded vocabulary terms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deriva_ml.catalog.ermrest._adapter import DEFAULT_SESSION_CONFIG, ErmrestCatalog, lookup_credential
from deriva_ml.catalog.ermrest._errors import translate
from deriva_ml.catalog.port import ML_SCHEMA
from deriva_ml.catalog.schema import ML_TABLES, seed_batch
from deriva_ml.core.errors import ValidationError


def create_ml_catalog(
    hostname: str,
    project_name: str,
    *,
    credential: Mapping[str, Any] | None = None,
    session_config: Mapping[str, Any] | None = None,
    batch_size: int = 1000,
    scheme: str = "https",
) -> ErmrestCatalog:
    """Create a new catalog with the deriva-ml schema, an empty domain schema ``project_name`` and seeded terms.

    Requests: ``POST /ermrest/catalog``, ``GET /schema``, one ``POST /schema``, ``GET /schema``, then one
    ``POST /entity`` per seeded vocabulary.
    """
    from deriva.core import DEFAULT_SESSION_CONFIG as DERIVA_DEFAULTS
    from deriva.core import DerivaServer

    cred = credential if credential is not None else lookup_credential(hostname)
    config = {**DERIVA_DEFAULTS, **DEFAULT_SESSION_CONFIG, **(session_config or {})}
    server = DerivaServer(scheme, hostname, credentials=cred, session_config=config)
    import requests

    try:
        r = server.post("/ermrest/catalog")
        if r.status_code >= 400:
            r.raise_for_status()
    except requests.HTTPError as e:
        raise translate(e.response, f"create catalog on {hostname}", None) from e
    catalog_id = str(r.json()["id"])
    cat = ErmrestCatalog(
        hostname, catalog_id, credential=cred, session_config=session_config, batch_size=batch_size, scheme=scheme
    )
    cat.request_count += 1
    cat.requests["POST"] += 1
    if project_name in (ML_SCHEMA, "public", "WWW"):
        raise ValidationError(f"project_name {project_name!r} is reserved; choose another domain schema name")
    cat.create_tables(ML_TABLES, schemas=[project_name])
    cat.apply(seed_batch())
    return cat
