"""``quicksand serve`` from the Python package: the library's server, run
by the package's own command (qs_serve), answers, and SIGTERM stops it."""

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request


def test_serve_from_the_python_package(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("python-serve-0123456789\n")
    keys.chmod(0o600)
    proc = subprocess.Popen(
        [sys.executable, "-m", "quicksand", "serve", "--listen", "127.0.0.1:0", "--keys", str(keys), "--data", str(tmp_path / "data")],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        addr = None
        for line in proc.stderr:
            m = re.search(r"msg=serving address=(\S+)", line)
            if m:
                addr = m.group(1)
                break
        assert addr, "the server never said where it listens"
        req = urllib.request.Request(f"http://{addr}/v1/capacity", headers={"Authorization": "Bearer python-serve-0123456789"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert "memory_total" in json.load(r)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_says_what_is_wrong_with_its_flags():
    r = subprocess.run([sys.executable, "-m", "quicksand", "serve", "--bogus"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "flag provided but not defined: -bogus" in r.stderr and "--listen ADDR" in r.stderr
