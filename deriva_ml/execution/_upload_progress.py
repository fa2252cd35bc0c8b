"""Default upload progress display: log lines per ~10% of the bytes, and the terminal bar when shown."""

from __future__ import annotations

from typing import Any

from deriva_ml._progress import ProgressBar


class ProgressLog:
    """Default upload progress: a log line per ~10% of the bytes, and the terminal bar when one is shown."""

    def __init__(self, log: Any, total: int, bar: ProgressBar | None = None) -> None:
        self.log = log
        self.total = total
        self.next_mark = 0.0
        self.bar = bar

    def __call__(self, done: int, total: int) -> None:
        frac = 1.0 if total == 0 else done / total
        if self.bar is not None:
            self.bar(done, total)
        if frac >= self.next_mark:
            self.log.info("upload progress", bytes_done=done, bytes_total=total, percent=round(frac * 100))
            self.next_mark = frac + 0.1
