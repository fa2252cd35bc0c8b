"""The replayed run's side of ``deriva-ml replay``: one call from ``DerivaML.create_execution``.

``deriva-ml replay`` starts the recorded command with these environment variables; the execution the
replayed code creates reads them here:

* ``DERIVA_ML_REPLAY_OF=RID`` — this execution replays execution RID. A metadata file
  ``replay-of-RID.json`` (``{"replay_of": RID, "execution": NEW_RID}``, asset type ``Deriva_Config``) is
  uploaded with the execution's other metadata files: the link is an ordinary ``Execution_Metadata`` row,
  so it works on any deriva-ml catalog (also those made by the reference package) without a schema
  change, and its file name alone tells which execution was replayed (``deriva-ml lineage`` finds the
  replays of an execution with one query on ``Filename``).
* ``DERIVA_ML_REPLAY_DATASETS={"RID": "VERSION", ...}`` — input datasets the code names without a version
  are pinned to the versions the original run used (their catalog snapshots).
* ``DERIVA_ML_REPLAY_RECORD=PATH`` — the new execution's RID is appended to PATH (how replay finds it).

Without ``DERIVA_ML_REPLAY_OF`` nothing happens (the common case costs one dictionary lookup).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ENV_REPLAY_OF = "DERIVA_ML_REPLAY_OF"
ENV_REPLAY_DATASETS = "DERIVA_ML_REPLAY_DATASETS"
ENV_REPLAY_RECORD = "DERIVA_ML_REPLAY_RECORD"
LINK_PREFIX = "replay-of-"
LINK_PATTERN = "replay-of-*.json"


def link_filename(original: str) -> str:
    """The metadata file name that links a replay to execution ``original``."""
    return f"{LINK_PREFIX}{original}.json"


def replayed_rid(filename: str) -> str | None:
    """The RID a link file name names (None for any other name)."""
    if filename.startswith(LINK_PREFIX) and filename.endswith(".json"):
        return filename[len(LINK_PREFIX) : -len(".json")] or None
    return None


def pin_datasets(datasets: Sequence[Any], pins: Mapping[str, str]) -> tuple[Any, ...]:
    """``DatasetSpec``s with no version get the pinned one of their RID (pure)."""
    import attrs

    return tuple(
        attrs.evolve(d, version=pins[str(d.rid)]) if d.version is None and str(d.rid) in pins else d for d in datasets
    )


def child_hook(
    configuration: Any,
    metadata_files: Sequence[tuple[str | os.PathLike[str], str]],
    rid: str,
    work: Path,
    env: Mapping[str, str],
) -> tuple[Any, Sequence[tuple[str | os.PathLike[str], str]]]:
    """The configuration and metadata files of a new execution, adjusted when it is a replay."""
    original = env.get(ENV_REPLAY_OF)
    if not original:
        return configuration, metadata_files
    import attrs

    from deriva_ml.core.definitions import ExecMetadataType

    pins = json.loads(env.get(ENV_REPLAY_DATASETS) or "{}")
    if pins:
        configuration = attrs.evolve(configuration, datasets=pin_datasets(configuration.datasets, pins))
    if str(rid) == "0000":  # a dry run: no execution row, nothing to link or report
        return configuration, metadata_files
    link_dir = Path(work) / "replay"
    link_dir.mkdir(parents=True, exist_ok=True)
    link = link_dir / link_filename(original)
    link.write_text(json.dumps({"replay_of": original, "execution": str(rid)}, indent=2) + "\n", encoding="utf-8")
    record = env.get(ENV_REPLAY_RECORD)
    if record:
        with open(record, "a", encoding="utf-8") as f:
            f.write(f"{rid}\n")
    return configuration, [*metadata_files, (link, ExecMetadataType.deriva_config.value)]
