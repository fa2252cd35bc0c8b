"""The path ``asset_file_path`` returns (``AssetFilePath``) and the record of one uploaded output."""

from __future__ import annotations

from pathlib import PosixPath
from typing import TYPE_CHECKING, Any

import attrs

from deriva_ml.core.errors import ExecutionError
from deriva_ml.core.rid import RID

if TYPE_CHECKING:
    from deriva_ml.execution._execution import Execution


def check_plain_name(name: str) -> str:
    from deriva_ml.store.names import validate_filename

    return validate_filename(name)


class AssetFilePath(PosixPath):
    """The path ``asset_file_path`` returns: a real path, plus ``set_metadata`` for the asset row."""

    _execution: Execution | None = None
    asset_name: str = ""
    file_name: str = ""
    asset_types: tuple[str, ...] = ()

    def set_metadata(self, column: str, value: Any) -> None:
        """Set one metadata column of the asset row this file will get (validated against the table)."""
        if self._execution is None:
            raise ExecutionError(f"{self} is not registered with an execution")
        self._execution._set_metadata(self, column, value)

    def seal(self) -> None:
        """Declare this output complete now (its length and MD5 are recorded; see ``docs/security.md``)."""
        if self._execution is None:
            raise ExecutionError(f"{self} is not registered with an execution")
        execution = self._execution
        entry = execution._manifest.get(execution._manifest_key(self))
        if entry is None:
            raise ExecutionError(f"{self} is not registered with execution {execution.execution_rid}")
        execution._seal_entry(entry)

    @property
    def metadata(self) -> dict[str, Any]:
        """The metadata registered so far."""
        if self._execution is None:
            return {}
        entry = self._execution._manifest.get(self._execution._manifest_key(self))
        return dict(entry.metadata) if entry else {}


@attrs.frozen
class UploadedAsset:
    """One uploaded output: its asset table, RID, URL, file name, MD5, length and types."""

    table: str
    rid: RID
    url: str
    filename: str
    md5: str
    length: int
    asset_types: tuple[str, ...]
    path: str

    @property
    def asset_rid(self) -> RID:
        """The reference package's name for :attr:`rid` (its upload results call it ``asset_rid``)."""
        return self.rid
