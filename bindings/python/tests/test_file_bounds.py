"""File calls as a hostile guest or a careless path would have them: a NUL
byte in a path, files larger than the host's memory, a frozen VM, modes
the umask would change."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from quicksand import BadRequestError, CallCancelledError, SyncSandbox

EVIL = "/tmp/py-ok.txt\x00/../../etc/cron.d/evil"


@pytest.fixture(scope="module")
def ssb():
    with SyncSandbox() as s:
        yield s


def test_a_nul_in_a_path_is_refused(ssb, tmp_path):
    # The library takes C strings: '/tmp/py-ok.txt\0/...' wrote /tmp/py-ok.txt.
    (tmp_path / "ok").write_text("host")
    calls = {
        "write_file": lambda: ssb.write_file(EVIL, b"* * * * * root id\n"),
        "read_file": lambda: ssb.read_file(EVIL),
        "stat": lambda: ssb.stat(EVIL),
        "exists": lambda: ssb.exists(EVIL),
        "list_dir": lambda: ssb.list_dir(EVIL),
        "make_dir": lambda: ssb.make_dir(EVIL),
        "remove": lambda: ssb.remove(EVIL),
        "rename to": lambda: ssb.rename("/etc/hostname", EVIL),
        "upload to": lambda: ssb.upload(str(tmp_path / "ok"), EVIL),
        "upload from": lambda: ssb.upload(str(tmp_path / "ok") + "\x00/x", "/tmp/py-up"),
        "download from": lambda: ssb.download(EVIL, str(tmp_path / "down")),
        "download to": lambda: ssb.download("/etc/hostname", str(tmp_path / "down\x00x")),
    }
    for name, call in calls.items():
        with pytest.raises(BadRequestError, match="NUL"):
            call()
            pytest.fail(f"{name}: no error")
    r = ssb.execute("ls /tmp/py-ok.txt /tmp/py-up /etc/cron.d/evil 2>/dev/null || true")
    assert r.stdout == ""
    assert sorted(os.listdir(tmp_path)) == ["ok"]


def test_read_file_limit(ssb):
    ssb.execute("head -c 2097152 /dev/urandom > /root/py-two-mib")
    with pytest.raises(BadRequestError, match="max_size"):
        ssb.read_file("/root/py-two-mib", max_size=1 << 20)
    assert len(ssb.read_file("/root/py-two-mib", max_size=2 << 20)) == 2 << 20
    ssb.remove("/root/py-two-mib")


# Run in a process of its own, so that its peak memory (VmHWM) is this
# test's: a sparse file of 1 GiB and /proc/kcore (the old read_file grew
# the caller to 8.2 GB on it) each fail at once with the limit's error,
# the way on for a large file (download, to the host's disk) streams it,
# and the process's peak grows by less than 64 MiB.
BOUNDED_CHILD = textwrap.dedent(
    """
    import os, sys, tempfile
    from quicksand import BadRequestError, SyncSandbox

    def peak():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    with SyncSandbox() as sb:
        sb.execute("truncate -s 1G /root/sparse")
        before = peak()
        for path in ("/root/sparse", "/proc/kcore"):
            try:
                sb.read_file(path)
                sys.exit(f"{path}: read whole")
            except BadRequestError as e:
                if "max_size" not in str(e):
                    sys.exit(f"{path}: {e}")
        with tempfile.TemporaryDirectory() as host:
            sb.download("/root/sparse", os.path.join(host, "sparse"))
            if os.path.getsize(os.path.join(host, "sparse")) != 1 << 30:
                sys.exit("the download is not the whole file")
        print(peak() - before)
    """
)


def test_read_file_memory_stays_bounded():
    child = subprocess.run([sys.executable, "-c", BOUNDED_CHILD], capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    assert int(child.stdout) < 64 << 20, f"the peak grew by {int(child.stdout) >> 20} MiB"


def test_modes_are_exact(ssb):
    ssb.make_dir("/tmp/py-sticky", mode=0o1777)
    ssb.write_file("/tmp/py-suid", b"x", mode=0o4755)
    assert ssb.stat("/tmp/py-sticky").mode == 0o1777
    assert ssb.stat("/tmp/py-suid").mode == 0o4755
    assert ssb.execute("stat -c %a /tmp/py-sticky /tmp/py-suid").stdout == "1777\n4755\n"
    ssb.remove("/tmp/py-sticky")
    ssb.remove("/tmp/py-suid")


def test_a_timeout_ends_a_call_to_a_frozen_vm():
    with SyncSandbox() as sb:
        os.kill(sb.pid, signal.SIGSTOP)
        try:
            start = time.monotonic()
            with pytest.raises(CallCancelledError, match="timeout"):
                sb.stat("/root", timeout=2)
            with pytest.raises(CallCancelledError, match="timeout"):
                sb.read_file("/etc/hostname", timeout=2)
            assert time.monotonic() - start < 15
        finally:
            os.kill(sb.pid, signal.SIGCONT)
        assert sb.execute("echo again").stdout == "again\n"
