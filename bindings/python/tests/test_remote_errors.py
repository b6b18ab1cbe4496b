"""A server's errors through the binding (issue 26), against the real
`quicksand serve` (built from this checkout), without a VM: a wrong key is
an AuthError naming the server, an unknown id a not-found error, a server
that is not there a TransportError naming it."""

import asyncio
import os
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from quicksand import AuthError, GuestFileNotFoundError, Sandbox, SyncSandbox, TransportError

ROOT = Path(__file__).resolve().parents[3]
KEY = "python-test-0123456789abcdef"


def _go() -> str:
    local = ROOT / "out" / "go" / "bin" / "go"
    found = str(local) if local.exists() else shutil.which("go")
    assert found, "the tests build the quicksand binary: Go is missing (make deps)"
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A quicksand serve on 127.0.0.1, with one key; its URL."""
    d = tmp_path_factory.mktemp("server")
    binary = d / "quicksand"
    subprocess.run([_go(), "build", "-o", str(binary), "./cmd/quicksand"], cwd=ROOT, check=True)
    (d / "keys").write_text(KEY + "\n")
    (d / "keys").chmod(0o600)
    proc = subprocess.Popen(
        [str(binary), "serve", "--listen", "127.0.0.1:0", "--keys", str(d / "keys"), "--data", str(d / "data")],
        stderr=subprocess.PIPE, text=True,
    )
    address = None
    for line in proc.stderr:
        m = re.search(r"msg=serving address=(\S+)", line)
        if m:
            address = m.group(1)
            break
    assert address, "the server did not say where it listens"
    # Keep reading its log so that it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    yield f"http://{address}"
    proc.terminate()
    proc.wait(timeout=60)


def test_a_wrong_key_is_an_auth_error_naming_the_server(server):
    with pytest.raises(AuthError, match=re.escape(server)):
        SyncSandbox.list(server=server, api_key="wrong-key-0123456789abcdef")
    with pytest.raises(AuthError, match=re.escape(server)):
        asyncio.run(Sandbox.connect("sb-anything", server=server, api_key="wrong-key-0123456789abcdef"))


def test_an_unknown_id_is_not_found(server):
    with pytest.raises(GuestFileNotFoundError, match="sb-nobody-has-this"):
        SyncSandbox.connect("sb-nobody-has-this", server=server, api_key=KEY)
    assert SyncSandbox.list(metadata={"test": "nothing has this"}, server=server, api_key=KEY) == []


def test_a_server_that_is_not_there_is_a_transport_error_naming_it():
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gone = f"http://127.0.0.1:{port}"
    with pytest.raises(TransportError, match=re.escape(gone)):
        SyncSandbox.list(server=gone, api_key=KEY)
    with pytest.raises(TransportError, match=re.escape(gone)):
        asyncio.run(Sandbox.connect("sb-x", server=gone, api_key=KEY))
    with pytest.raises(TransportError, match=re.escape(gone)):
        SyncSandbox(server=gone, api_key=KEY).start()

