"""Git facts through dulwich only (no ``git`` subprocess anywhere in deriva_ml): the one import for them.

The work is split by job: :mod:`~deriva_ml.source.objects` (blob and tree ids, raw bytes like
``git hash-object --no-filters``), :mod:`~deriva_ml.source.index` (reading the index),
:mod:`~deriva_ml.source.dirty` (the fast dirty check) and :mod:`~deriva_ml.source.repo` (repository
location, ``HEAD``, remote, version tags, history). Callers import the names below from here.
"""

from __future__ import annotations

from deriva_ml.source.dirty import S_IFGITLINK as S_IFGITLINK
from deriva_ml.source.dirty import dirty_state as dirty_state
from deriva_ml.source.dirty import file_is_dirty as file_is_dirty
from deriva_ml.source.facts import DirtyState as DirtyState
from deriva_ml.source.facts import TagFacts as TagFacts
from deriva_ml.source.index import IndexRecord as IndexRecord
from deriva_ml.source.index import read_index as read_index
from deriva_ml.source.objects import CHUNK as CHUNK
from deriva_ml.source.objects import blob_id as blob_id
from deriva_ml.source.objects import blob_id_of_bytes as blob_id_of_bytes
from deriva_ml.source.repo import commit_count as commit_count
from deriva_ml.source.repo import find_repo_root as find_repo_root
from deriva_ml.source.repo import head_sha as head_sha
from deriva_ml.source.repo import nearest_tag as nearest_tag
from deriva_ml.source.repo import remote_url as remote_url

__all__ = [
    "CHUNK",
    "IndexRecord",
    "blob_id",
    "blob_id_of_bytes",
    "commit_count",
    "dirty_state",
    "file_is_dirty",
    "find_repo_root",
    "head_sha",
    "nearest_tag",
    "read_index",
    "remote_url",
]
