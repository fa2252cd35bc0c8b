"""Progress bars (issue 16.6): shown on a terminal, never in a pipe, under CI or when switched off.

The subprocess tests run ``tests/progress_child.py`` (upload, bag build and materialisation, input download,
sync on the embedded backend) with stderr on a pseudo-terminal or a pipe and read what a person would see.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deriva_ml import DerivaML
from deriva_ml._progress import PROGRESS_ENV, open_bar, progress_enabled
from deriva_ml.testing import make_configuration, temp_catalog

CHILD = Path(__file__).resolve().parent / "progress_child.py"
BAR_MARKS = ("\r", "%|", "B/s", "file/s", "entry/s", "\u2588")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CI", PROGRESS_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def tty() -> Iterator[object]:
    """The slave side of a real pseudo-terminal, opened as a text stream."""
    master, slave = pty.openpty()
    stream = os.fdopen(slave, "w")
    try:
        yield stream
    finally:
        stream.close()
        os.close(master)


@pytest.fixture
def pipe() -> Iterator[object]:
    r, w = os.pipe()
    stream = os.fdopen(w, "w")
    try:
        yield stream
    finally:
        stream.close()
        os.close(r)


# ------------------------------------------------------------------------------------------ the switch


def test_a_terminal_shows_bars_a_pipe_does_not(clean_env: None, tty: object, pipe: object) -> None:
    assert progress_enabled(stream=tty) is True
    assert progress_enabled(stream=pipe) is False


@pytest.mark.parametrize("value", ["true", "1", "yes", "TRUE"])
def test_ci_turns_bars_off_on_a_terminal(clean_env: None, tty: object, monkeypatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert progress_enabled(stream=tty) is False


def test_ci_false_is_not_ci(clean_env: None, tty: object, monkeypatch) -> None:
    monkeypatch.setenv("CI", "false")
    assert progress_enabled(stream=tty) is True


@pytest.mark.parametrize("value", ["0", "false", "off", "no"])
def test_the_environment_option_turns_bars_off(clean_env: None, tty: object, monkeypatch, value: str) -> None:
    monkeypatch.setenv(PROGRESS_ENV, value)
    assert progress_enabled(stream=tty) is False


def test_the_environment_option_forces_bars_on(clean_env: None, pipe: object, monkeypatch) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "1")
    monkeypatch.setenv("CI", "true")
    assert progress_enabled(stream=pipe) is True


def test_an_explicit_argument_wins(clean_env: None, tty: object, pipe: object, monkeypatch) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "0")
    assert progress_enabled(True, stream=pipe) is True
    monkeypatch.setenv(PROGRESS_ENV, "1")
    assert progress_enabled(False, stream=tty) is False


def test_no_bar_object_when_disabled(clean_env: None) -> None:
    # pytest's captured stderr is not a terminal: nothing is created, so nothing runs per chunk
    assert open_bar("upload", 10, "bytes") is None


def test_a_bar_draws_nothing_until_work_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    bar = open_bar("upload", 0, "bytes", enabled=True)
    assert bar is not None
    bar.close()
    assert capsys.readouterr().err == ""
    bar = open_bar("upload", 2048, "bytes", enabled=True)
    assert bar is not None
    bar(1024, 2048)
    bar(2048, 2048)
    bar.close()
    err = capsys.readouterr().err
    assert re.search(r"upload: 100%\|[^\r]*\| 2\.00k/2\.00k \[\d\d:\d\d<\d\d:\d\d, [^\]]*B/s\]", err), err


# ---------------------------------------------------------------------------------- in-process upload


def _upload(ml: DerivaML, progress: object) -> None:
    exe = ml.create_execution(make_configuration())
    with exe:
        exe.asset_file_path("Model", "weights.bin").write_bytes(b"w" * 300_000)
    exe.upload_execution_outputs(progress=progress)  # type: ignore[arg-type]


def test_upload_bar_forced_on_keeps_the_log_events(clean_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    from structlog.testing import capture_logs

    with temp_catalog("bars") as ml:
        capsys.readouterr()
        with capture_logs() as logs:
            _upload(ml, True)
    err = capsys.readouterr().err
    assert re.search(r"upload: 100%\|[^\r]*\| 293k/293k \[\d\d:\d\d<\d\d:\d\d, [^\]]*B/s\]", err), err
    events = [e for e in logs if e["event"] == "upload progress"]
    assert events and events[-1]["percent"] == 100 and events[-1]["bytes_done"] == 300_000


@pytest.mark.parametrize("progress", [None, False])
def test_upload_without_a_terminal_writes_nothing(
    clean_env: None, capsys: pytest.CaptureFixture[str], progress: object
) -> None:
    with temp_catalog("quiet") as ml:
        capsys.readouterr()
        _upload(ml, progress)
    captured = capsys.readouterr()
    assert captured.err == ""
    assert not [m for m in BAR_MARKS if m in captured.out], captured.out


def test_a_callable_replaces_the_bar(clean_env: None, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "1")
    calls: list[tuple[int, int]] = []
    with temp_catalog("callback") as ml:
        capsys.readouterr()
        _upload(ml, lambda done, total: calls.append((done, total)))
    assert capsys.readouterr().err == ""
    assert calls and calls[-1] == (300_000, 300_000)


# ------------------------------------------------------------------------------------ real terminals


def _child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", PROGRESS_ENV, "COLUMNS", "LINES")}
    env.update(TMPDIR=str(tmp_path), TERM="xterm", PYTHONIOENCODING="utf-8", **extra)
    return env


def _run_on_pty(env: dict[str, str], deadline_s: float = 300.0) -> tuple[int, str]:
    """Run the child with stdin/stdout/stderr on a 100x30 pseudo-terminal; everything it wrote, decoded."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, str(CHILD)], stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    chunks: list[bytes] = []
    end = time.monotonic() + deadline_s  # a guard against a hung child, not an assertion on speed
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every slave descriptor is closed
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.wait(), b"".join(chunks).decode("utf-8", "replace")


FULL = r"100%\|[^\r]*\| "


@pytest.mark.slow
def test_a_terminal_shows_every_bar(tmp_path: Path) -> None:
    code, out = _run_on_pty(_child_env(tmp_path))
    assert code == 0 and "CHILD DONE" in out, out
    # uploads and downloads in bytes with the elapsed time, the ETA and the rate
    for name in ("upload", "download"):
        assert re.search(rf"\r{name}: {FULL}3\.00M/3\.00M \[\d\d:\d\d<\d\d:\d\d, [\d.]+[kMG]?B/s\]", out), out
    # bag building and materialisation in files, sync in entries
    assert re.search(rf"\rbag 1-[0-9A-Z]+: {FULL}(\d+)/\1 \[\d\d:\d\d<\d\d:\d\d, [\d.]+ file/s\]", out), out
    assert re.search(rf"\rmaterialize: {FULL}1/1 \[\d\d:\d\d<\d\d:\d\d, [\d.]+ file/s\]", out), out
    assert re.search(rf"\rsync: {FULL}(\d+)/\1 \[\d\d:\d\d<\d\d:\d\d, [\d.]+ entry/s\]", out), out
    assert "\u2588" in out  # drawn with block characters on a UTF-8 terminal


@pytest.mark.slow
@pytest.mark.parametrize("extra", [{"CI": "true"}, {PROGRESS_ENV: "0"}], ids=["CI", "option-off"])
def test_a_terminal_under_ci_or_switched_off_shows_no_bar(tmp_path: Path, extra: dict[str, str]) -> None:
    code, out = _run_on_pty(_child_env(tmp_path, **extra))
    assert code == 0 and "CHILD DONE" in out, out
    out = out.replace("\r\n", "\n")  # the terminal's own line ends (ONLCR), not a bar's carriage returns
    assert not [m for m in BAR_MARKS if m in out], out


@pytest.mark.slow
def test_a_pipe_stays_clean(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(CHILD)], capture_output=True, env=_child_env(tmp_path), timeout=300, check=False
    )
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, err
    assert proc.stdout.decode() == "CHILD DONE\n"
    assert not [m for m in BAR_MARKS if m in err], err


@pytest.mark.slow
def test_the_option_forces_bars_into_a_pipe(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(CHILD)],
        capture_output=True,
        env=_child_env(tmp_path, **{PROGRESS_ENV: "1", "CI": "true"}),
        timeout=300,
        check=False,
    )
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, err
    assert re.search(rf"\rupload: {FULL}3\.00M/3\.00M", err), err


@pytest.mark.slow
def test_import_does_not_load_the_bar_library(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import deriva_ml, deriva_ml.sync, deriva_ml.dataset._bag"],
        capture_output=True,
        text=True,
        env=_child_env(tmp_path),
        timeout=120,
        check=True,
    )
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line]
    assert "deriva_ml._progress" in imported  # the check is real: the module that uses tqdm was imported
    assert not [m for m in imported if m.split(".")[0] == "tqdm"], imported
