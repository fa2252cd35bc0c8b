"""Progress bars for long work on a terminal: uploads, downloads, bag building, materialisation, sync.

A bar is shown only when a person is watching: stderr is a terminal, ``CI`` is not set (``CI=true`` as
every CI service sets it) and ``DERIVA_ML_PROGRESS`` does not say otherwise. ``DERIVA_ML_PROGRESS=0``
turns bars off everywhere; ``DERIVA_ML_PROGRESS=1`` forces them on (even into a pipe or under CI). Public
calls that take a ``progress=`` argument accept ``True``/``False`` to force a bar on or off for that call
(``None``, the default, decides as above). The structured progress log events are written either way.

The bars are ``tqdm`` bars on stderr, imported only when one is shown (never at ``import deriva_ml``).
When no bar is shown nothing here runs per chunk: call sites hold ``None`` and skip the update.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

#: Environment variable: ``0`` (also ``false``/``no``/``off``) disables bars, ``1`` (``true``/``yes``/``on``)
#: forces them on; unset or anything else: automatic (a terminal and not CI).
PROGRESS_ENV = "DERIVA_ML_PROGRESS"

_OFF = frozenset({"0", "false", "no", "off"})
_ON = frozenset({"1", "true", "yes", "on"})

Unit = Literal["bytes", "files", "entries"]


def progress_enabled(explicit: bool | None = None, stream: Any = None) -> bool:
    """Whether to show a bar: ``explicit`` if given, else ``$DERIVA_ML_PROGRESS``, else a terminal outside CI."""
    if explicit is not None:
        return bool(explicit)
    env = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if env in _OFF:
        return False
    if env in _ON:
        return True
    ci = os.environ.get("CI", "").strip().lower()
    if ci and ci not in _OFF:
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or replaced streams
        return False


class ProgressBar:
    """One terminal bar, fed as ``bar(done, total)`` (a ``ProgressCallback``) or ``bar.advance(n)``.

    ``unit="bytes"`` shows sizes in kB/MB/GB with the transfer rate and ETA; ``"files"`` and ``"entries"``
    count items (with their rate and ETA). Nothing is drawn until the first update, so a bar opened for
    work that turns out to be empty never appears.
    """

    def __init__(self, desc: str, total: int | None, unit: Unit) -> None:
        self.desc = desc
        self.total = total
        self.unit = unit
        self._bar: Any = None
        self._lock = threading.Lock()

    def _open(self) -> Any:
        from tqdm import tqdm  # lazily: only when a bar is shown

        kwargs: dict[str, Any] = {}
        if self.unit == "bytes":
            kwargs.update(unit="B", unit_scale=True, unit_divisor=1024)
        else:
            kwargs.update(unit=" file" if self.unit == "files" else " entry")
        # the terminal's size (80x24 when it reports none, as a fresh pseudo-terminal does)
        size = shutil.get_terminal_size((80, 24))
        kwargs.update(ncols=size.columns, nrows=size.lines)
        self._bar = tqdm(total=self.total, desc=self.desc, file=sys.stderr, leave=True, **kwargs)
        return self._bar

    @property
    def n(self) -> float:
        return 0.0 if self._bar is None else float(self._bar.n)

    def __call__(self, done: int, total: int | None = None) -> None:
        with self._lock:
            if total is not None:
                self.total = total
            bar = self._bar or self._open()
            if self.total is not None and self.total != bar.total:
                bar.total = self.total
            if done != bar.n:
                bar.update(done - bar.n)

    def offset(self, base: int) -> Callable[[int, int], None]:
        """A ``progress(done, total)`` callback for one part of the work that starts at ``base``."""

        def report(done: int, _total: int) -> None:
            self(base + done)

        return report

    def advance(self, n: int = 1) -> None:
        with self._lock:
            (self._bar or self._open()).update(n)

    def set_total(self, total: int) -> None:
        with self._lock:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
                self._bar.refresh()

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None


@contextmanager
def progress_bar(desc: str, total: int | None, unit: Unit, enabled: bool | None = None) -> Iterator[ProgressBar | None]:
    """A :class:`ProgressBar` when :func:`progress_enabled` (closed on exit), else ``None``."""
    bar = open_bar(desc, total, unit, enabled)
    if bar is None:
        yield None
        return
    try:
        yield bar
    finally:
        bar.close()


def open_bar(desc: str, total: int | None, unit: Unit, enabled: bool | None = None) -> ProgressBar | None:
    """A :class:`ProgressBar` when :func:`progress_enabled` (the caller closes it), else ``None``."""
    return ProgressBar(desc, total, unit) if progress_enabled(enabled) else None
