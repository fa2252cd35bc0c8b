"""Run ``roc-validator``'s profile checks with no network.

The validator downloads the RO-Crate JSON-LD context from w3id.org. Here it is served from the copy shipped
inside the ``rocrate`` package (the 1.3 context); for the 1.1 context URL (the one the Workflow Run Crate 0.5
profiles build on) the four Bioschemas terms whose IRIs changed after 1.1 are mapped back to their 1.1
IRIs (``https://bioschemas.org/ComputationalWorkflow``, ``.../FormalParameter``,
``.../ComputationalWorkflow#input`` and ``#output``, the IRIs the validator's 1.1 shapes use). Every other
request to a host other than 127.0.0.1 fails as it would offline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_V11 = {
    "ComputationalWorkflow": "https://bioschemas.org/ComputationalWorkflow",
    "FormalParameter": "https://bioschemas.org/FormalParameter",
    "input": "https://bioschemas.org/ComputationalWorkflow#input",
    "output": "https://bioschemas.org/ComputationalWorkflow#output",
}


def _context_bytes(path: str) -> bytes:
    import rocrate

    doc = json.loads((Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld").read_text())
    if "/1.1/" in path:
        doc["@context"].update(_V11)
    return json.dumps(doc).encode()


@contextmanager
def offline_contexts() -> Iterator[None]:
    import requests
    from requests.adapters import HTTPAdapter

    original = HTTPAdapter.send

    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(request.url)
        if parts.hostname == "w3id.org" and parts.path.startswith("/ro/crate/") and parts.path.endswith("/context"):
            r = requests.Response()
            r.status_code = 200
            r._content = _context_bytes(parts.path)
            r.headers["Content-Type"] = "application/ld+json"
            r.url = request.url
            r.request = request
            return r
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise requests.ConnectionError(f"offline test: no network to {parts.hostname}")
        return original(self, request, *args, **kwargs)

    HTTPAdapter.send = send  # type: ignore[method-assign]
    try:
        yield
    finally:
        HTTPAdapter.send = original  # type: ignore[method-assign]


def validate_crate(path: Path, profile: str) -> list[str]:
    """The REQUIRED-level issues of the crate at ``path`` under ``profile`` (with its inherited profiles)."""
    from rocrate_validator import services
    from rocrate_validator.models import ValidationSettings

    with offline_contexts():
        settings = ValidationSettings(
            rocrate_uri=str(path), profile_identifier=profile, requirement_severity="REQUIRED", no_cache=True
        )
        result = services.validate(settings)
    return [f"{i.check.name}: {i.message}" for i in result.get_issues()] + ([] if result.passed() else ["not passed"])


def metadata(path: Path) -> dict[str, Any]:
    return json.loads((path / "ro-crate-metadata.json").read_text())
