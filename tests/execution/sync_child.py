"""Run one ``sync`` in a child process (the kill tests SIGKILL it): ``python sync_child.py '<json>'``.

The JSON names the source (``home``, ``catalog``) and the target: ``{"kind": "local", "home", "catalog"}``
or ``{"kind": "http", "host", "catalog", "hatrac"}`` (the ERMrest and Hatrac fakes, or the lab with
``"scheme": "https"``). Prints the report as one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "catalog"), str(HERE.parent / "store")]


def open_target(spec: dict, home: Path):  # type: ignore[no-untyped-def]
    from deriva_ml import DerivaML

    if spec["kind"] == "local":
        return DerivaML("local", spec["catalog"], home=Path(spec["home"]))
    from deriva_ml.catalog.ermrest import ErmrestCatalog

    scheme = spec.get("scheme", "http")
    if scheme == "http":
        import requests

        from deriva_ml.store.hatrac import HatracObjectStore
        from deriva_ml.store.port import UploadOptions

        cat = ErmrestCatalog(spec["host"], spec["catalog"], scheme="http", credential={})
        session = requests.Session()
        session.trust_env = False
        store = HatracObjectStore(
            spec["hatrac"],
            session=session,
            options=UploadOptions(timeout=(5.0, 10.0), max_retries=3, retry_delay=0.5),
            jitter=None,
        )
        return DerivaML(spec["host"], spec["catalog"], catalog=cat, store=store, home=home)
    # the lab: credential from DERIVA_ML_TEST_CREDENTIAL_FILE (a deriva-py credential file)
    from deriva_ml.store.hatrac import HatracObjectStore

    data = json.loads(Path(os.environ["DERIVA_ML_TEST_CREDENTIAL_FILE"]).read_text())
    credential = data.get(spec["host"], data)
    cat = ErmrestCatalog(spec["host"], spec["catalog"], credential=credential)
    store = HatracObjectStore(spec["host"], credential=credential)
    return DerivaML(spec["host"], spec["catalog"], catalog=cat, store=store, home=home)


def main() -> None:
    from deriva_ml import DerivaML
    from deriva_ml.sync import sync

    spec = json.loads(sys.argv[1])
    source = DerivaML("local", spec["catalog"], home=Path(spec["home"]))
    target = open_target(spec["target"], Path(spec["home"]) / "target-home")
    report = sync(source, target)
    print(
        json.dumps(
            {
                "entries_applied": report.entries_applied,
                "entries_read": report.entries_read,
                "objects_copied": report.objects_copied,
                "batches_applied": report.batches_applied,
                "recovered": report.recovered,
                "last_seq": report.last_seq,
                "rid_map": dict(report.rid_map),
                "url_map": dict(report.url_map),
            }
        )
    )


if __name__ == "__main__":
    main()
