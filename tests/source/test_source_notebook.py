"""Notebook checksum (== ``nbstripout -t NB | git hash-object --stdin``) and notebook discovery
inside a real kernel started by a real jupyter_server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import requests
from source_helpers import git, make_repo

from deriva_ml.source.notebook import find_notebook_path, notebook_blob_id, stripped_notebook

NBSTRIPOUT = Path(sys.executable).parent / "nbstripout"


def _notebook(path: Path, *, crlf: bool = False) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["widgets"] = {"state": {}}
    code = nbformat.v4.new_code_cell("x = 1\nprint(x)", execution_count=7)
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    code.metadata["scrolled"] = True
    code.metadata["custom"] = "kept unless configured"
    nb.cells = [nbformat.v4.new_markdown_cell("# Title \u00e9"), code, nbformat.v4.new_code_cell("")]
    text = nbformat.writes(nb)
    if crlf:
        text = text.replace("\n", "\r\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def _oracle(nb: Path, cwd: Path) -> str:
    stripped = subprocess.run(
        [str(NBSTRIPOUT), "-t", str(nb)], cwd=cwd, capture_output=True, check=True, timeout=60
    ).stdout
    return git(cwd, "hash-object", "--stdin", input=stripped).strip()


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_checksum_equals_nbstripout_cli_piped_to_git_hash_object(tmp_path: Path, crlf: bool) -> None:
    nb = _notebook(tmp_path / "nb.ipynb", crlf=crlf)
    assert notebook_blob_id(nb) == _oracle(nb, tmp_path)
    assert b'"outputs": []' in stripped_notebook(nb) and b'execution_count": 7' not in stripped_notebook(nb)


def test_outputs_do_not_change_the_checksum(tmp_path: Path) -> None:
    a = _notebook(tmp_path / "a.ipynb")
    nb = nbformat.read(a, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="different\n")]
    nb.cells[1].execution_count = 99
    b = tmp_path / "b.ipynb"
    nbformat.write(nb, b)
    assert notebook_blob_id(a) == notebook_blob_id(b)


def test_repository_nbstripout_keys_are_honoured(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"placeholder": "x"})
    nb = _notebook(root / "nb.ipynb")
    git(root, "config", "filter.nbstripout.extrakeys", "cell.metadata.custom")
    with_custom = notebook_blob_id(nb, root)
    assert with_custom == _oracle(nb, root)
    assert with_custom != notebook_blob_id(nb)  # without the repository's configuration


def test_unreachable_servers_are_skipped_quickly() -> None:
    servers = [{"url": "http://127.0.0.1:9/", "token": "t", "root_dir": "/"}]
    start = time.monotonic()
    assert find_notebook_path("some-kernel", env={}, servers=servers, timeout=1.0) is None
    assert time.monotonic() - start < 5


def test_a_slow_server_is_waited_for(tmp_path: Path) -> None:
    """A live Jupyter server that takes seconds to list its sessions (a busy machine) still names the
    notebook with the default timeout (it was 2 s: detection then fell back to the calling script)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answered = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(3)
            body = json.dumps([{"kernel": {"id": "k-1"}, "path": "nb/analysis.ipynb"}]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            answered.set()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        servers = [{"url": f"http://127.0.0.1:{server.server_port}/", "token": "t", "root_dir": str(tmp_path)}]
        found = find_notebook_path("k-1", env={}, servers=servers)
    finally:
        server.shutdown()
        server.server_close()
    assert answered.is_set()
    assert found == (tmp_path / "nb" / "analysis.ipynb").resolve()


# ------------------------------------------------------------------------------- real jupyter server

KERNEL_CODE = """
import json, warnings, attrs
from deriva_ml.source import detect_source
from deriva_ml.source.notebook import in_jupyter_kernel
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    info = detect_source(env={})
print("JSON" + json.dumps({"in_kernel": in_jupyter_kernel(), **attrs.asdict(info)}))
"""


def _start_server(root: Path, runtime: Path, token: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_CONFIG_DIR": str(runtime / "config"),
        "JUPYTER_DATA_DIR": str(runtime / "data"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    env.pop("JPY_SESSION_NAME", None)
    log = open(runtime / "server.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--ServerApp.ip=127.0.0.1",
            "--port=0",
            f"--IdentityProvider.token={token}",
            "--allow-root",
            "--no-browser",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.open_browser=False",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120  # a loaded machine (2 cores, load 10+) starts python slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        infos = list(runtime.glob("jpserver-*.json"))
        if infos:
            try:
                url = json.loads(infos[0].read_text())["url"]
            except (ValueError, KeyError):
                url = None
            if url:
                try:
                    requests.get(f"{url}api/status", headers={"Authorization": f"token {token}"}, timeout=2)
                    return proc, url
                except requests.RequestException:
                    pass
        time.sleep(0.2)
    _stop(proc)
    pytest.skip(f"jupyter server could not start: {(runtime / 'server.log').read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_detection_inside_a_real_kernel(tmp_path: Path) -> None:
    from jupyter_client import BlockingKernelClient

    root = make_repo(tmp_path / "proj", {"README.md": "x\n"}, remote="https://github.com/org/proj.git")
    _notebook(root / "notebooks" / "analysis.ipynb")
    from source_helpers import commit_all

    sha = commit_all(root, "add notebook")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    token = secrets.token_hex(16)
    proc, url = _start_server(root, runtime, token)
    headers = {"Authorization": f"token {token}"}
    try:
        resp = requests.post(
            f"{url}api/sessions",
            json={"path": "notebooks/analysis.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
            headers=headers,
            timeout=180,  # the server answers once the kernel process is launched: slow under load
        )
        resp.raise_for_status()
        session = resp.json()
        kernel_id = session["kernel"]["id"]
        connection_file = runtime / f"kernel-{kernel_id}.json"
        deadline = time.monotonic() + 120
        while not connection_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        client = BlockingKernelClient()
        client.load_connection_file(str(connection_file))
        # No heartbeat channel: a client that was not started by a KernelManager judges liveness by the
        # heartbeat alone, and on a loaded machine the first beats come late, so wait_for_ready() raised
        # "Kernel died before replying to kernel_info" for a kernel that was merely slow to start.
        # Without it, readiness is the kernel_info reply itself.
        client.start_channels(hb=False)
        try:
            client.wait_for_ready(timeout=300)
            chunks: list[str] = []

            def hook(msg: dict) -> None:  # type: ignore[type-arg]
                if msg["msg_type"] == "stream":
                    chunks.append(msg["content"]["text"])
                elif msg["msg_type"] == "error":
                    chunks.append("\n".join(msg["content"]["traceback"]))

            reply = client.execute_interactive(KERNEL_CODE, output_hook=hook, timeout=300)  # imports deriva_ml
            text = "".join(chunks)
            assert reply["content"]["status"] == "ok", text
        finally:
            client.stop_channels()
        requests.delete(f"{url}api/sessions/{session['id']}", headers=headers, timeout=30)
    finally:
        _stop(proc)

    line = next(ln for ln in text.splitlines() if ln.startswith("JSON"))
    got = json.loads(line[4:])
    nb = root / "notebooks" / "analysis.ipynb"
    assert got["in_kernel"] is True
    assert got["is_notebook"] is True
    assert got["url"] == f"https://github.com/org/proj/blob/{sha}/notebooks/analysis.ipynb"
    assert got["checksum"] == _oracle(nb, root)
    assert got["repo_root"] == str(root.resolve())
